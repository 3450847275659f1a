"""How Keras carries out a `saeh.recipes.Recipe`: its optimisers (torch.optim's updates, with coupled weight decay,
per-layer rates and weights frozen after a number of steps), its per-step rate schedules, Lookahead, and the
classifier's label smoothing. `make_optimizer` is what the training loop calls."""

import math

import keras
import numpy as np
from keras import ops

from saeh import defaults


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


@keras.saving.register_keras_serializable(package="saeh")
class DropSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """base x factor^(the number of `boundaries` <= step): schedule "drops", read by the optimiser at every step."""

    def __init__(self, base, boundaries, factor):
        self.base, self.boundaries, self.factor = float(base), [int(step) for step in boundaries], float(factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        passed = sum(ops.cast(step >= float(boundary), "float32") for boundary in self.boundaries)
        return self.base * ops.power(self.factor, passed)

    def get_config(self):
        return {"base": self.base, "boundaries": self.boundaries, "factor": self.factor}


@keras.saving.register_keras_serializable(package="saeh")
class CosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`cosine_factor` of the step's epoch, times `base`: schedule "cosine", read by the optimiser at every step."""

    def __init__(self, base, steps_per_epoch, epochs, floor):
        self.base, self.steps_per_epoch, self.epochs = float(base), int(steps_per_epoch), int(epochs)
        self.floor = float(floor)

    def __call__(self, step):
        epoch = ops.minimum(ops.floor(ops.cast(step, "float32") / self.steps_per_epoch), self.epochs - 1.0)
        return self.base * (self.floor + (1.0 - self.floor) * (1.0 + ops.cos(math.pi * epoch / self.epochs)) / 2.0)

    def get_config(self):
        return {"base": self.base, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs,
                "floor": self.floor}


def is_norm_bias(path):
    """Whether a variable path names a batch-norm bias (Keras names it `beta`)."""
    return path.rsplit("/", 1)[-1] == "beta"


def layer_rate(path, layer_rates):
    """The rate multiplier of the variable at `path`: that of the first prefix of `layer_rates` it starts with; 1."""
    for prefix, multiplier in layer_rates:
        if path.startswith(prefix):
            return float(multiplier)
    return 1.0


class RecipeOptimizer(keras.optimizers.Optimizer):
    """What the recipe optimisers share: coupled weight decay (added to the gradient, as torch.optim's
    `weight_decay`), a rate multiplier per weight (`layer_rates`, as torch parameter groups' own rates, and the
    batch-norm biases' `norm_bias_rate`, whose decay is divided by it so that their decay step is the others'),
    and weights that stop training after a number of steps (`frozen_after_steps`: no step, no state update)."""

    def __init__(self, learning_rate=0.01, coupled_weight_decay=0.0, norm_bias_rate=1.0, frozen_after_steps=None,
                 layer_rates=None, name="recipe_optimizer", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.coupled_weight_decay, self.norm_bias_rate = float(coupled_weight_decay), float(norm_bias_rate)
        self.frozen_after_steps = dict(frozen_after_steps or {})
        self.layer_rates = [(str(prefix), float(multiplier)) for prefix, multiplier in (layer_rates or ())]

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Per variable, by its position: the backend hands `update_step` its own variable, without Keras's path.
        self._norm = [self.norm_bias_rate if is_norm_bias(variable.path) else 1.0 for variable in variables]
        self._multipliers = [norm * layer_rate(variable.path, self.layer_rates)
                             for norm, variable in zip(self._norm, variables)]
        self._stops = [self.frozen_after_steps.get(variable.path) for variable in variables]
        self.build_slots(variables)

    def build_slots(self, variables):
        raise NotImplementedError

    def prepared(self, gradient, variable, learning_rate):
        """(index, gradient with the decay added, rate x multiplier, active: 1 or 0 once frozen) of `variable`."""
        index = self._get_variable_index(variable)  # as Keras's own SGD finds its momentum
        dtype = variable.dtype
        update = ops.cast(gradient, dtype) + (self.coupled_weight_decay / self._norm[index]) * variable
        rate = ops.cast(learning_rate, dtype) * self._multipliers[index]
        stop = self._stops[index]
        active = 1.0 if stop is None else ops.cast(ops.less(self.iterations, stop), dtype)
        return index, update, rate, active

    def keep_unless_active(self, slot, value, active):
        self.assign(slot, active * value + (1.0 - active) * slot)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay,
                "norm_bias_rate": self.norm_bias_rate, "frozen_after_steps": self.frozen_after_steps,
                "layer_rates": [list(pair) for pair in self.layer_rates]}


@keras.saving.register_keras_serializable(package="saeh")
class RecipeSGD(RecipeOptimizer):
    """SGD with (Nesterov) momentum in PyTorch's form, with `RecipeOptimizer`'s decay, multipliers and freezing.

    For a weight w with gradient g, decay d (weight_decay, divided by the multiplier for batch-norm biases) and rate
    multiplier m:
        u = g + d * w;  buf = momentum * buf + u;  w -= rate * m * (u + momentum * buf)   (Nesterov)
                                                   w -= rate * m * buf                    (momentum, or plain: 0)
    torch.optim.SGD's update (its `weight_decay`, `momentum`, `nesterov`), as airbench94 trains with.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=True, coupled_weight_decay=0.0,
                 norm_bias_rate=1.0, frozen_after_steps=None, layer_rates=None, name="recipe_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, coupled_weight_decay=coupled_weight_decay,
                         norm_bias_rate=norm_bias_rate, frozen_after_steps=frozen_after_steps,
                         layer_rates=layer_rates, name=name, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build_slots(self, variables):
        self.momentums = [self.add_variable_from_reference(variable, "momentum") for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        index, update, rate, active = self.prepared(gradient, variable, learning_rate)
        buffer = self.momentums[index]
        new_buffer = self.momentum * buffer + update
        self.keep_unless_active(buffer, new_buffer, active)
        step = update + self.momentum * new_buffer if self.nesterov else new_buffer
        self.assign_sub(variable, active * rate * step)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="saeh")
class RecipeAdam(RecipeOptimizer):
    """torch.optim.Adam (amsgrad off): u = g + d * w; m = b1 m + (1 - b1) u; v = b2 v + (1 - b2) u^2;
    w -= rate * mult * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t the 1-based step."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, coupled_weight_decay=0.0,
                 norm_bias_rate=1.0, frozen_after_steps=None, layer_rates=None, name="recipe_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, coupled_weight_decay=coupled_weight_decay,
                         norm_bias_rate=norm_bias_rate, frozen_after_steps=frozen_after_steps,
                         layer_rates=layer_rates, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build_slots(self, variables):
        self.first_moments = [self.add_variable_from_reference(variable, "first_moment") for variable in variables]
        self.second_moments = [self.add_variable_from_reference(variable, "second_moment") for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        index, update, rate, active = self.prepared(gradient, variable, learning_rate)
        step = ops.cast(self.iterations + 1, variable.dtype)
        first, second = self.first_moments[index], self.second_moments[index]
        new_first = self.beta_1 * first + (1.0 - self.beta_1) * update
        new_second = self.beta_2 * second + (1.0 - self.beta_2) * ops.square(update)
        self.keep_unless_active(first, new_first, active)
        self.keep_unless_active(second, new_second, active)
        corrected_first = new_first / (1.0 - ops.power(self.beta_1, step))
        corrected_second = new_second / (1.0 - ops.power(self.beta_2, step))
        self.assign_sub(variable, active * rate * corrected_first / (ops.sqrt(corrected_second) + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="saeh")
class RecipeRMSprop(RecipeOptimizer):
    """torch.optim.RMSprop (momentum 0, not centred): u = g + d * w; v = alpha v + (1 - alpha) u^2;
    w -= rate * mult * u / (sqrt(v) + eps)."""

    def __init__(self, learning_rate=0.01, alpha=0.99, epsilon=1e-8, coupled_weight_decay=0.0, norm_bias_rate=1.0,
                 frozen_after_steps=None, layer_rates=None, name="recipe_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, coupled_weight_decay=coupled_weight_decay,
                         norm_bias_rate=norm_bias_rate, frozen_after_steps=frozen_after_steps,
                         layer_rates=layer_rates, name=name, **kwargs)
        self.alpha, self.epsilon = float(alpha), float(epsilon)

    def build_slots(self, variables):
        self.square_averages = [self.add_variable_from_reference(variable, "square_average")
                                for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        index, update, rate, active = self.prepared(gradient, variable, learning_rate)
        average = self.square_averages[index]
        new_average = self.alpha * average + (1.0 - self.alpha) * ops.square(update)
        self.keep_unless_active(average, new_average, active)
        self.assign_sub(variable, active * rate * update / (ops.sqrt(new_average) + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "epsilon": self.epsilon}


def make_schedule(recipe, base_rate, steps_per_epoch, epochs):
    """The rate the optimiser reads: a number for the step recipe (the training loop's scheduler sets it per
    epoch), else a schedule of the optimiser's step counter, so that a resumed run continues on the same line."""
    if recipe.schedule == "triangle":
        return TriangleSchedule(base_rate, steps_per_epoch * epochs, *recipe.triangle)
    if recipe.schedule == "drops":
        return DropSchedule(base_rate, recipe.drop_steps(steps_per_epoch, epochs), recipe.drop_factor)
    if recipe.schedule == "cosine":
        return CosineSchedule(base_rate, steps_per_epoch, epochs, recipe.cosine_floor)
    return defaults.learning_rate(0, epochs, base_rate)


def make_optimizer(recipe, base_rate, steps_per_epoch, epochs):
    """The optimiser of `recipe` for a run of `epochs` x `steps_per_epoch` steps from rate `base_rate`: Keras's own
    SGD for a recipe that trains as the original's (`Recipe.trains_as_original`), else the recipe's family."""
    rate = make_schedule(recipe, base_rate, steps_per_epoch, epochs)
    if recipe.trains_as_original:  # exactly what the loop always built, so that existing runs resume unchanged
        return keras.optimizers.SGD(learning_rate=rate, momentum=recipe.momentum, nesterov=recipe.nesterov)
    shared = {"coupled_weight_decay": recipe.weight_decay, "norm_bias_rate": recipe.norm_bias_rate,
              "layer_rates": recipe.layer_rates,
              "frozen_after_steps": {path: int(epochs_count * steps_per_epoch)
                                     for path, epochs_count in recipe.frozen_after_epochs.items()}}
    if recipe.optimizer == "adam":
        return RecipeAdam(learning_rate=rate, beta_1=recipe.adam_betas[0], beta_2=recipe.adam_betas[1],
                          epsilon=recipe.epsilon, **shared)
    if recipe.optimizer == "rmsprop":
        return RecipeRMSprop(learning_rate=rate, alpha=recipe.rmsprop_alpha, epsilon=recipe.epsilon, **shared)
    return RecipeSGD(learning_rate=rate, momentum=recipe.momentum, nesterov=recipe.nesterov, **shared)


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
