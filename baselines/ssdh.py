"""SSDH* (Yang, Lin & Chen, "Supervised learning of semantics-preserving hash via deep convolutional neural
networks", TPAMI 2018; arXiv 1507.00101), with SAEH's encoders in place of AlexNet, as SAEH's Table 1 does.

A sigmoid latent layer `hash_x` feeds a softmax classifier. With h the latent outputs (B images x K bits):

    classification = cross-entropy of `y_predict`
    forcing binary = -sum_{b,k} (h_bk - 0.5)^2 / (2 B K)       (half of SAEH's binary term, -mean((h - 0.5)^2))
    50% fire rate  = sum_b (mean_k h_bk - 0.5)^2 / (2 B)         (each IMAGE's bits half on; SAEH balances each bit)
    total = classification + binary_weight * forcing binary + fire_rate_weight * 50% fire rate

Scale: the released model's, i.e. the values its Caffe loss layers compute (kevinlin311tw/Caffe-DeepBinaryCode at
9eaa766, after commit 46ccfc8 "fixed bug in the process of back-propagation"):
`src/caffe/layers/K1_euclidean_loss_layer.cpp` l.24-33 gives -sum (h - 0.5)^2 / (2 count) over the latent blob
(count = B K), and `K2_euclidean_loss_layer.cpp` l.24-34 gives sum (x - 0.5)^2 / (2 count) over its input x, which
`examples/SSDH/train_val.prototxt` l.382-416 makes each image's mean over its 48 bits (Reshape, then AVE pooling of
kernel 1 x 48; count = B). Each layer's backward pass (l.42 and l.43) is that value's exact gradient. Both are half
of the plain means, which an earlier version of this module used (twice the released terms). The weights are the
prototxt's `loss_weight: 1` for both (l.380, l.415); the paper's own weights and normalisation of these terms were
not checked (no paper text here). The training log shipped beside it (`examples/SSDH/log.txt`) cannot settle the
scale: it holds iteration 0 only, where the sigmoids sit near 0.5 and both terms are near 0 whatever their scale,
and it was recorded in January 2016 with the layers of commit b045049, which divided by count * B and averaged K2
over the whole batch. `--set binary_weight=... --set fire_rate_weight=...` changes the weights.
"""

import dataclasses

import keras
from keras import ops

from saeh import recipes
from saeh.losses import BatchLoss, TermMean, binary_term, classifier_loss, classifier_metrics
from saeh.methods import DeepMethod, Hyperparameters, classification_targets, hyperparameter
from saeh.models import build_saeh
from saeh.registry import register


# The released Caffe layers halve each squared term (module docstring).
CAFFE_HALF = 0.5


def forcing_binary_term(codes):
    """SSDH's forcing binary as its K1 layer computes it: -sum over images and bits of (h - 0.5)^2 / (2 B K)."""
    return CAFFE_HALF * binary_term(codes)


def fire_rate_term(codes):
    """SSDH's 50% fire rate as its K2 layer computes it: sum over images of (mean over bits of h - 0.5)^2 / (2 B)."""
    return CAFFE_HALF * ops.mean(ops.square(ops.mean(codes, axis=1) - 0.5))


@keras.saving.register_keras_serializable(package="saeh")
class SSDHTermMean(TermMean):
    """The terms as SSDH's loss adds them (its `binary` is SSDH's forcing binary, half of SAEH's)."""

    terms = {**TermMean.terms, "binary": forcing_binary_term, "fire_rate": fire_rate_term}


@keras.saving.register_keras_serializable(package="saeh")
class SSDHHashLoss(BatchLoss):
    """binary_weight * forcing binary + fire_rate_weight * 50% fire rate on `hash_x`; the target is ignored."""

    def __init__(self, binary_weight=1.0, fire_rate_weight=1.0, name="ssdh_hash_terms", **kwargs):
        super().__init__(name=name, **kwargs)
        self.binary_weight = float(binary_weight)
        self.fire_rate_weight = float(fire_rate_weight)

    def batch_loss(self, y_true, y_pred):
        return self.binary_weight * forcing_binary_term(y_pred) + self.fire_rate_weight * fire_rate_term(y_pred)

    def get_config(self):
        return {**super().get_config(), "binary_weight": self.binary_weight, "fire_rate_weight": self.fire_rate_weight}


@dataclasses.dataclass(frozen=True)
class SSDHHyperparameters(Hyperparameters):
    binary_weight: float = hyperparameter(1.0, "non-negative", "weight of the forcing-binary term")
    fire_rate_weight: float = hyperparameter(1.0, "non-negative", "weight of the per-image 50% fire-rate term")


def build_ssdh(spec, hyperparameters):
    """SAEH's network without the decoder: encoder, sigmoid `hash_x`, classifier `y_predict` on the codes."""
    return build_saeh(spec.input_shape, spec.num_classes, gamma=0, name="ssdh", **spec.builder_arguments())


def ssdh_compile_arguments(spec, state, hyperparameters):
    return {
        "loss": {"y_predict": classifier_loss(spec.multi_label),
                 "hash_x": SSDHHashLoss(hyperparameters.binary_weight, hyperparameters.fire_rate_weight)},
        "loss_weights": {"y_predict": 1.0, "hash_x": 1.0},
        "metrics": {"y_predict": classifier_metrics(spec.multi_label),
                    "hash_x": [SSDHTermMean("binary"), SSDHTermMean("fire_rate")]},
    }


# The released Caffe solver (the same as DLBHC's). Its loss layers are batch means, as ours (module docstring), so
# its rate means the same step here.
RECIPE = recipes.Recipe(
    name="ssdh",
    source="kevinlin311tw/Caffe-DeepBinaryCode at 9eaa766, examples/SSDH/solver.prototxt l.4-11 (SGD momentum 0.9, "
           "lr 1e-3, x0.1 every 25,000 of 50,000 iterations, weight decay 5e-4), train_val.prototxt l.17 (batch 32) "
           "and l.423-427 (classifier fc8 at lr x10)",
    momentum=0.9, nesterov=False, learning_rate=1e-3, weight_decay=5e-4,
    schedule="drops", drops=(0.5,), drop_factor=0.1, drop_unit="step",
    layer_rates=(("y_predict/", 10.0),), batch_size=32,
    deviations=(
        "the preset's steps instead of 50,000, the drop at the same fraction of them",
        "Caffe's momentum keeps the rate inside its buffer (torch's, ours, outside): the two differ only in the "
        "steps after the drop",
        "the biases' own Caffe multipliers (rate x2, no decay) are not kept: every weight decays, at its layer's rate",
        "SAEH's encoder from scratch instead of an ImageNet AlexNet (SAEH's Table 1: a ResNet)",
    ),
)

SSDH = register(DeepMethod(
    name="ssdh",
    summary="SSDH*: classification + forcing-binary + per-image 50% fire rate on a sigmoid latent layer",
    build=build_ssdh,
    compile_arguments=ssdh_compile_arguments,
    targets=classification_targets,
    hyperparameters=SSDHHyperparameters(),
    recipe=RECIPE,
), listing_order=30)
