"""DRSCH, bit-scalable deep hashing with regularised similarity learning (R. Zhang, L. Lin, R. Zhang, Zuo & L. Zhang,
IEEE TIP 24(12), 2015; "DRSDH" in the reading list): its two loss terms and continuation schedule as functions, the
registered method, and codes of any shorter length taken by the largest per-bit weights.

What we follow (facts and sources: METHODS.md section 12; the official code is ruixuejianfei/BitScalableDeepHash at
3a9b658, a Caffe fork whose demo is MNIST):

- Network as released: fc7 of 512 units, then fc8 of `bits` units with no non-linearity between them (ours on SAEH's
  encoder: `drsch_fc7`, `hash_z`), then the modified sigmoid s(z) = 2 / (1 + exp(-a z)) - 1 = tanh(a z / 2) (`hash_x`,
  a `ScaledTanh` of beta = a / 2), then one learnable weight per bit, initialised to 1 (`drsch_bit_weights`, the
  released `elewise_product`): r = w * s(z), the model's output `drsch_bit_weights`. The squared distance of two
  such outputs, sum_k w_k^2 (s_ik - s_jk)^2, is the paper's weighted Hamming affinity written as a distance.
- Triplet loss as coded (`EuclideanTripletLossLayer`): for anchor r1, positive r2 (sharing a label) and negative r3
  (sharing none), gradients only where ||r1 - r2||^2 - ||r1 - r3||^2 >= -C, i.e. the hinge
  max(0, C + ||r1 - r2||^2 - ||r1 - r3||^2), averaged over the triplets. C starts at 5.
- Continuation as coded: every 10,000 of 800,000 iterations (80 raises) the slope a (from 5) is multiplied by 1.1 and
  the margin C (from 5) grows by 0.1. Ours raises them `raises` times at equal fractions of the run's steps, as the
  recipes scale their drops (`drsch_schedule`; `DRSCHContinuation` sets both before every step from the optimiser's
  step count, so a resumed run continues the schedule). The validation loss, which picks the best epoch, is taken
  at the starting margin, so that epochs compare.
- Initialisation, ours: `hash_z` from N(0, 0.01), so that s(z) starts in its linear range as the released net's does
  (its std-0.01 convolutions on pixels x 0.1 leave fc8 near 0). With SAEH's he_normal, 44% of the outputs start
  saturated at a = 5 and the codes barely learn (bundled sample, 32 bits, 3 epochs: mAP@1000 0.242 against 0.524).
- The regulariser: the paper's (beta / 2) tr(R^T L R) with L = D - S, i.e. (beta / 4) sum_ij S_ij ||r_i - r_j||^2,
  which pulls images of one class together, with the code's S (1 for two images sharing a label, 0.001 otherwise)
  and beta = 0.001 (train prototxt l.229), summed over the batch (the code's gradient beta L V is not divided by the
  batch size). The released code's L is -(S + D + 2I) instead of D - S (a gradient that pushes codes outward and
  towards their class; its sign looks like a slip, and with learnable weights it is unbounded below): not followed.
- Triplets: the code draws 40,000 random triplets a class from 10 classes x 10 images an iteration; ours is every
  triplet of the batch (each image an anchor, every positive and negative of the batch), whose mean is the
  expectation of those draws for a class-balanced batch, with no random draw; a batch is the shuffled training set.
- Codes: sign(s(z)) (bit = `hash_x` > 0), ranked by Hamming distance, as the paper ranks [unverified: METHODS.md].
  The released test (`test_net_triplet_MAP.cpp`) ranks the real-valued unweighted s(z) by squared distance instead.
  Bit scalability as coded: the bits sorted by |w|, the largest kept (`bits_by_weight`, `truncated_codes`;
  `run_codes_at_length` and `run_scores_at_lengths` score a trained run at several lengths from its one model).
"""

import dataclasses
import os

import keras
import numpy as np
from keras import ops

