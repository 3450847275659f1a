"""The loss and the continuation schedule of HashNet (Cao, Long, Wang & Yu, "HashNet: deep learning to hash by
continuation", ICCV 2017): its loss and schedule as functions, then the registered method.

The code layer's output z goes through h = tanh(beta z). Over pairs (i, j) with s_ij = 1 when the two images share
a label (label sets that overlap, for multi-hot labels) and x_ij = alpha <h_i, h_j>, the paper's loss is

    L = sum_ij w_ij [log(1 + exp(x_ij)) - s_ij x_ij],        alpha = 10 / bits,

where log(1 + e^x) is replaced by x when x > 15 (the official `l_threshold`; at exactly 15 the log form is kept,
as the official code's `<=` mask does). With |h| <= 1 and alpha = 10 / bits, x never exceeds 10, so the threshold
only matters for other alphas or unbounded inputs. Below it, log(1 + e^x) is computed stably (`stable_softplus`).

Pair weights. The paper weights similar pairs by w = |S| / |S1| and dissimilar ones by |S| / |S0|, S1 and S0 being
the numbers of similar and dissimilar pairs among the |S| pairs of the step; the official PyTorch code has this as
`pairwise_loss_updated` (thuml/HashNet, `pytorch/src/loss.py`). The released `train.py` calls `pairwise_loss`
instead, which weights similar pairs by a constant `class_num`, as the Caffe code does. We follow the paper.
`hashnet_pair_loss` returns the paper's sum divided by the number of pairs, as `pairwise_loss_updated` does:

    loss = (1 / |S|) sum_ij w_ij l_ij = mean over similar pairs of l + mean over dissimilar pairs of l.

When a step has no pair of one kind, that kind's weight is 0 (there is nothing to weight) and the other's is
|S| / |S| = 1, so the loss is the plain mean over the pairs, with no NaN. Weights depend on the labels only.

Pairs. The official code draws two batches from two independently shuffled loaders over the training list and
pairs every image of the first with every image of the second, never two images of the same batch (thuml/HashNet
at 85387b8, `pytorch/src/train.py` l.194-215; the loss over those cross pairs is `pytorch/src/loss.py` l.6-23 and
l.25-44): an image meets itself only when both loaders happen to draw it, 1 pair in n. `hashnet_pair_loss(h_a,
labels_a, h_b, labels_b, ...)` is that loss over all len(h_a) x len(h_b) cross pairs (or the pairs `pairs` marks).
We train on one batch, so `hashnet_batch_loss` takes its ordered pairs (i, j) with i != j (`saeh.pairs.
ordered_pairs`): pairs of two different images drawn independently, as the official streams give, B (B - 1) of
them where splitting the batch into two streams would give B^2 / 4. The batch against itself with its self-pairs,
as an earlier version did, adds B pairs that are similar by definition (about 14% of the similar pairs of a
CIFAR-10 batch of 64) and reward ||h_i||^2 alone, pushing codes to +-1 whatever the labels. A batch with no pair
of one kind weights the other kind alone (above); a batch of one image has no pair and a loss of 0.

Continuation. beta = (1 + 0.005 t)^0.5, recomputed every 200 iterations (official `scale_tanh_layer.cpp` and
`pytorch/src/network.py`): `hashnet_beta(t)` gives beta at the last multiple of 200 <= t, so beta(0) = 1 and
beta(10000) = sqrt(51) ~= 7.14. The official PyTorch counter is incremented before it is read, so passing it the
1-based number of the current training step reproduces it exactly.

Recipe (`RECIPE`): the official PyTorch code's, SGD Nesterov 0.9 at 3e-4 (its README's ResNet-50 command), the hash
layer `hash_z` at 10x, weight decay 5e-4, the rate halved every 2,000 of 10,000 iterations (kept at those fractions
of the run's steps), 72 images a step. Before issue 27 it trained with SAEH's optimiser at 0.01 (at 0.1 the codes
collapsed: full MNIST, mnist-cpu, 32 bits: 27 of 32 bits constant, mAP@1000 35.55).

Not implemented: the Caffe option `continous_similarity`, which scales multi-label pairs by 4 cos^2(y_i, y_j).
"""

import dataclasses
import math

