"""CNNH+ (Xia, Pan, Lai, Liu & Yan, "Supervised hashing for image retrieval via image representation learning",
AAAI 2014).

Stage 1 (`baselines.cnnh_codes.approximate_codes`) factorises the label similarity matrix into approximate codes
H in {-1, 1}^(N x bits). Stage 2 trains the network to output them: a sigmoid layer `hash_x` regresses (H + 1) / 2
by binary cross-entropy and, for CNNH+, a softmax layer `y_predict` beside it (both read the same features, as in
the paper's output layer of bits + classes units) predicts the class. The stage-1 codes travel through the tf.data
pipeline with their images, so the shuffle can never misalign a target and its image (tests/test_pipeline.py and
tests/test_methods.py check both). Stage 1 sees the training labels only.

code_weight = 1 (the code regression and the classification weigh the same) is our choice, not a number taken
from the paper. Encoder, optimiser, schedule and weight decay are SAEH's, as for DSH (see baselines/dsh.py).
"""

import dataclasses
from typing import Optional

import keras
import numpy as np

from saeh import defaults, recipes
from saeh.losses import classifier_loss, classifier_metrics
from saeh.methods import DeepMethod, Hyperparameters, hyperparameter
from saeh.models import blocks, encoders
from saeh.registry import register


@dataclasses.dataclass(frozen=True)
class Stage1Hyperparameters(Hyperparameters):
    """Stage 1's setting, shared by CNNH+ and CNNH (`baselines.cnnh_plain`)."""

    stage1_iterations: Optional[int] = hyperparameter(
        None, "positive integer", "iterations of stage 1's factorisation; None: approximate_codes' own default")


@dataclasses.dataclass(frozen=True)
class CNNHHyperparameters(Stage1Hyperparameters):
    code_weight: float = hyperparameter(1.0, "non-negative", "weight of the code regression beside the classifier")


def build_cnnh_plus(spec, hyperparameters):
    """Encoder, then two heads on the same features: sigmoid `hash_x` (bits) and the classifier `y_predict`."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    code = blocks.dense(spec.hash_bits, "hash_x", activation="sigmoid", dtype="float32")(features)
    prediction = blocks.dense(spec.num_classes, "y_predict", activation="sigmoid" if spec.multi_label else "softmax",
                              dtype="float32")(features)
    return keras.Model(images, {"hash_x": code, "y_predict": prediction}, name="cnnh_plus")


def cnnh_compile_arguments(spec, state, hyperparameters):
    return {
        "loss": {"hash_x": "binary_crossentropy", "y_predict": classifier_loss(spec.multi_label)},
        "loss_weights": {"hash_x": float(hyperparameters.code_weight), "y_predict": 1.0},
        "metrics": {"y_predict": classifier_metrics(spec.multi_label)},
    }


def prepare_stage1(context, hyperparameters):
    """`stage1_targets` of the run's training and validation labels."""
    return stage1_targets(context.train.labels, context.validation.labels, context.spec.hash_bits, context.seed,
                          hyperparameters.stage1_iterations)


def stage1_targets(train_labels, validation_labels, hash_bits, seed, stage1_iterations=None):
    """Stage 1 on the training labels only: their approximate codes as 0/1 float targets of the sigmoid layer.

    The validation images (the query set under --select-on-test) never enter stage 1, so their labels cannot
    shape the training targets. Each gets the mean stage-1 code of the training images with exactly its labels
    (on single-label data: its class's code), or 0.5 in every bit when no training image has them; these targets
    only feed the reported validation loss.
    """
    from baselines.cnnh_codes import approximate_codes

    options = {} if stage1_iterations is None else {"n_iter": int(stage1_iterations)}
    codes = (np.asarray(approximate_codes(train_labels, hash_bits, seed=seed, **options), np.float32) + 1) / 2
    train_keys = np.asarray(train_labels).reshape(len(codes), -1)
    validation_keys = np.asarray(validation_labels).reshape(len(validation_labels), -1)
    label_sets, which = np.unique(train_keys, axis=0, return_inverse=True)
    which = which.reshape(-1)
    mean_codes = np.zeros((len(label_sets), hash_bits))
    np.add.at(mean_codes, which, codes)
    mean_codes /= np.bincount(which, minlength=len(label_sets))[:, None]
    position = {key.tobytes(): index for index, key in enumerate(label_sets.astype(validation_keys.dtype))}
    validation_codes = np.full((len(validation_keys), hash_bits), 0.5, np.float32)
    for row, key in enumerate(validation_keys):
        if key.tobytes() in position:
            validation_codes[row] = mean_codes[position[key.tobytes()]]
    return {"code": codes}, {"code": validation_codes}


def _targets(images, batch):
    return {"hash_x": batch["code"], "y_predict": batch["label"]}


# No code of CNNH+ is public (its code page is not on GitHub; METHODS.md section 10): SAEH's recipe.
RECIPE = dataclasses.replace(
    recipes.ORIGINAL, name="cnnh-plus",
    source="none public (METHODS.md section 10: the authors' code page was not read); SAEH's recipe, the original "
           "hash_su_ae_train.py",
    deviations=("SAEH's optimiser, schedule, weight decay and batch: the paper's solver is [unverified]",))

CNNH_PLUS = register(DeepMethod(
    name="cnnh-plus",
    summary="CNNH+: stage 1 factorises label similarity into codes; stage 2 regresses them and predicts labels",
    build=build_cnnh_plus,
    compile_arguments=cnnh_compile_arguments,
    targets=_targets,
    hyperparameters=CNNHHyperparameters(),
    prepare=prepare_stage1,
    recipe=RECIPE,
), listing_order=50)