from saeh import defaults, recipes, validation
from saeh.errors import SaehError
from saeh.method_state import MethodState
from saeh.methods import SIGN_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import blocks, encoders
from saeh.models.layers import ScaledTanh
from saeh.pairs import ordered_pairs, similar_pairs
from saeh.registry import register

FC7_UNITS = 512  # the released prototxt's fc7
HASH_INIT_STD = 0.01  # of hash_z's weights (ours: see build_drsch)
SLOPE, SLOPE_FACTOR = 5.0, 1.1  # the released sigmoid's sigm_para and sigm_decay
MARGIN, MARGIN_STEP = 5.0, 0.1  # -loss_threshold and -decay of the released loss layer
RAISES = 80  # 800,000 iterations / iter_decay 10,000
LAPLACIAN_WEIGHT = 0.001  # laplacian_beta
OTHER_CLASS_SIMILARITY = 0.001  # S_ij of two images of different classes in the released data layer
BIT_WEIGHTS = "drsch_bit_weights"


def squared_distances(outputs):
    """(B, B) matrix of ||r_i - r_j||^2 over the rows of `outputs`."""
    return ops.sum(ops.square(outputs[:, None, :] - outputs[None, :, :]), axis=-1)


def triplet_margin_loss(outputs, labels, margin=MARGIN):
    """The mean of max(0, margin + ||r_a - r_p||^2 - ||r_a - r_n||^2) over every triplet of the batch: anchor a,
    positive p != a sharing a label with it, negative n sharing none (0 when the batch has no triplet)."""
    outputs = ops.cast(ops.convert_to_tensor(outputs), "float32")
    distances = squared_distances(outputs)
    similar = similar_pairs(labels, labels)
    positives = similar * ordered_pairs(ops.shape(outputs)[0])
    triplets = positives[:, :, None] * (1.0 - similar)[:, None, :]  # (anchor, positive, negative)
    hinges = ops.maximum(0.0, margin + distances[:, :, None] - distances[:, None, :])
    return ops.sum(triplets * hinges) / ops.maximum(ops.sum(triplets), 1.0)


def laplacian_regulariser(outputs, labels, other_class_similarity=OTHER_CLASS_SIMILARITY):
    """(1/2) tr(R^T (D - S) R) of the batch's outputs R, S_ij = 1 for two images sharing a label and
    `other_class_similarity` otherwise (i != j), D the diagonal of S's row sums; equal to
    (1/4) sum_ij S_ij ||r_i - r_j||^2. Unweighted: beta is the term's weight."""
    outputs = ops.cast(ops.convert_to_tensor(outputs), "float32")
    similar = similar_pairs(labels, labels)
    similarity = (similar + other_class_similarity * (1.0 - similar)) * ordered_pairs(ops.shape(outputs)[0])
    return 0.25 * ops.sum(similarity * squared_distances(outputs))


