"""Training recipes: the optimiser, the rate schedule, the weight decay, the augmentation and the training-time
tricks that a network is trained with, as one declared object with its source.

The original SAEH recipe (`ORIGINAL`) is what `saeh.training` always did: SGD with Nesterov momentum 0.9, the
original's step schedule per epoch, L2 weight decay inside the layers, flips and pad-4-and-crop when augmenting.
An encoder may come with a recipe of its own (`ENCODER_RECIPES`), which every method trained on it then uses, so
that the encoder reaches the accuracy it was designed for: `WHITENED_CNN`, airbench94's recipe.

Every deep method registers the recipe its authors train with (`saeh.methods.DeepMethod.recipe`, with its source and
what we changed, `deviations`); an encoder's own recipe, where it has one, replaces it for every method.
Optimisers follow torch.optim's documented updates (coupled weight decay added to the gradient; torch's RMSprop
alpha 0.99, eps 1e-8; Adam eps 1e-8), so that a recipe written from a PyTorch source means what it says there;
the original's recipe alone builds Keras's own SGD, exactly as the loop always did. This module declares recipes
and imports no Keras; `saeh.optimizers` carries them out (optimisers, schedules, Lookahead).

A recipe's rate is that of a loss averaged over the batch (Keras's convention). Where its source writes the rate
for a summed loss (PyTorch's `reduction='none'` then `.sum()`), the numbers are converted here, in the open, from
the source's own formulas.
"""

