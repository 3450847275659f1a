"""CSQ (Yuan, Wang, Yuan, Zhou, Tay, Feng & Ji, "Central Similarity Quantization for Efficient Image and Video
Retrieval", CVPR 2020; official code yuanli2333/Hadamard-Matrix-for-hashing).

Every class gets a fixed hash centre c in {-1, +1}^q (q = bits) before training (`baselines.hash_centres.csq_centres`:
rows of a Hadamard matrix, or balanced random vectors). With h = tanh output of the code layer (B images x q bits),
t = (c_y + 1) / 2 the 0/1 form of each image's centre and p = (h + 1) / 2, the loss is

    central      = -(1 / (B q)) sum_{b,k} [t_bk log p_bk + (1 - t_bk) log(1 - p_bk)]      (BCE, mean over bits, batch)
    quantisation = (1 / (B q)) sum_{b,k} (|h_bk| - 1)^2
    loss         = lambda_0 * central + lambda * quantisation,       lambda_0 = 1.

This is the loss of the official `train.py`, with its pairwise term (weight lambda_1) off: every command of the
official README sets lambda_1 = 0, so no pairwise term is implemented. The quantisation term is the official code's
squared form; the paper's form (a sum of log cosh(|h_k| - 1)) is [unverified] in our notes, and is not used.
p is clipped to [1e-7, 1 - 1e-7] before the logs (Keras's own binary cross-entropy clip; torch's BCELoss, used by
the official code, clamps each log at -100 instead), so a saturated tanh gives a finite loss.

Multi-label images (official `Hash_center_multilables`): the centre is the sign of the mean of the image's label
centres, and bits where that mean is 0 are taken from one random +-1 vector drawn once per run
(`multi_label_centre`, `random_fill`). Centres and that vector are derived from the run's seed, so a resumed run
gets the same ones. Validation images get centres by the same rule from their own labels; these targets only feed
the validation loss, by which the best epoch is chosen ("val_loss", "min": CSQ has no classifier). Codes are
sign(h) (threshold 0; the official test code makes h >= 0 a +1, which differs only for an output of exactly 0).

Defaults and their sources:

* quantization_weight (lambda) = 0.05: the official README's value for ResNet-50, the closest of its backbones to
  our ResNet encoder (its AlexNet commands use 0.001, and 0.0001 for ImageNet at 64 bits).
* lambda_0 = 1, lambda_1 = 0: every official command.
* recipe (`RECIPE`): the official one, Adam (0.9, 0.999) at 1e-3 with the backbone (every weight but `hash_x`) at
  0.01x, the rate x0.7 every 10 of 90 epochs (at those fractions of the run), batch 64, no weight decay. Before
  issue 27 CSQ trained with SAEH's recipe at 0.1.

Network: SAEH's encoder and one Dense code layer `hash_x` with tanh (`saeh.models.build_code_network`). The paper's
ResNet head (fc - ReLU - dropout - fc - ReLU - fc to q bits, then tanh; no dropout for AlexNet) is replaced by our
shared encoder's single code layer.

SHC (baselines/shc.py) trains with this loss and these targets, on centres of its own.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from baselines.hash_centres import csq_centres, multi_label_centre, pairwise_hamming, random_fill
from saeh import recipes
from saeh.errors import SaehError
from saeh.losses import BatchLoss
from saeh.methods import SIGN_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import build_code_network
from saeh.pairs import off_diagonal
from saeh.registry import register

QUANTIZATION_WEIGHT = 0.05  # official README, ResNet-50 commands
EPSILON = 1e-7  # clip of p = (h + 1) / 2 away from 0 and 1, as Keras's binary cross-entropy
CENTRE = "centre"  # the per-sample array `prepare` adds: each image's centre as 0/1 float32


# The official recipe: Adam, the backbone (everything but the hash head, ours `hash_x`) at 0.01x the rate, the rate
# x0.7 every 10 of 90 epochs (set before each epoch), batch 64, no weight decay (Adam's default).
RECIPE = recipes.Recipe(
    name="csq",
    source="yuanli2333/Hadamard-Matrix-for-hashing at 55cab00, train.py: l.78-80 Adam betas (0.9, 0.999), "
           "backbone group at multi_lr x lr, no weight decay; l.103 and l.182-188 lr x 0.7^(epoch // 10) before "
           "each epoch; l.27 90 epochs; options.py l.9 lr 1e-3, l.14 batch 64, l.19 multi_lr 0.01",
    optimizer="adam", momentum=0.0, nesterov=False, learning_rate=1e-3,
    schedule="drops", drops=tuple(k / 9 for k in range(1, 9)), drop_factor=0.7,
    layer_rates=(("hash_x/", 1.0), ("", 0.01)), batch_size=64,
    deviations=("the preset's epochs instead of 90, the drops at the same fractions of them",
                "SAEH's encoder from scratch instead of an ImageNet ResNet-50; one Dense hash layer instead of the "
                "three-layer head"),
)


def central_term(targets, codes):
    """BCE between p = (codes + 1) / 2 (p clipped to [EPSILON, 1 - EPSILON]) and the 0/1 `targets`, averaged over
    bits and batch."""
    probabilities = ops.clip((codes + 1.0) / 2.0, EPSILON, 1.0 - EPSILON)
    return -ops.mean(targets * ops.log(probabilities) + (1.0 - targets) * ops.log(1.0 - probabilities))


def quantization_term(codes):
    """mean((|h| - 1)^2) over bits and batch: the official code's quantisation term."""
    return ops.mean(ops.square(ops.abs(codes) - 1.0))


