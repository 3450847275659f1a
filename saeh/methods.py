"""What a deep hashing method is to the one training loop: a model builder, its compile arguments, and how a batch
becomes the targets of its outputs. SAEH and SAEH-minus are defined here; the baselines define theirs the same way
and `baselines` registers them all by name."""

import dataclasses
import functools
from typing import Callable, Mapping, Optional

from saeh import defaults
from saeh.errors import SaehError
from saeh.losses import saeh_compile_arguments
from saeh.models import build_saeh


@dataclasses.dataclass(frozen=True)
class DeepMethod:
    """A deep hashing method trained by `saeh.training.train`.

    Attributes:
        name: registry name.
        summary: one line for listings.
        build: (input_shape, num_classes, hash_bits, stack_num, encoder, multi_label, encoder_weights,
            **hyperparameters) -> keras.Model with (at least) the output `hash_x`.
        compile_arguments: (multi_label, hash_bits, **hyperparameters) -> dict with `loss`, `loss_weights`, `metrics`.
        targets: (images, batch) -> dict of targets per output; `batch` holds the batch's per-sample arrays,
            `label` (one-hot or multi-hot float) and whatever `prepare` added.
        hyperparameters: defaults of the method's own settings, each documented where the method is defined.
        monitor: (history key, "max" or "min") for choosing the best epoch on the validation set.
        learning_rate: the starting rate of the step schedule (the original's 0.1 unless the method's own
            recipe needs another; the steps keep their ratios).
        prepare: optional (labels, hash_bits, seed, **hyperparameters) -> dict of per-sample arrays that travel
            with the images through the pipeline (CNNH's stage-1 codes); called once on the training and validation
            labels together, so both sets get targets from one consistent solution.
    """

    name: str
    summary: str
    build: Callable
    compile_arguments: Callable
    targets: Callable
    hyperparameters: Mapping = dataclasses.field(default_factory=dict)
    monitor: tuple = ("val_y_predict_accuracy", "max")
    learning_rate: float = defaults.LEARNING_RATE
    prepare: Optional[Callable] = None
    kind: str = "deep"

    def resolve(self, overrides=None):
        """The method's hyperparameters with `overrides` applied; unknown names are an error."""
        return resolve_hyperparameters(self.name, self.hyperparameters, overrides)


def resolve_hyperparameters(method_name, defaults, overrides=None):
    """`defaults` updated with the non-None `overrides`; a name the method does not take raises SaehError."""
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SaehError(f"method {method_name!r} has no hyperparameter(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(defaults)) or 'none'}")
    return {**defaults, **overrides}


def classification_targets(images, batch):
    """SAEH-like targets: labels for the classifier and (ignored) for the hash terms, the image for the decoder.

    The training loop keeps only the targets of outputs the model has, so SAEH-minus (no decoder) shares this.
    """
    return {"hash_x": batch["label"], "y_predict": batch["label"], "y_decoded": images}


def _build_saeh(input_shape, num_classes, hash_bits, stack_num, encoder, multi_label, encoder_weights,
                alpha=defaults.ALPHA, beta=defaults.BETA, gamma=defaults.GAMMA):
    return build_saeh(input_shape, num_classes, hash_bits=hash_bits, stack_num=stack_num, encoder=encoder,
                      gamma=gamma, multi_label=multi_label, encoder_weights=encoder_weights)


def _saeh_compile_arguments(multi_label, hash_bits, alpha=defaults.ALPHA, beta=defaults.BETA, gamma=defaults.GAMMA):
    return saeh_compile_arguments(alpha=alpha, beta=beta, gamma=gamma, multi_label=multi_label)


SAEH = DeepMethod(
    name="saeh",
    summary="SAEH: classification + binary + per-bit balance + gamma * decoder recovery, sigmoid hash layer",
    build=_build_saeh,
    compile_arguments=_saeh_compile_arguments,
    targets=classification_targets,
    hyperparameters={"alpha": defaults.ALPHA, "beta": defaults.BETA, "gamma": defaults.GAMMA},
)

# SAEH-minus is the paper's ablation: SAEH with gamma = 0, which removes the decoder from the graph.
SAEH_MINUS = dataclasses.replace(
    SAEH,
    name="saeh-minus",
    summary="SAEH-minus: SAEH without the decoder (gamma = 0)",
    build=functools.partial(_build_saeh, gamma=0.0),
    compile_arguments=functools.partial(_saeh_compile_arguments, gamma=0.0),
    hyperparameters={"alpha": defaults.ALPHA, "beta": defaults.BETA},
)
