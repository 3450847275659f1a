"""What a deep hashing method is to the one training loop: a model builder, its compile arguments, and how a batch
becomes the targets of its outputs. SAEH and SAEH-minus are defined here; the baselines define theirs the same way
and `baselines` registers them all by name."""

import dataclasses
import functools
import math
import numbers
from typing import Callable, Mapping, Optional

from saeh import defaults
from saeh.errors import SaehError
from saeh.losses import CLASSIFIER_ACCURACY, saeh_compile_arguments
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
        prepare: optional (train_labels, validation_labels, hash_bits, seed, **hyperparameters) -> (dict, dict)
            of per-sample arrays for the training and the validation images, which travel with their images
            through the pipeline (CNNH's stage-1 codes). The validation labels must not shape the training
            arrays: under --select-on-test the validation set is the query set.
        constraints: {hyperparameter: "non-negative" | "positive" | "positive integer"}, checked by `resolve`
            (a None value, "worked out later", is not checked).
    """

    name: str
    summary: str
    build: Callable
    compile_arguments: Callable
    targets: Callable
    hyperparameters: Mapping = dataclasses.field(default_factory=dict)
    monitor: tuple = (f"val_y_predict_{CLASSIFIER_ACCURACY}", "max")
    learning_rate: float = defaults.LEARNING_RATE
    prepare: Optional[Callable] = None
    constraints: Mapping = dataclasses.field(default_factory=dict)
    kind: str = "deep"

    def resolve(self, overrides=None):
        """The method's hyperparameters with `overrides` applied; unknown names and values of the wrong type or
        out of range are an error."""
        resolved = resolve_hyperparameters(self.name, self.hyperparameters, overrides)
        check_constraints(self.name, resolved, self.constraints)
        return resolved


CONSTRAINTS = {
    "non-negative": lambda value: value >= 0,
    "positive": lambda value: value > 0,
    "positive integer": lambda value: value > 0 and float(value).is_integer(),
}


def check_constraints(method_name, hyperparameters, constraints):
    """Raise SaehError for the first hyperparameter outside its constraint (see `DeepMethod.constraints`)."""
    for name, constraint in constraints.items():
        value = hyperparameters.get(name)
        if value is not None and not CONSTRAINTS[constraint](value):
            raise SaehError(f"hyperparameter {name} of method {method_name!r} must be a {constraint} number; "
                            f"got {value!r}")


def resolve_hyperparameters(method_name, defaults, overrides=None):
    """`defaults` updated with the non-None `overrides`, each converted to the type of its default (`as_type_of`).

    A name the method does not take, or a value that does not convert, raises SaehError.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SaehError(f"method {method_name!r} has no hyperparameter(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(defaults)) or 'none'}")
    resolved = dict(defaults)
    for name, value in overrides.items():
        try:
            resolved[name] = as_type_of(defaults[name], value)
        except ValueError as error:
            raise SaehError(f"hyperparameter {name} of method {method_name!r} must be {error}; "
                            f"got {value!r}") from None
    return resolved


BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


def as_type_of(default, value):
    """`value` (a number, or text as given on the command line) as the type of `default`: bool (true/false/1/0),
    int, float (finite; an int is fine) or str. A None default stands for a number worked out later (DSH's margin
    is 2 * bits), so it takes an int or a float. Raises ValueError naming what was expected."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[str(value).strip().lower()]
        raise ValueError("a boolean (true, false, 1 or 0)")
    if isinstance(default, str):
        return str(value)
    if isinstance(default, int):
        number = _finite_number(value, "an integer")
        if not float(number).is_integer():
            raise ValueError("an integer")
        return int(number)
    if isinstance(default, float):
        return float(_finite_number(value, "a finite number"))
    if default is None:
        return _finite_number(value, "a finite number")
    return value


def _finite_number(value, expected):
    """An int or a finite float from a number or its text; ValueError(expected) otherwise (bools included)."""
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(expected) from None
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(expected)
    return value


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
    constraints={"alpha": "non-negative", "beta": "non-negative", "gamma": "non-negative"},
)

# SAEH-minus is the paper's ablation: SAEH with gamma = 0, which removes the decoder from the graph.
SAEH_MINUS = dataclasses.replace(
    SAEH,
    name="saeh-minus",
    summary="SAEH-minus: SAEH without the decoder (gamma = 0)",
    build=functools.partial(_build_saeh, gamma=0.0),
    compile_arguments=functools.partial(_saeh_compile_arguments, gamma=0.0),
    hyperparameters={"alpha": defaults.ALPHA, "beta": defaults.BETA},
    constraints={"alpha": "non-negative", "beta": "non-negative"},
)