def drsch_schedule(step, total_steps, raises=RAISES, margin=MARGIN):
    """(slope a, margin C) at 0-based `step` of a run of `total_steps`: raised floor(raises * step / total_steps)
    times, a by x1.1 from 5 and C by +0.1 from `margin`."""
    step = validation.non_negative_int(step, "step")
    total_steps = validation.positive_int(total_steps, "total_steps")
    raised = min(raises, raises * step // total_steps)
    return SLOPE * SLOPE_FACTOR ** raised, margin + MARGIN_STEP * raised


class DRSCHContinuation(keras.callbacks.Callback):
    """Before each step: the slope of `hash_x` and the margin in the method's state, from the optimiser's step count
    and the run's steps (`drsch_schedule`); both logged per epoch as `drsch_slope` and `drsch_margin`. Validation
    runs at the starting margin."""

    def __init__(self, state, raises=RAISES, margin=MARGIN):
        super().__init__()
        self.state, self.raises, self.margin = state, raises, margin
        self.slope = self.training_margin = None

    def on_train_batch_begin(self, batch, logs=None):
        total_steps = self.params["epochs"] * self.params["steps"]
        self.slope, margin = drsch_schedule(int(self.model.optimizer.iterations.numpy()), total_steps, self.raises,
                                            self.margin)
        self.model.get_layer("hash_x").beta.assign(self.slope / 2.0)  # tanh(a z / 2)
        self.state["margin"].assign(margin)

    def on_test_begin(self, logs=None):
        # The validation loss at the starting margin, so that epochs compare (a growing margin raises every loss).
        self.training_margin = self.state["margin"].numpy()
        self.state["margin"].assign(self.margin)

    def on_test_end(self, logs=None):
        self.state["margin"].assign(self.training_margin)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.slope is not None:
            logs["drsch_slope"] = self.slope
            logs["drsch_margin"] = float(self.state["margin"].numpy())


@keras.saving.register_keras_serializable(package="saeh")
class BitWeights(keras.layers.Layer):
    """One learnable weight per bit, initialised to 1: outputs w * inputs (the released `elewise_product`)."""

    def build(self, input_shape):
        self.bit_weights = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="bit_weights",
                                           dtype="float32")

    def call(self, inputs):
        return inputs * ops.cast(self.bit_weights, inputs.dtype)


def drsch_batch_loss(outputs, batch, spec, state, hyperparameters):
    """The triplet margin loss at the state's margin and the Laplacian regulariser of the weighted outputs."""
    weighted = ops.cast(outputs[BIT_WEIGHTS], "float32")
    yield "drsch_triplet", triplet_margin_loss(weighted, batch["label"], state["margin"])
    yield "drsch_laplacian", laplacian_regulariser(weighted, batch["label"]), hyperparameters.laplacian_weight


def build_drsch(spec, hyperparameters):
    """SAEH's encoder, `drsch_fc7` and `hash_z` (linear, no non-linearity between them, as released), `hash_x` =
    tanh(a z / 2) and the per-bit weights `drsch_bit_weights`."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    fc7 = blocks.dense(FC7_UNITS, "drsch_fc7")(features)
    # Small weights, so that tanh(a z / 2) starts in its linear range (module docstring, "Initialisation").
    z = keras.layers.Dense(spec.hash_bits, kernel_initializer=keras.initializers.RandomNormal(stddev=HASH_INIT_STD),
                           kernel_regularizer=keras.regularizers.L2(defaults.WEIGHT_DECAY), name="hash_z",
                           dtype="float32")(fc7)
    codes = ScaledTanh(initial_beta=SLOPE / 2.0, name="hash_x", dtype="float32")(z)
    weighted = BitWeights(name=BIT_WEIGHTS, dtype="float32")(codes)
    return keras.Model(images, {"hash_x": codes, BIT_WEIGHTS: weighted}, name="drsch")


# ----------------------------------------------------------------------------------- codes of any shorter length

def bits_by_weight(weights):
    """The bit indices by decreasing |w| (ties by index): the order in which DRSCH keeps bits."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0:
        raise SaehError(f"weights must be one per bit, a non-empty vector; got shape {weights.shape}")
    return np.argsort(-np.abs(weights), kind="stable")


def truncated_codes(codes, weights, length):
    """`codes` ((N, bits) array, or `saeh.codes.Codes`) cut to `length` bits: the bits of the largest |w|, in that
    order (Hamming distances do not depend on the order)."""
    kept = bits_by_weight(weights)
    length = validation.positive_int(length, "length")
    if length > len(kept):
        raise SaehError(f"length must be at most the model's {len(kept)} bits; got {length}")
    kept = kept[:length]
    if hasattr(codes, "hash_bin"):
        return dataclasses.replace(codes, hash_org=codes.hash_org[:, kept], hash_bin=codes.hash_bin[:, kept])
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != len(weights):
        raise SaehError(f"codes must be (N, {len(weights)}), one column per weight; got shape {codes.shape}")
    return codes[:, kept]