def csq_loss(targets, codes, quantization_weight):
    """central_term + quantization_weight * quantization_term, on tanh outputs `codes` and 0/1 centre `targets`."""
    targets, codes = ops.cast(targets, "float32"), ops.cast(codes, "float32")
    return central_term(targets, codes) + quantization_weight * quantization_term(codes)


@keras.saving.register_keras_serializable(package="saeh")
class CSQLoss(BatchLoss):
    """`csq_loss` on `hash_x`, whose target is each image's centre in 0/1 form."""

    def __init__(self, quantization_weight=QUANTIZATION_WEIGHT, name="csq", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantization_weight = float(quantization_weight)

    def batch_loss(self, y_true, y_pred):
        return csq_loss(y_true, y_pred, self.quantization_weight)

    def get_config(self):
        return {**super().get_config(), "quantization_weight": self.quantization_weight}


def centre_targets(centres, labels, fill=None, what="images"):
    """Each image's centre in 0/1 form, (N, bits) float32, from the +-1 `centres` (C, bits).

    `labels`: (N,) class ids (the image's class centre) or (N, C) multi-hot (`multi_label_centre` with the +-1
    vector `fill`, which multi-hot labels need). `what` names the images in errors.
    """
    centres = np.asarray(centres)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.size and (labels.min() < 0 or labels.max() >= len(centres)):
            raise SaehError(f"the labels of the {what} must lie in [0, {len(centres) - 1}]; got values from "
                            f"{labels.min()} to {labels.max()}")
        chosen = centres[labels.astype(np.int64)]
    else:
        if fill is None:
            raise SaehError("multi-hot labels need the random fill vector of multi-label centres")
        try:
            chosen = multi_label_centre(centres, labels, fill)
        except SaehError as error:
            raise SaehError(f"hash centres of the {what}: {error}") from error
    return ((chosen.astype(np.float32) + 1.0) / 2.0).reshape(len(labels), centres.shape[1])


def centre_extras(centres, context, fill=None):
    """(train extras, validation extras) of `prepare`: {CENTRE: 0/1 centre per image} for both sets."""
    return ({CENTRE: centre_targets(centres, context.train.labels, fill, "training images")},
            {CENTRE: centre_targets(centres, context.validation.labels, fill, "validation images")})


def minimum_distance(centres):
    """The smallest Hamming distance between two of the +-1 rows of `centres`."""
    distances = pairwise_hamming(centres)
    return int(off_diagonal(distances).min())


@dataclasses.dataclass(frozen=True)
class CSQHyperparameters(Hyperparameters):
    quantization_weight: float = hyperparameter(QUANTIZATION_WEIGHT, "non-negative",
                                                "lambda: weight of the quantisation term mean((|h| - 1)^2)")


def prepare_csq(context, hyperparameters):
    """CSQ's centres for the run (from its seed) and each training and validation image's centre."""
    spec = context.spec
    centres = csq_centres(spec.num_classes, spec.hash_bits, seed=context.seed)
    fill = random_fill(spec.hash_bits, seed=context.seed) if spec.multi_label else None
    context.log(f"CSQ hash centres: {spec.num_classes} classes, {spec.hash_bits} bits, minimum pairwise Hamming "
                f"distance {minimum_distance(centres)}")
    return centre_extras(centres, context, fill)


def centre_code_targets(images, batch):
    """The target of `hash_x`: the image's centre, prepared by `prepare`."""
    return {"hash_x": batch[CENTRE]}


def build_csq(spec, hyperparameters):
    """SAEH's encoder and a tanh code layer `hash_x` of `spec.hash_bits` units."""
    return build_code_network(spec, "csq", activation="tanh")


def csq_compile_arguments(spec, state, hyperparameters):
    return {"loss": {"hash_x": CSQLoss(hyperparameters.quantization_weight)}}


CSQ = register(DeepMethod(
    name="csq",
    summary="CSQ: BCE to fixed Hadamard/random class hash centres + lambda * mean((|h| - 1)^2) on tanh codes",
    build=build_csq,
    compile_arguments=csq_compile_arguments,
    targets=centre_code_targets,
    hyperparameters=CSQHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGN_CODES,
    prepare=prepare_csq,
    class_code_targets=True,
), listing_order=80)