import dataclasses
import math
from typing import Mapping, Optional

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
        optimizer: "sgd" (torch's SGD, `RecipeSGD`), "adam" (torch's Adam, `RecipeAdam`, betas `adam_betas`) or
            "rmsprop" (torch's RMSprop without momentum, `RecipeRMSprop`, smoothing `rmsprop_alpha`); `epsilon` of
            the last two, added to the root of the second moment.
        layer_rates: ((variable path prefix, rate multiplier), ...): the first prefix that a weight's path starts
            with gives its multiplier (as a torch parameter group's own lr: the whole step, decay included, is
            scaled); "" matches every weight; no match: 1.
        drops, drop_factor, drop_unit: schedule "drops": the rate is multiplied by `drop_factor` at each of the
            fractions `drops` of the run, counted in epochs (`drop_unit` "epoch": the first epoch at the new rate
            is round(fraction x epochs), at least 1) or in steps ("step": round(fraction x steps)).
        cosine_floor: schedule "cosine": torch's CosineAnnealingLR stepped once an epoch, T_max = the run's
            epochs, eta_min = cosine_floor x the starting rate.
        batch_size: the source's batch size, which a run uses unless --batch-size is given (None: the preset's).
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
    optimizer: str = "sgd"
    adam_betas: tuple = (0.9, 0.999)
    rmsprop_alpha: float = 0.99
    epsilon: float = 1e-8
    layer_rates: tuple = ()
    drops: tuple = ()
    drop_factor: float = 0.1
    drop_unit: str = "epoch"
    cosine_floor: float = 0.0
    batch_size: Optional[int] = None

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise SaehError(f"recipe {self.name!r}: schedule must be one of {', '.join(SCHEDULES)}; got "
                            f"{self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise SaehError(f"recipe {self.name!r}: optimizer must be one of {', '.join(OPTIMIZERS)}; got "
                            f"{self.optimizer!r}")
        if self.drop_unit not in ("epoch", "step") or not all(0 < fraction < 1 for fraction in self.drops) or \
                list(self.drops) != sorted(self.drops) or not 0 < self.drop_factor <= 1:
            raise SaehError(f"recipe {self.name!r}: drops must be increasing fractions in (0, 1) of the run, "
                            "drop_factor in (0, 1] and drop_unit 'epoch' or 'step'")
        if (self.schedule == "drops") != bool(self.drops):
            raise SaehError(f"recipe {self.name!r}: schedule 'drops' and its drops go together")
        if any(not (isinstance(prefix, str) and multiplier > 0) for prefix, multiplier in self.layer_rates):
            raise SaehError(f"recipe {self.name!r}: layer_rates must be (prefix, positive multiplier) pairs")
        if self.batch_size is not None and not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise SaehError(f"recipe {self.name!r}: batch_size must be a positive integer or None")
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
        if self.schedule == "drops":
            passed = sum(step >= boundary for boundary in self.drop_steps(steps_per_epoch, epochs))
            return base * self.drop_factor ** passed
        if self.schedule == "cosine":
            return base * cosine_factor(min(step // steps_per_epoch, epochs - 1), epochs, self.cosine_floor)
        return base * triangle_factor(step, steps_per_epoch * epochs, *self.triangle)

    def drop_steps(self, steps_per_epoch, epochs):
        """The steps (0-based) at which schedule "drops" multiplies the rate by `drop_factor` (module docstring)."""
        if self.drop_unit == "epoch":
            return [max(1, _round_half_up(fraction * epochs)) * steps_per_epoch for fraction in self.drops]
        return [max(1, _round_half_up(fraction * steps_per_epoch * epochs)) for fraction in self.drops]

    @property
    def trains_as_original(self):
        """Whether the recipe trains exactly as the original's (`ORIGINAL`), whatever its starting rate and batch:
        then Keras's own SGD is built and run.json names no recipe, so that such runs resume as they always did."""
        return dataclasses.replace(self, name=ORIGINAL.name, source=ORIGINAL.source, learning_rate=None,
                                   batch_size=None, deviations=()) == ORIGINAL

    def summary(self):
        """One line for logs and listings."""
        rate = f"rate {defaults.LEARNING_RATE if self.learning_rate is None else self.learning_rate:g}"
        if self.optimizer == "sgd":
            family = (f"SGD{' Nesterov' if self.nesterov else ''} momentum {self.momentum:g}" if self.momentum else
                      "plain SGD (no momentum)")
        elif self.optimizer == "adam":
            family = "Adam betas ({:g}, {:g})".format(*self.adam_betas)
        else:
            family = f"RMSprop alpha {self.rmsprop_alpha:g}"
        if self.schedule == "step":
            schedule = "the original's step schedule (x0.2 at 31/56/76 of 90 epochs, scaled)"
        elif self.schedule == "triangle":
            schedule = "a triangular schedule ({:g}x -> 1x at {:.0%} of the steps -> {:g}x)".format(*self.triangle)
        elif self.schedule == "drops":
            schedule = (f"x{self.drop_factor:g} at {', '.join(f'{fraction:.3g}' for fraction in self.drops)} of the "
                        f"run's {self.drop_unit}s")
        else:
            schedule = f"cosine annealing per epoch to {self.cosine_floor:g}x"
        parts = [family, rate, schedule]
        parts.append(f"coupled weight decay {self.weight_decay:.3g}" if self.weight_decay else
                     "L2 weight decay in the layers")
        if self.norm_bias_rate != 1:
            parts.append(f"batch-norm biases at {self.norm_bias_rate:g}x the rate")
        for prefix, multiplier in self.layer_rates:
            parts.append(f"{prefix.rstrip('/') or 'every other weight'} at {multiplier:g}x the rate")
        if self.batch_size is not None:
            parts.append(f"batch {self.batch_size}")
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


def _round_half_up(value):
    return int(math.floor(value + 0.5))


def cosine_factor(epoch, epochs, floor):
    """torch's CosineAnnealingLR (closed form, T_max = `epochs`), as a fraction of the starting rate, at 0-based
    `epoch`: floor + (1 - floor) (1 + cos(pi epoch / epochs)) / 2."""
    return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


SCHEDULES = ("step", "triangle", "drops", "cosine")
OPTIMIZERS = ("sgd", "adam", "rmsprop")

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


def for_method(method, encoder):
    """The recipe `method` trains with on `encoder`: the encoder's own where it has one (for every method), else
    the method's registered recipe (`saeh.methods.DeepMethod.recipe`)."""
    return ENCODER_RECIPES.get(encoder) or getattr(method, "recipe", None) or ORIGINAL


def get(name):
    if name not in RECIPES:
        raise SaehError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