def bit_weights(model):
    """The per-bit weights of a trained DRSCH model."""
    if BIT_WEIGHTS not in [layer.name for layer in model.layers]:
        raise SaehError(f"model {model.name!r} has no layer {BIT_WEIGHTS!r}: it is not a DRSCH model")
    return keras.ops.convert_to_numpy(model.get_layer(BIT_WEIGHTS).bit_weights)


def run_codes_at_length(run_dir, length):
    """(query, database) `saeh.codes.Codes` of a trained DRSCH run (its model.keras and codes/*.npz), cut to
    `length` bits by weight."""
    from saeh.codes import load_codes
    from saeh.inference import load_hash_model
    from saeh.run_folder import RunFolder

    folder = RunFolder(run_dir)
    weights = bit_weights(load_hash_model(folder.model))
    return tuple(truncated_codes(load_codes(os.path.join(folder.codes, f"{name}.npz")), weights, length)
                 for name in ("query", "database"))


def run_scores_at_lengths(run_dir, lengths, k=1000):
    """{length: mAP@k} of a trained DRSCH run's codes cut to each of `lengths` bits by weight: one model scored at
    several code lengths."""
    from saeh.retrieval import map_at_k

    scores = {}
    for length in lengths:
        query, database = run_codes_at_length(run_dir, length)
        scores[length] = float(map_at_k(query.hash_bin, database.hash_bin, query.label, database.label, k=k))
    return scores


# ------------------------------------------------------------------------------------------------------ the method

# The released solver: 800,000 iterations of 100 images, the rate x0.3333 every 50,000 (15 drops, at sixteenths).
RECIPE = recipes.Recipe(
    name="drsch",
    source="ruixuejianfei/BitScalableDeepHash at 3a9b658, prototxt/triplet/triplet_solver.prototxt: SGD base_lr "
           "0.003333, momentum 0, weight_decay 0.0005 (x0.1 conv, x0.5 fc and bit weights in "
           "triplet_train.prototxt), lr x0.3333 every 50,000 of 800,000 iterations; 10 classes x 10 images an "
           "iteration",
    momentum=0.0, nesterov=False, learning_rate=0.003333, weight_decay=2.5e-4,
    schedule="drops", drops=tuple(index / 16 for index in range(1, 16)), drop_factor=0.3333, drop_unit="step",
    batch_size=100,
    deviations=("the preset's steps instead of 800,000, the 15 drops at the same sixteenths of them",
                "one weight decay for every weight, the fc layers' and bit weights' 5e-4 x 0.5 (the convolutions' "
                "x0.1 not carried)",
                "a shuffled batch of 100 images and every triplet in it, instead of 10 classes x 10 images and "
                "40,000 random triplets a class",
                "SAEH's encoder from scratch instead of the released three-convolution network"),
)


@dataclasses.dataclass(frozen=True)
class DRSCHHyperparameters(Hyperparameters):
    margin: float = hyperparameter(MARGIN, "non-negative", "starting margin C of the triplet loss (released: 5)")
    laplacian_weight: float = hyperparameter(LAPLACIAN_WEIGHT, "non-negative",
                                             "weight beta of the Laplacian regulariser (released: 0.001)")
    raises: int = hyperparameter(RAISES, "non-negative",
                                 "raises of the slope (x1.1) and margin (+0.1) over the run (released: 80)")


DRSCH = register(DeepMethod(
    name="drsch",
    summary="DRSCH: triplet margin loss on per-bit weighted tanh outputs + Laplacian regulariser; bit-scalable "
            "codes (the largest weights kept)",
    build=build_drsch,
    batch_loss=drsch_batch_loss,
    loss_terms=("drsch_triplet", "drsch_laplacian"),
    hyperparameters=DRSCHHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGN_CODES,
    state=lambda context, hyperparameters: MethodState(margin=np.float32(hyperparameters.margin)),
    callbacks=lambda context, model, state, hyperparameters: [
        DRSCHContinuation(state, hyperparameters.raises, hyperparameters.margin)],
), listing_order=77)