import keras
from keras import ops

from baselines.dpsh import check_same_size, float_matrix, stable_softplus
from saeh import defaults, recipes, validation
from saeh.losses import BatchLoss
from saeh.methods import SIGN_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import blocks, encoders
from saeh.models.layers import ScaledTanh
from saeh.pairs import ordered_pairs, similar_pairs
from saeh.registry import register


BETA_GAMMA, BETA_POWER, BETA_STEP = 0.005, 0.5, 200  # the official continuation (module docstring)


def hashnet_alpha(bits):
    """The adaptive sigmoid's scale alpha = 10 / bits."""
    return 10.0 / validation.positive_int(bits, "bits")


def hashnet_beta(iteration, gamma=BETA_GAMMA, power=BETA_POWER, step=BETA_STEP):
    """beta = (1 + gamma t)^power with t the last multiple of `step` <= `iteration` (a non-negative integer)."""
    iteration = validation.non_negative_int(iteration, "iteration")
    step = validation.positive_int(step, "step")
    gamma = validation.non_negative_number(gamma, "gamma")
    power = validation.finite_number(power, "power")
    return float(math.pow(1.0 + gamma * (iteration // step * step), power))


def hashnet_pair_loss(h_a, labels_a, h_b, labels_b, alpha, threshold=15.0, pairs=None):
    """The weighted pair loss of the module docstring over all pairs (row of h_a, row of h_b), as a float32 scalar.

    `h_a` (A x bits) and `h_b` (B x bits) are tanh(beta z) outputs, `labels_a` / `labels_b` their one-hot or
    multi-hot labels, `alpha` > 0 the sigmoid scale (`hashnet_alpha(bits)`) and `threshold` the x above which
    log(1 + e^x) is replaced by x. `pairs`: optional A x B matrix, 1 for the pairs that count and 0 for the others
    (default: every pair). Returns (1 / |S|) sum w_ij l_ij = mean over similar + mean over dissimilar pairs.
    """
    alpha = validation.positive_number(alpha, "alpha")
    threshold = validation.finite_number(threshold, "threshold")
    h_a = float_matrix("h_a", h_a)
    h_b = float_matrix("h_b", h_b)
    labels_a = float_matrix("labels_a", labels_a)
    labels_b = float_matrix("labels_b", labels_b)
    check_same_size("h_a", h_a, 1, "h_b", h_b, 1, "bits (columns)")
    check_same_size("h_a", h_a, 0, "labels_a", labels_a, 0, "rows")
    check_same_size("h_b", h_b, 0, "labels_b", labels_b, 0, "rows")
    similar = similar_pairs(labels_a, labels_b)
    counted = ops.ones_like(similar) if pairs is None else ops.cast(pairs, "float32")
    logits = alpha * ops.matmul(h_a, ops.transpose(h_b))
    log_term = ops.where(logits > threshold, logits, stable_softplus(logits))
    pair_losses = counted * (log_term - similar * logits)
    similar_count = ops.sum(counted * similar)
    dissimilar_count = ops.sum(counted * (1.0 - similar))
    pairs = similar_count + dissimilar_count
    similar_weight = ops.where(similar_count > 0, pairs / ops.maximum(similar_count, 1.0), 0.0)
    dissimilar_weight = ops.where(dissimilar_count > 0, pairs / ops.maximum(dissimilar_count, 1.0), 0.0)
    weights = similar * similar_weight + (1.0 - similar) * dissimilar_weight
    return ops.sum(weights * pair_losses) / ops.maximum(pairs, 1.0)


def hashnet_batch_loss(h, labels, alpha, threshold=15.0):
    """`hashnet_pair_loss` over the ordered pairs (i, j), i != j, of one batch (module docstring, "Pairs")."""
    h = float_matrix("h", h)
    return hashnet_pair_loss(h, labels, h, labels, alpha, threshold, pairs=ordered_pairs(ops.shape(h)[0]))


# ------------------------------------------------------------------------------------------------------- the method
# The network is SAEH's encoder, a linear layer `hash_z` and `hash_x` = tanh(beta z) (`ScaledTanh`); codes are
# sign(z). `HashNetContinuation` sets beta before every training step from the optimiser's step count (so a resumed
# run continues the schedule where it stopped) and logs it per epoch as `hashnet_beta`. Pairs: one batch against
# itself without self-pairs (see above). The best epoch is the lowest validation loss. Recipe: `RECIPE`.


# The official PyTorch recipe: the hash layer (ours: `hash_z`) at 10x the rate, the rate x0.5 every 2,000 of 10,000
# iterations (per step), two loaders of 36 images a step. Its loss is a mean over pairs, as ours.
LEARNING_RATE = 3e-4
RECIPE = recipes.Recipe(
    name="hashnet",
    source="thuml/HashNet at 85387b8, pytorch/src/train.py: l.166-167 hash layer at lr x10, l.260-262 SGD "
           "momentum 0.9, Nesterov, weight decay 5e-4, step schedule gamma 0.5 every 2000, l.237 10,000 "
           "iterations, l.267-274 two loaders of 36; pytorch/src/lr_schedule.py l.13-15 lr = init_lr x "
           "0.5^(iter // 2000); pytorch/README.md l.54 --lr 0.0003 (ResNet-50)",
    momentum=0.9, nesterov=True, learning_rate=LEARNING_RATE, weight_decay=5e-4,
    schedule="drops", drops=(0.2, 0.4, 0.6, 0.8), drop_factor=0.5, drop_unit="step",
    layer_rates=(("hash_z/", 10.0),), batch_size=72,
    deviations=("the preset's steps instead of 10,000, the halvings at the same fractions of them",
                "one batch of 72 images, its pairs of two different images, instead of two streams of 36 and their "
                "cross pairs",
                "SAEH's encoder from scratch instead of an ImageNet ResNet-50 / AlexNet"),
)


class HashNetLoss(BatchLoss):
    """`hashnet_batch_loss`: the batch's pairs of two different images; the target is the batch's labels."""

    def __init__(self, alpha, threshold=15.0, name="hashnet", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.threshold = float(alpha), float(threshold)

    def batch_loss(self, y_true, y_pred):
        labels, codes = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        return hashnet_batch_loss(codes, labels, self.alpha, self.threshold)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "threshold": self.threshold}


class HashNetContinuation(keras.callbacks.Callback):
    """beta = hashnet_beta(step) before each training step (step counted from 1, as the official counter), written
    into the model's `ScaledTanh` layer `hash_x`; the epoch's last beta is logged as `hashnet_beta`."""

    def __init__(self, gamma=BETA_GAMMA, power=BETA_POWER, step=BETA_STEP):
        super().__init__()
        self.gamma, self.power, self.step = gamma, power, step
        self.beta = None

    def on_train_batch_begin(self, batch, logs=None):
        iteration = int(self.model.optimizer.iterations.numpy()) + 1
        self.beta = hashnet_beta(iteration, self.gamma, self.power, self.step)
        self.model.get_layer("hash_x").beta.assign(self.beta)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.beta is not None:
            logs["hashnet_beta"] = self.beta


@dataclasses.dataclass(frozen=True)
class HashNetHyperparameters(Hyperparameters):
    beta_gamma: float = hyperparameter(BETA_GAMMA, "non-negative", "gamma of the continuation (1 + gamma t)^0.5")
    beta_step: int = hyperparameter(BETA_STEP, "positive integer", "training steps between two raises of beta")


def build_hashnet(spec, hyperparameters):
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    z = blocks.dense(spec.hash_bits, "hash_z", dtype="float32")(features)
    return keras.Model(images, {"hash_x": ScaledTanh(name="hash_x", dtype="float32")(z)}, name="hashnet")


HASHNET = register(DeepMethod(
    name="hashnet",
    summary="HashNet: class-balanced pairwise cross-entropy on tanh(beta z), beta raised by continuation",
    build=build_hashnet,
    compile_arguments=lambda spec, state, hyperparameters: {
        "loss": {"hash_x": HashNetLoss(hashnet_alpha(spec.hash_bits))}},
    targets=lambda images, batch: {"hash_x": batch["label"]},
    hyperparameters=HashNetHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGN_CODES,
    callbacks=lambda context, model, state, hyperparameters: [
        HashNetContinuation(gamma=hyperparameters.beta_gamma, step=hyperparameters.beta_step)],
), listing_order=70)
