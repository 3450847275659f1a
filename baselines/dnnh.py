"""DNNH, also called NINH (Lai, Pan, Liu & Yan, "Simultaneous feature learning and hash coding with deep neural
networks", CVPR 2015): its triplet ranking loss as a function of tensors, then the registered method (encoder,
divide-and-encode layer, triplets drawn in each batch).

The network: shared convolution layers, then a divide-and-encode module that splits the features into q slices and
encodes each slice into one bit. We follow the released Caffe code (HYPJUDY/caffe-dnnh, after the first author's
`codes_triplet_hashing1.zip`): slice j -> InnerProduct(1) -> sigmoid (`saeh.models.layers.DivideAndEncode`), with no
piece-wise threshold layer after the sigmoid (the paper describes one, g(s) = 0 below 0.5 - eps, s in between, 1
above 0.5 + eps; the code has none). The released net's last 1x1 convolution gives 50 q channels, 50 per bit; ours
is a Dense layer `dnnh_projection` of 50 q units with ReLU on SAEH's encoder's features, so that they divide evenly.

The loss (`triplet_ranking_hinge_loss_layer.cpp` l.57, 66, the forward): for a batch of B triplets (image I, I+
sharing a label with it, I- sharing none) with outputs F, F+, F- in (0, 1)^q,

    loss = (1/B) sum max(0, m + ||F - F+||^2 - ||F - F-||^2),   m = MARGIN = 2 (every released prototxt; the
                                                                proto's default and the paper's margin are 1).

Its Caffe backward scales the gradient by 2/B and then by 2 again (l.88-114): twice the forward's gradient. We
train with the forward's own gradient (what Keras differentiates), at the solver's rate.

Triplets: the released code precomputes them offline (a list file read by `convert_triplet_imageset.cpp`, batches of
100 triplets stacked as 9-channel records). Ours are drawn online in each batch (a batch of the shuffled training
set): every image is an anchor, with a positive and a negative drawn uniformly among the batch's images
(`saeh.pairs.sample_triplets`); an anchor without both in its batch is left out, and the loss is the mean over the
others. The draws come from a seed kept in the method's state (the run's seed and a counter), so a run is repeatable
and a resumed run continues the sequence. Codes: bit = sigmoid output > 0.5 (the released `tools/caffe.cpp` l.344).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from saeh import defaults, recipes
from saeh.method_state import MethodState
from saeh.methods import SIGMOID_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import blocks, encoders
from saeh.models.layers import DivideAndEncode
from saeh.pairs import sample_triplets
from saeh.registry import register

MARGIN = 2.0
FEATURES_PER_BIT = 50  # the released net's last 1x1 conv: 50 q channels for q bits


def triplet_ranking_losses(anchors, positives, negatives, margin=MARGIN):
    """max(0, margin + ||F - F+||^2 - ||F - F-||^2) for each triplet: one value per row of the (B, q) outputs."""
    anchors, positives, negatives = (ops.cast(ops.convert_to_tensor(value), "float32")
                                     for value in (anchors, positives, negatives))
    to_positive = ops.sum(ops.square(anchors - positives), axis=-1)
    to_negative = ops.sum(ops.square(anchors - negatives), axis=-1)
    return ops.maximum(0.0, margin + to_positive - to_negative)


def triplet_ranking_loss(anchors, positives, negatives, margin=MARGIN, valid=None):
    """The mean of `triplet_ranking_losses` over the triplets, or over those where `valid` (a 0/1 mask) is 1 (0 if
    none is)."""
    losses = triplet_ranking_losses(anchors, positives, negatives, margin)
    if valid is None:
        return ops.mean(losses)
    valid = ops.cast(valid, "float32")
    return ops.sum(losses * valid) / ops.maximum(ops.sum(valid), 1.0)


class StateSeed(keras.random.SeedGenerator):
    """A seed generator whose state is a variable of the method's state (saved in checkpoints), rather than one of
    its own: each draw returns the (seed, counter) pair and advances the counter, as Keras's own generator does."""

    def __init__(self, variable):  # no generator variable of its own: the method state's holds the counter
        self.variable = variable

    def next(self, ordered=True):
        value = ops.convert_to_tensor(self.variable) * 1
        self.variable.assign_add(ops.convert_to_tensor(np.array([0, 1]), dtype=self.variable.dtype))
        return value


def dnnh_batch_loss(outputs, batch, spec, state, hyperparameters):
    """The triplet ranking loss of the triplets drawn from the batch's labels (`DeepMethod.batch_loss`)."""
    codes = ops.cast(outputs["hash_x"], "float32")
    anchors, positives, negatives, valid = sample_triplets(batch["label"], StateSeed(state["triplet_seed"]))
    yield "dnnh", triplet_ranking_loss(ops.take(codes, anchors, axis=0), ops.take(codes, positives, axis=0),
                                       ops.take(codes, negatives, axis=0), hyperparameters.margin, valid)


def build_dnnh(spec, hyperparameters):
    """SAEH's encoder, `dnnh_projection` (Dense 50 q, ReLU) and the divide-and-encode layer `hash_x`."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    features = blocks.dense(FEATURES_PER_BIT * spec.hash_bits, "dnnh_projection", activation="relu")(features)
    codes = DivideAndEncode(spec.hash_bits, weight_decay=defaults.WEIGHT_DECAY, name="hash_x",
                            dtype="float32")(features)
    return keras.Model(images, {"hash_x": codes}, name="dnnh")


# The released solver: 100k iterations of 100 triplets, the rate x0.1 at 60k and 70k (counted in steps here).
RECIPE = recipes.Recipe(
    name="dnnh",
    source="HYPJUDY/caffe-dnnh at 9d06962, runtime/12bit/train12_solver.prototxt l.2-8, 10: SGD base_lr 0.001, "
           "momentum 0.9, weight_decay 0.0005, lr x0.1 (gamma) at stepvalues 60000 and 70000, max_iter 100000; "
           "runtime/12bit/train12.prototxt l.8 batch 100 triplets",
    momentum=0.9, nesterov=False, learning_rate=1e-3, weight_decay=5e-4,
    schedule="drops", drops=(0.6, 0.7), drop_factor=0.1, drop_unit="step", batch_size=100,
    deviations=("the preset's steps instead of 100,000, the drops at the same fractions of them",
                "a batch of 100 images, each an anchor of a triplet drawn in the batch, instead of 100 precomputed "
                "triplets (300 images)",
                "the forward's gradient; Caffe's backward doubles the loss's gradient (the same step as rate 2e-3 "
                "with weight decay 2.5e-4)",
                "SAEH's encoder from scratch and a Dense projection to 50 q units instead of the Network-in-Network "
                "convolutions"),
)


@dataclasses.dataclass(frozen=True)
class DNNHHyperparameters(Hyperparameters):
    margin: float = hyperparameter(MARGIN, "non-negative", "margin m of the triplet ranking loss (released: 2)")


DNNH = register(DeepMethod(
    name="dnnh",
    summary="DNNH/NINH: divide-and-encode (one sigmoid bit per feature slice), triplet ranking loss, margin 2",
    build=build_dnnh,
    batch_loss=dnnh_batch_loss,
    loss_terms=("dnnh",),
    hyperparameters=DNNHHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGMOID_CODES,
    state=lambda context, hyperparameters: MethodState(triplet_seed=np.array([context.seed, 0], np.int64)),
), listing_order=75)
