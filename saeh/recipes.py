"""Training recipes: the optimiser, the rate schedule, the weight decay, the augmentation and the training-time
tricks that a network is trained with, as one declared object with its source.

The original SAEH recipe (`ORIGINAL`) is what `saeh.training` always did: SGD with Nesterov momentum 0.9, the
original's step schedule per epoch, L2 weight decay inside the layers, flips and pad-4-and-crop when augmenting.
An encoder may come with a recipe of its own (`ENCODER_RECIPES`), which every method trained on it then uses, so
that the encoder reaches the accuracy it was designed for: `WHITENED_CNN`, airbench94's recipe.

A recipe's rate is that of a loss averaged over the batch (Keras's convention). Where its source writes the rate
for a summed loss (PyTorch's `reduction='none'` then `.sum()`), the numbers are converted here, in the open, from
the source's own formulas.
"""

import dataclasses
import math
from typing import Mapping, Optional

import keras
import numpy as np
from keras import ops

from saeh import defaults
from saeh.errors import SaehError


@dataclasses.dataclass(frozen=True)
class Lookahead:
    """Every `every` steps from epoch `start_epoch` (0-based) on, the weights become an average of themselves and a
    slow copy: slow = rho * slow + (1 - rho) * weights; weights = slow, with rho = base^every * (step / total)^power
    rising over the run (airbench94's `LookaheadState` and its `ema` settings); at each epoch's end the weights take
    the slow copy."""

    every: int = 5
    start_epoch: int = 3
    base: float = 0.95
    power: float = 3.0

    def rho(self, step, total_steps):
        return self.base ** self.every * (step / total_steps) ** self.power


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a network is trained.

    Attributes:
        name, source: the recipe's name and where its numbers come from (repository, file, or paper section).
        momentum, nesterov: of SGD.
        learning_rate: the starting (or peak) rate for a batch-mean loss; None: each method's own
            (`saeh.methods.DeepMethod.learning_rate`, 0.1 for SAEH).
        schedule: "step" (the original's steps per epoch, scaled to the run's epochs: `saeh.defaults.learning_rate`)
            or "triangle" (per step: `triangle` = (start, peak_fraction, end) times the rate, linear from start to 1 at
            peak_fraction of the steps, then to end at the last step).
        weight_decay: coupled weight decay in the optimiser (gradient + weight_decay * w, on every trained weight);
            0: the layers carry their own L2 terms (the original's 5e-4 on every kernel).
        norm_bias_rate: the rate multiplier of batch-norm biases (their decay divided by it, so that the decay step
            is that of the other weights).
        frozen_after_epochs: {variable path: epochs}: such a weight trains for that many epochs, then stops (its
            momentum and decay too).
        label_smoothing: of the classifier's cross-entropy (`y_predict` with softmax), for every method that has one.
        lookahead: `Lookahead` or None.
        augment_pad, augment_padding: the translation of the augmentation (pixels, and "CONSTANT" zeros or
            "REFLECT"), with random horizontal flips, when augmentation is on.
        whiten_from_data, identity_init: how a new run of the whitened_cnn encoder starts
            (`saeh.models.whitened_cnn.initialise`): its patch whitening fitted to training images (else the raw
            patches pass, standardised by nothing), its convs as a partial identity (else PyTorch's default init).
        deviations: where our implementation of the recipe departs from its source, one sentence each.
    """

    name: str
    source: str
    momentum: float = defaults.MOMENTUM
    nesterov: bool = defaults.NESTEROV
    learning_rate: Optional[float] = None
    schedule: str = "step"
    triangle: tuple = (0.2, 0.23, 0.07)
    weight_decay: float = 0.0
    norm_bias_rate: float = 1.0
    frozen_after_epochs: Mapping = dataclasses.field(default_factory=dict)
    label_smoothing: float = 0.0
    lookahead: Optional[Lookahead] = None
    augment_pad: int = 4
    augment_padding: str = "CONSTANT"
    whiten_from_data: bool = True
    identity_init: bool = True
    deviations: tuple = ()

    def __post_init__(self):
        if self.schedule not in ("step", "triangle"):
            raise SaehError(f"recipe {self.name!r}: schedule must be 'step' or 'triangle'; got {self.schedule!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise SaehError(f"recipe {self.name!r}: learning_rate must be positive; got {self.learning_rate!r}")
        if not (0 <= self.momentum < 1 and self.weight_decay >= 0 and self.norm_bias_rate > 0
                and 0 <= self.label_smoothing < 1):
            raise SaehError(f"recipe {self.name!r}: momentum must lie in [0, 1), weight_decay be non-negative, "
                            "norm_bias_rate positive and label_smoothing in [0, 1)")

    def rate_at(self, step, steps_per_epoch, epochs, base):
        """The rate at 0-based `step` of a run of `epochs` epochs of `steps_per_epoch` steps, from rate `base`."""
        if self.schedule == "step":
            return defaults.learning_rate(min(step // steps_per_epoch, epochs - 1), epochs, base)
        return base * triangle_factor(step, steps_per_epoch * epochs, *self.triangle)

    def summary(self):
        """One line for logs and listings."""
        rate = "each method's own rate" if self.learning_rate is None else f"rate {self.learning_rate:g}"
        parts = [f"SGD{' Nesterov' if self.nesterov else ''} momentum {self.momentum:g}", rate,
                 "the original's step schedule" if self.schedule == "step" else
                 "a triangular schedule ({:g}x -> 1x at {:.0%} of the steps -> {:g}x)".format(*self.triangle)]
        parts.append(f"coupled weight decay {self.weight_decay:.3g}" if self.weight_decay else
                     "L2 weight decay in the layers")
        if self.norm_bias_rate != 1:
            parts.append(f"batch-norm biases at {self.norm_bias_rate:g}x the rate")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        if self.lookahead is not None:
            parts.append(f"Lookahead every {self.lookahead.every} steps from epoch {self.lookahead.start_epoch + 1}")
        parts.append(f"flips and {self.augment_pad}-pixel translations "
                     f"({'mirrored' if self.augment_padding == 'REFLECT' else 'zero'} padding) when augmenting")
        return f"{self.name}: " + ", ".join(parts)


def triangle_factor(step, total_steps, start, peak, end):
    """The triangular schedule's factor at 0-based `step` of `total_steps`: linear from `start` at step 0 to 1 at
    step int(peak * total_steps), then to `end` at step `total_steps` (airbench94's `triangle`)."""
    top = int(peak * total_steps)
    if step <= top:
        return start + (1.0 - start) * step / top if top else 1.0
    return 1.0 + (end - 1.0) * min(step - top, total_steps - top) / (total_steps - top)


ORIGINAL = Recipe(
    name="original",
    source="the original hash_su_ae_train.py: SGD(lr=0.1, momentum=0.9, nesterov=True), its scheduler's steps, "
           "L2 5e-4 on every kernel (hash_model.py)",
)

# airbench94 (KellerJordan/cifar10-airbench, airbench94.py, `hyp` and `main`) writes its rate and decay for a summed
# loss and "per 1024 examples": lr = 11.5 / kilostep_scale and, per parameter group, weight_decay = wd / lr with
# wd = 0.0153 * batch / kilostep_scale, kilostep_scale = 1024 * (1 + 1 / (1 - momentum)). For a batch-mean loss at
# batch 1024 the step is the same with rate lr * 1024 and a decay of (wd / lr) / 1024 (PyTorch's SGD adds
# weight_decay * w to the gradient of the summed loss).
_AIRBENCH_MOMENTUM = 0.85
_AIRBENCH_BATCH = 1024
_AIRBENCH_KILOSTEP = 1024 * (1 + 1 / (1 - _AIRBENCH_MOMENTUM))
_AIRBENCH_LR = 11.5 / _AIRBENCH_KILOSTEP
_AIRBENCH_WD = 0.0153 * _AIRBENCH_BATCH / _AIRBENCH_KILOSTEP

WHITENED_CNN = Recipe(
    name="whitened_cnn",
    source="KellerJordan/cifar10-airbench, airbench94.py (hyp, main, LookaheadState); arXiv 2404.00498",
    momentum=_AIRBENCH_MOMENTUM,
    nesterov=True,
    learning_rate=_AIRBENCH_LR * _AIRBENCH_BATCH,  # 1.5
    schedule="triangle",
    triangle=(0.2, 0.23, 0.07),
    weight_decay=_AIRBENCH_WD / _AIRBENCH_LR / _AIRBENCH_BATCH,  # 1.33e-3
    norm_bias_rate=64.0,
    frozen_after_epochs={"encoder_whiten/bias": 3},
    label_smoothing=0.2,
    lookahead=Lookahead(every=5, start_epoch=3, base=0.95, power=3.0),
    augment_pad=2,
    augment_padding="REFLECT",
    deviations=(
        "flips drawn at random each epoch, not airbench's alternating flip (each image flipped on every other "
        "epoch)",
        "the last partial batch of an epoch is trained (airbench drops it)",
        "the input standardised by the training images' own channel statistics (airbench: fixed CIFAR-10 ones)",
        "no test-time augmentation: an index encodes each image once",
    ),
)

RECIPES = {recipe.name: recipe for recipe in (ORIGINAL, WHITENED_CNN)}

# The ingredients a recipe can be trained without (`--ablate`), one change each: what is left in its place.
ABLATIONS = {
    "whitening": ("the 2x2 patch conv keeps its unit filters (raw patches, unstandardised), frozen",
                  {"whiten_from_data": False}),
    "identity-init": ("the convs start from PyTorch's default init alone (no partial identity)",
                      {"identity_init": False}),
    "norm-bias-rate": ("batch-norm biases at the rate of the other weights (not 64x)", {"norm_bias_rate": 1.0}),
    "lookahead": ("no Lookahead", {"lookahead": None}),
    "label-smoothing": ("the classifier's cross-entropy without label smoothing", {"label_smoothing": 0.0}),
    "translation": ("flips only, no translation", {"augment_pad": 0}),
}


def ablated(recipe, ingredients):
    """`recipe` without each of `ingredients` (names of `ABLATIONS`), named after them; `recipe` itself for none."""
    ingredients = list(ingredients or ())
    unknown = [name for name in ingredients if name not in ABLATIONS]
    if unknown:
        raise SaehError(f"unknown ingredient(s) to ablate: {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    if not ingredients:
        return recipe
    changes = {}
    for name in ingredients:
        changes.update(ABLATIONS[name][1])
    return dataclasses.replace(recipe, name=f"{recipe.name}-without-" + "-".join(sorted(ingredients)),
                               deviations=(*recipe.deviations, *(f"ablation: {ABLATIONS[name][0]}"
                                                                 for name in sorted(ingredients))), **changes)
ENCODER_RECIPES = {"whitened_cnn": WHITENED_CNN}


def for_encoder(encoder):
    """The recipe every method trained on `encoder` uses: its own, or the original's."""
    return ENCODER_RECIPES.get(encoder, ORIGINAL)


def get(name):
    if name not in RECIPES:
        raise SaehError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


@keras.saving.register_keras_serializable(package="saeh")
class TriangleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`triangle_factor` per step, times `base`: a schedule the optimiser reads at every step, so that a resumed
    run (the optimiser's step counter restored) continues on the same line."""

    def __init__(self, base, total_steps, start, peak, end):
        self.base, self.total_steps = float(base), int(total_steps)
        self.start, self.peak, self.end = float(start), float(peak), float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        top = float(int(self.peak * self.total_steps))
        rising = self.start + (1.0 - self.start) * step / max(top, 1.0)
        falling = 1.0 + (self.end - 1.0) * ops.minimum(step - top, self.total_steps - top) / max(
            self.total_steps - top, 1.0)
        return self.base * ops.where(step <= top, rising, falling)

    def get_config(self):
        return {"base": self.base, "total_steps": self.total_steps, "start": self.start, "peak": self.peak,
                "end": self.end}


def is_norm_bias(path):
    """Whether a variable path names a batch-norm bias (Keras names it `beta`)."""
    return path.rsplit("/", 1)[-1] == "beta"


@keras.saving.register_keras_serializable(package="saeh")
class RecipeSGD(keras.optimizers.Optimizer):
    """SGD with (Nesterov) momentum in PyTorch's form, coupled weight decay, a rate multiplier for batch-norm
    biases and weights that stop training after a number of steps.

    For a weight w with gradient g, decay d (weight_decay, divided by the multiplier m for batch-norm biases):
        u = g + d * w;  buf = momentum * buf + u;  w -= rate * m * (u + momentum * buf)   (Nesterov)
                                                   w -= rate * m * buf                    (plain)
    torch.optim.SGD's update (its `weight_decay`, `momentum`, `nesterov`), as airbench94 trains with. A weight of
    `frozen_after_steps` stops (no step, no momentum, no decay) once the step counter reaches its count.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=True, coupled_weight_decay=0.0,
                 norm_bias_rate=1.0, frozen_after_steps=None, name="recipe_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.coupled_weight_decay, self.norm_bias_rate = float(coupled_weight_decay), float(norm_bias_rate)
        self.frozen_after_steps = dict(frozen_after_steps or {})

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = [self.add_variable_from_reference(variable, "momentum") for variable in variables]
        # Per variable, by its position: the backend hands `update_step` its own variable, without Keras's path.
        self._multipliers = [self.norm_bias_rate if is_norm_bias(variable.path) else 1.0 for variable in variables]
        self._stops = [self.frozen_after_steps.get(variable.path) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)  # as Keras's own SGD finds its momentum
        dtype = variable.dtype
        multiplier = self._multipliers[index]
        update = ops.cast(gradient, dtype) + (self.coupled_weight_decay / multiplier) * variable
        rate = ops.cast(learning_rate, dtype) * multiplier
        buffer = self.momentums[index]
        stop = self._stops[index]
        active = 1.0 if stop is None else ops.cast(ops.less(self.iterations, stop), dtype)
        new_buffer = self.momentum * buffer + update
        self.assign(buffer, active * new_buffer + (1.0 - active) * buffer)
        step = update + self.momentum * new_buffer if self.nesterov else new_buffer
        self.assign_sub(variable, active * rate * step)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "coupled_weight_decay": self.coupled_weight_decay, "norm_bias_rate": self.norm_bias_rate,
                "frozen_after_steps": self.frozen_after_steps}


def make_optimizer(recipe, base_rate, steps_per_epoch, epochs):
    """The optimiser of `recipe` for a run of `epochs` x `steps_per_epoch` steps from rate `base_rate`. The step
    recipe's rate is then set per epoch by the training loop's scheduler; the triangle's is inside the optimiser."""
    if recipe.schedule == "triangle":
        rate = TriangleSchedule(base_rate, steps_per_epoch * epochs, *recipe.triangle)
    else:
        rate = defaults.learning_rate(0, epochs, base_rate)
    if recipe is ORIGINAL:  # exactly what the loop always built, so that existing runs resume unchanged
        return keras.optimizers.SGD(learning_rate=rate, momentum=recipe.momentum, nesterov=recipe.nesterov)
    return RecipeSGD(learning_rate=rate, momentum=recipe.momentum, nesterov=recipe.nesterov,
                     coupled_weight_decay=recipe.weight_decay, norm_bias_rate=recipe.norm_bias_rate,
                     frozen_after_steps={path: int(epochs_count * steps_per_epoch)
                                         for path, epochs_count in recipe.frozen_after_epochs.items()})


class LookaheadCallback(keras.callbacks.Callback):
    """`Lookahead` during `fit`. Its slow copy equals the weights at every epoch's end (the copy-back), so a run
    resumed at an epoch boundary takes its slow copy from the restored weights and continues exactly. The copy-back
    happens after the epoch's last step, before Keras validates (validation runs before `on_epoch_end`)."""

    def __init__(self, lookahead, steps_per_epoch, total_steps):
        super().__init__()
        self.lookahead, self.steps_per_epoch, self.total_steps = lookahead, int(steps_per_epoch), int(total_steps)
        self.slow, self.epoch = None, 0

    def _weights(self):
        return [weight for weight in self.model.weights if "float" in str(weight.dtype)]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.slow is None and epoch > self.lookahead.start_epoch:  # resumed after Lookahead began
            self.slow = [weight.numpy() for weight in self._weights()]

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch < self.lookahead.start_epoch:
            return
        step = self.epoch * self.steps_per_epoch + batch + 1  # steps done, as airbench94's current_steps
        if step % self.lookahead.every == 0:
            if self.slow is None:
                self.slow = [weight.numpy() for weight in self._weights()]
            else:
                self._blend(self.lookahead.rho(step, self.total_steps))
        if batch + 1 == self.steps_per_epoch and self.slow is not None:
            self._blend(1.0)

    def _blend(self, rho):
        for index, weight in enumerate(self._weights()):
            self.slow[index] = rho * self.slow[index] + (1.0 - rho) * weight.numpy()
            weight.assign(self.slow[index].astype(np.dtype(weight.dtype)))


def smoothed_classifier_loss(loss, label_smoothing):
    """The classifier loss `loss` (a compile argument) with label smoothing, when it is the softmax cross-entropy;
    any other loss is returned as it is (multi-hot labels, a method's own loss)."""
    if not label_smoothing or loss != "categorical_crossentropy":
        return loss
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def steps_per_epoch(visited, batch_size, drop_remainder=False):
    return visited // batch_size if drop_remainder else math.ceil(visited / batch_size)
