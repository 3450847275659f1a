"""A method's model as the training loop trains it: built under the run's dtype policy, wrapped for a loss that sees
the batch, compiled with its recipe's optimiser and the method's losses; its starting rate, and its targets."""

import functools

import keras
import tensorflow as tf

from saeh import defaults, optimizers, recipes
from saeh.errors import SaehError
from saeh.inference import HASH_LAYER


MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def mixed_precision_policy(mixed_precision):
    """The Keras dtype policy for `mixed_precision`: None (float32) when false; for True, mixed float16 on a GPU
    and mixed bfloat16 on a CPU (float16 has no fast path on CPUs; bfloat16 is fast on CPUs with AMX or
    AVX512-BF16 and emulated elsewhere: `benchmarks/bench_train.py` measures it); or a policy named explicitly."""
    if not mixed_precision:
        return None
    if mixed_precision is True:
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    if mixed_precision not in MIXED_POLICIES:
        raise SaehError(f"mixed_precision must be True, False or one of {', '.join(MIXED_POLICIES)}; got "
                        f"{mixed_precision!r}")
    return mixed_precision


def build_compiled(method, hyperparameters, spec, state=None, epochs=defaults.EPOCHS, mixed_precision=False,
                   jit_compile="auto", learning_rate=None, run_eagerly=False, steps_per_epoch=1, recipe=None):
    """Build the method's model for `spec` (a `saeh.methods.ModelSpec`) and compile it with its recipe
    (`saeh.recipes.for_method`: the encoder's own where it has one, else the method's registered recipe) and the
    method's losses (which may use its `state`); `mixed_precision` as `mixed_precision_policy` reads it (float16
    gets Keras's loss scaling). `steps_per_epoch`: for a recipe whose schedule runs per step; `recipe`: another
    `saeh.recipes.Recipe` than the encoder's (an ablation)."""
    hyperparameters = method.resolve(hyperparameters)  # the method's defaults where `hyperparameters` names none
    policy = mixed_precision_policy(mixed_precision)
    previous_policy = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        model = method.build(spec, hyperparameters)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if method.batch_loss is not None:
        model = with_batch_loss(model, method, spec, state, hyperparameters)
    recipe = recipes.for_method(method, spec.encoder) if recipe is None else recipe
    if recipe.weight_decay:  # the recipe's optimiser decays every weight: the layers' own L2 terms would repeat it
        for variable in model.weights:
            variable.regularizer = None
    base = starting_rate(method, recipe, learning_rate)
    optimizer = optimizers.make_optimizer(recipe, base, steps_per_epoch, epochs)
    arguments = {} if method.compile_arguments is None else method.compile_arguments(spec, state, hyperparameters)
    if isinstance(arguments.get("loss"), dict) and "y_predict" in arguments["loss"]:
        arguments["loss"] = {**arguments["loss"], "y_predict": optimizers.smoothed_classifier_loss(
            arguments["loss"]["y_predict"], recipe.label_smoothing)}
    model.compile(optimizer=optimizer, jit_compile=False if run_eagerly else jit_compile, run_eagerly=run_eagerly,
                  **arguments)
    return model


def with_batch_loss(model, method, spec, state, hyperparameters):
    """`model` (functional) as a `saeh.losses.BatchLossModel` of the same layers and outputs, its loss the method's
    `batch_loss` with the run's spec, state and hyperparameters."""
    from saeh.losses import BatchLossModel

    wrapped = BatchLossModel(model.inputs, model.output, name=model.name)
    wrapped.attach_loss(functools.partial(method.batch_loss, spec=spec, state=state, hyperparameters=hyperparameters),
                        method.loss_terms, per_image_output=HASH_LAYER)
    return wrapped


def starting_rate(method, recipe, learning_rate=None):
    """The run's starting (or peak) rate: `learning_rate` if given, else the recipe's, else the original's 0.1."""
    if learning_rate is not None:
        return float(learning_rate)
    return defaults.LEARNING_RATE if recipe.learning_rate is None else recipe.learning_rate


def targets_for(model, method):
    """The method's target function, restricted to the outputs this model has; for a method with a `batch_loss`,
    the batch's per-sample tensors themselves."""
    if method.batch_loss is not None:
        return lambda images, batch: dict(batch)
    outputs = set(model.output_names)

    def targets(images, batch):
        return {name: value for name, value in method.targets(images, batch).items() if name in outputs}

    return targets
