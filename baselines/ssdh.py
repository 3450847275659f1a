"""SSDH* (Yang, Lin & Chen, "Supervised learning of semantics-preserving hash via deep convolutional neural
networks", TPAMI 2018; arXiv 1507.00101), with SAEH's encoders in place of AlexNet, as SAEH's Table 1 does.

A sigmoid latent layer `hash_x` feeds a softmax classifier. With h the latent outputs (B images x K bits):

    classification = cross-entropy of `y_predict`
    forcing binary = -mean_{b,k} (h_bk - 0.5)^2                  (same as SAEH's binary term)
    50% fire rate  = mean_b (mean_k h_bk - 0.5)^2                 (each IMAGE's bits half on; SAEH balances each bit)
    total = classification + binary_weight * forcing binary + fire_rate_weight * 50% fire rate

Weights 1 and 1: the loss weights of SSDH's released Caffe model (its training log prints "(* 1 = ...)" for both).
Those weights multiply the values its Caffe loss layers compute, and the layers do not normalise the two terms as
the means above do (the logged forcing-binary value is far smaller than -mean((h - 0.5)^2) would be), so equal
weights here are not the released model's exact balance between the terms; they are SSDH's stated choice of equal
weights on the terms as defined above. `--set binary_weight=... --set fire_rate_weight=...` changes them.
"""

import keras
from keras import ops

from saeh.losses import BatchLoss, TermMean, binary_term, classifier_loss, classifier_metrics
from saeh.methods import DeepMethod, classification_targets
from saeh.models import build_saeh
from saeh.registry import register


def fire_rate_term(codes):
    """SSDH's 50% fire rate: mean over images of (mean over bits of h - 0.5)^2."""
    return ops.mean(ops.square(ops.mean(codes, axis=1) - 0.5))


@keras.saving.register_keras_serializable(package="saeh")
class SSDHTermMean(TermMean):
    terms = {**TermMean.terms, "fire_rate": fire_rate_term}


@keras.saving.register_keras_serializable(package="saeh")
class SSDHHashLoss(BatchLoss):
    """binary_weight * forcing binary + fire_rate_weight * 50% fire rate on `hash_x`; the target is ignored."""

    def __init__(self, binary_weight=1.0, fire_rate_weight=1.0, name="ssdh_hash_terms", **kwargs):
        super().__init__(name=name, **kwargs)
        self.binary_weight = float(binary_weight)
        self.fire_rate_weight = float(fire_rate_weight)

    def batch_loss(self, y_true, y_pred):
        return self.binary_weight * binary_term(y_pred) + self.fire_rate_weight * fire_rate_term(y_pred)

    def get_config(self):
        return {**super().get_config(), "binary_weight": self.binary_weight, "fire_rate_weight": self.fire_rate_weight}


def build_ssdh(spec, binary_weight=1.0, fire_rate_weight=1.0):
    """SAEH's network without the decoder: encoder, sigmoid `hash_x`, classifier `y_predict` on the codes."""
    return build_saeh(spec.input_shape, spec.num_classes, gamma=0, name="ssdh", **spec.builder_arguments())


def ssdh_compile_arguments(spec, state, binary_weight=1.0, fire_rate_weight=1.0):
    return {
        "loss": {"y_predict": classifier_loss(spec.multi_label),
                 "hash_x": SSDHHashLoss(binary_weight, fire_rate_weight)},
        "loss_weights": {"y_predict": 1.0, "hash_x": 1.0},
        "metrics": {"y_predict": classifier_metrics(spec.multi_label),
                    "hash_x": [SSDHTermMean("binary"), SSDHTermMean("fire_rate")]},
    }


SSDH = register(DeepMethod(
    name="ssdh",
    summary="SSDH*: classification + forcing-binary + per-image 50% fire rate on a sigmoid latent layer",
    build=build_ssdh,
    compile_arguments=ssdh_compile_arguments,
    targets=classification_targets,
    hyperparameters={"binary_weight": 1.0, "fire_rate_weight": 1.0},
    constraints={"binary_weight": "non-negative", "fire_rate_weight": "non-negative"},
))
