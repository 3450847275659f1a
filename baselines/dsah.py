"""DSAH, "Deep semantic asymmetric hashing": ADSH guided by a label auto-encoder. Written from the seed's summary
(`002_6fbc6c4e265bfe36.txt`: "use a label auto-encoder (LAE) and some proper constraints between LAE and the
asymmetric image hashing network (ImgNet) to guide the training of ImgNet ... alternating optimisation: back-
propagation for the networks, the database codes optimised directly"). No paper text or code was found (see
METHODS.md), so everything below beyond that sentence is our assumption, chosen as the simplest reading:

- ImgNet is ADSH's network (SAEH's encoder, tanh `hash_x`), trained by ADSH's loss against the learned database
  codes V (`baselines.adsh`: sampled outer iterations, the bank U, the closed-form V step).
- The LAE is a second branch of the same Keras model, fed the labels (a second input, `label`): a tanh layer
  `label_code` (labels -> a c-bit semantic code l_y) and a decoder `label_decoded` (c -> classes, softmax; sigmoid
  for multi-hot labels) trained to give back the labels (cross-entropy, weight 1).
- Constraint 1, image to label: the gap u - l_y, pushed to 0 by a mean square (the loss term `code_gap`), weight
  `code_weight` (1): each image's code follows the semantic code of its labels, and the label codes follow the
  images. The loss is one function of the outputs and the batch (`DeepMethod.batch_loss`): ADSH's term needs the
  images' training-set rows, this one the two codes.
- Constraint 2, database codes to label codes: the V step minimises ADSH's objective plus
  `prior_weight` * sum_j ||v_j - l_{y_j}||^2 (200, as ADSH's gamma, so that the labels weigh like the network's own
  outputs); with ||v_j||^2 = c this only adds -2 mu L to ADSH's Q, so each bit column is still solved exactly
  (`baselines.adsh_solver.update_database_codes`, `prior`).
- Codes: queries sign(u) from the image alone; the database codes are sign(V), one for every training and
  validation image, and the database must hold those images only (ADSH's rule: `baselines.adsh`, protocol ssdh;
  refused under dpsh and dsh). The label input exists in training only: saved models hash images through their
  `image` input.

Its seed table (top-5K precision on CIFAR-10 at 12/24/36/48 bits: 0.911/0.930/0.943/0.948, ADSH 0.890/0.924/
0.932/0.934 in the same table) is not under a protocol or metric we have, so it is not compared.
"""

import dataclasses

import keras
from keras import ops

from baselines.adsh import (RECIPE as ADSH_RECIPE, ADSHHyperparameters, adsh_callbacks, adsh_loss, adsh_state,
                            epoch_order)
from saeh import defaults
from saeh.losses import classifier_loss
from saeh.methods import SIGN_CODES, DeepMethod, hyperparameter
from saeh.models import blocks, encoders
from saeh.registry import register

CODE_WEIGHT, PRIOR_WEIGHT = 1.0, 200.0

# No paper text or code of DSAH was found: it borrows ADSH's recipe, since its image network trains by ADSH's loss.
RECIPE = dataclasses.replace(
    ADSH_RECIPE, name="dsah",
    source="none public (METHODS.md section 6: no paper text or code found); ADSH's recipe: " + ADSH_RECIPE.source,
    deviations=("every part borrowed from ADSH (not measured for DSAH itself)", *ADSH_RECIPE.deviations))


@dataclasses.dataclass(frozen=True)
class DSAHHyperparameters(ADSHHyperparameters):
    """ADSH's, and the weights of the two constraints between the image codes and the label codes."""

    code_weight: float = hyperparameter(CODE_WEIGHT, "non-negative",
                                        "weight of the mean square of each image's code minus its labels' code")
    prior_weight: float = hyperparameter(PRIOR_WEIGHT, "non-negative",
                                         "mu: weight of ||v_j - l_y_j||^2 in the database-code (V) step")


def build_dsah(spec, hyperparameters):
    """ImgNet (image -> tanh `hash_x`) and the LAE (labels -> tanh `label_code` -> `label_decoded`)."""
    images = keras.Input(shape=spec.input_shape, name="image")
    labels = keras.Input(shape=(spec.num_classes,), name="label")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    code = blocks.dense(spec.hash_bits, "hash_x", activation="tanh", dtype="float32")(features)
    label_code = blocks.dense(spec.hash_bits, "label_code", activation="tanh", dtype="float32")(labels)
    decoded = blocks.dense(spec.num_classes, "label_decoded", activation="sigmoid" if spec.multi_label else "softmax",
                           dtype="float32")(label_code)
    return keras.Model([images, labels], {"hash_x": code, "label_code": label_code, "label_decoded": decoded},
                       name="dsah")


def dsah_batch_loss(outputs, batch, spec, state, hyperparameters):
    """ADSH's loss of the image codes, the mean square of the gap between each image's code and the code of its
    labels (weight `code_weight`), and the LAE's reconstruction of the labels (`DeepMethod.batch_loss`)."""
    code, labels = outputs["hash_x"], batch["label"]
    yield "hash_x", adsh_loss(code, labels, batch["index"], state, hyperparameters.gamma)
    gap = code - outputs["label_code"]
    yield "code_gap", keras.losses.mean_squared_error(ops.zeros_like(gap), gap), float(hyperparameters.code_weight)
    yield "label_decoded", keras.losses.get(classifier_loss(spec.multi_label))(labels, outputs["label_decoded"])


def label_code_prior(state, prior_weight):
    """(model) -> (the LAE's codes of the labels of every row of V, prior_weight), for the V step."""

    built = {}  # the label encoder of the model last seen: one per model, so its prediction is traced once

    def prior(model):
        if built.get("model") is not model:
            built.update(model=model, encoder=keras.Model(model.get_layer("label").output,
                                                          model.get_layer("label_code").output))
        return built["encoder"].predict(state["code_labels"].numpy(), verbose=0, batch_size=4096), prior_weight

    return prior


def dsah_callbacks(context, model, state, hyperparameters):
    return adsh_callbacks(context, model, state, hyperparameters,
                          prior=label_code_prior(state, hyperparameters.prior_weight))


DSAH = register(DeepMethod(
    name="dsah",
    summary="DSAH (from its seed's summary): ADSH guided by a label auto-encoder's semantic codes",
    build=build_dsah,
    batch_loss=dsah_batch_loss,
    loss_terms=("hash_x", "code_gap", "label_decoded"),
    hyperparameters=DSAHHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGN_CODES,
    state=adsh_state,
    callbacks=dsah_callbacks,
    sampler=epoch_order,
    database_codes=lambda arrays: arrays["codes"],
    inputs=lambda images, batch: {"image": images, "label": batch["label"]},
), listing_order=110)
