"""The one training loop for every deep method: `train` checks its arguments, builds the method's model, settles the
run folder (`saeh.training.run_states`), then Keras `fit` with the original optimiser and schedule, crash-safe
checkpoints (`saeh.training.checkpoints`), resume, and model selection on a validation set.

`load_path`, as in the original script, loads weights only: the run starts at epoch 0 at the first rate of the
schedule with a fresh optimiser, whatever the file's own history.
"""

import dataclasses
import functools
import math
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from saeh import defaults, distributed, optimizers, recipes, validation
from saeh.atomic import atomic_path
from saeh.data import pipeline
from saeh.errors import SaehError
from saeh.inference import HASH_LAYER, check_weights_file
from saeh.method_state import load_arrays, save_arrays
from saeh.methods import check_label_kind
from saeh.run_folder import RunFolder
from saeh.training.callbacks import CollapseWatch, LinearWarmUp, NonFiniteGuard
from saeh.training.checkpoints import (RunCheckpoint, load_initial_weights, read_history, restore,
                                       restore_method_state)
from saeh.training.compiled_model import build_compiled, starting_rate, targets_for
from saeh.training.run_states import (FINISHED, RESUME, TrainedRun, finished_run, folder_signal, prepare_run_dir,
                                      worker_run_dir)

FINAL_WEIGHTS = ("best", "last")


def check_profile_steps(profile_steps, steps_per_epoch):
    """SaehError unless `profile_steps` is None or (first, last) with 1 <= first <= last <= steps_per_epoch."""
    if profile_steps is None:
        return
    try:
        first, last = (int(step) for step in profile_steps)
        valid = 1 <= first <= last <= steps_per_epoch and all(not isinstance(step, bool) for step in profile_steps)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise SaehError(f"profile steps must be FIRST,LAST with 1 <= FIRST <= LAST <= {steps_per_epoch} (the steps of "
                        f"an epoch); got {profile_steps!r}")


def _checked_arguments(method, split, *, epochs, batch_size, final_weights, profile_steps, load_path,
                       hyperparameters, encoder, recipe, learning_rate, warmup_epochs):
    """`train`'s checks of its arguments, each a SaehError naming the argument; returns what the run uses of them:
    (epochs, batch_size, the method's resolved hyperparameters, the recipe, the starting rate)."""
    epochs = validation.positive_int(epochs, "epochs")
    batch_size = validation.positive_int(batch_size, "batch_size")
    validation.one_of(final_weights, "final_weights", FINAL_WEIGHTS)
    if batch_size > len(split.train):
        raise SaehError(f"batch_size {batch_size} is larger than the training set ({len(split.train)} images)")
    check_profile_steps(profile_steps, math.ceil(len(split.train) / batch_size))
    if load_path is not None:
        check_weights_file(load_path, "load_path")
    hyperparameters = method.resolve(hyperparameters)
    recipe = recipes.for_method(method, encoder) if recipe is None else recipe
    base_rate = starting_rate(method, recipe, learning_rate)
    if not base_rate > 0:
        raise SaehError(f"learning_rate must be positive; got {learning_rate!r}")
    if (isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, float))
            or not 0 <= warmup_epochs <= epochs):
        raise SaehError(f"warmup_epochs must be a number from 0 to the run's {epochs} epochs; got {warmup_epochs!r}")
    if warmup_epochs and recipe.schedule != "step":
        raise SaehError(f"warmup_epochs is for the original's step schedule; method {method.name!r} on encoder "
                        f"{encoder!r} trains with recipe {recipe.name!r}, whose schedule is {recipe.schedule!r}: "
                        "pass 0")
    check_label_kind(method, split.train.labels)
    return epochs, batch_size, hyperparameters, recipe, base_rate


def train(method, split, num_classes, run_dir, *, hash_bits=defaults.HASH_BITS, stack_num=defaults.STACK_NUM,
          encoder=defaults.ENCODER, encoder_weights=None, hyperparameters=None, epochs=defaults.EPOCHS,
          batch_size=defaults.BATCH_SIZE, seed=defaults.SEED, augment=False, load_path=None, resume=True,
          overwrite=False, mixed_precision=False, jit_compile="auto", deterministic=False, verbose="auto",
          learning_rate=None, final_weights="best", settings=None, reuse_finished=False, callbacks=(), log=print,
          strategy=None, profile_steps=None, run_eagerly=False, warmup_epochs=0, recipe=None):
    """Train `method` on `split.train`, choosing the epoch on `split.validation`; see the module docstring.

    Args, what to train:
        method: a `saeh.methods.DeepMethod`; its builder gets a `saeh.methods.ModelSpec` made of the data's image
            shape and label kind and the arguments below (`hash_bits`, `stack_num`, `encoder`, `encoder_weights`).
        split: a `saeh.data.Split` (train / validation / query / database sets).
        num_classes: classes of the labels.
        hyperparameters: overrides of the method's own (e.g. alpha, beta, gamma for SAEH).
        load_path: weights to start from (a `.keras` model or a `.weights.h5` file), as the original's load_path:
            weights only; the whole schedule then runs from epoch 0 with a fresh optimiser.

    Args, the schedule (besides `epochs`, `batch_size` per replica, `seed` and `augment`):
        learning_rate: starting rate of the recipe's schedule (default: the recipe's, 0.1 for SAEH).
        recipe: the `saeh.recipes.Recipe` to train with; default: the method's, or the encoder's own where it has
            one (`saeh.recipes.for_method`). Its name is recorded in run.json (unless it trains as the original's:
            `Recipe.trains_as_original`), so give a changed recipe a name of its own.
        warmup_epochs: linear warm-up of the rate over this many epochs' steps (a fraction is fine; `LinearWarmUp`);
            0 (default): none, as the original.
        final_weights: "best" (default): model.keras holds the best validation epoch's weights; "last": the last
            epoch's, as the original script saved them (its best-epoch checkpoint was a side file).

    Args, the run folder:
        run_dir: where checkpoints, logs, history and the final model go (`saeh.run_folder.RunFolder`).
        settings: a dict describing the run (written to run.json and compared on resume).
        resume: continue an unfinished run found in `run_dir` (default), instead of refusing.
        overwrite: discard whatever run `run_dir` holds and start again.
        reuse_finished: when `run_dir` holds a finished run of the same settings, return it (its model.keras)
            instead of refusing; for a caller whose own work after training was interrupted.

    Args, how it runs:
        mixed_precision: False (float32), True (mixed bfloat16 on a CPU, float16 on a GPU) or a policy name.
        jit_compile: as Keras's `compile` takes it (off under `run_eagerly`).
        deterministic: enable TensorFlow's op determinism (slower; the same seed then gives the same codes).
        run_eagerly: run the steps as Python, untraced (Keras's `run_eagerly`): for debugging, and for a few steps
            of a large model, where tracing the step costs more than running it.
        strategy: the tf.distribute strategy (default: `saeh.distributed.strategy_for_machine`); several replicas
            follow the rules of `saeh.distributed` (batch_size per replica, global batch statistics, only the
            chief writes `run_dir`).
        callbacks: extra Keras callbacks, run after the built-in ones.
        verbose: 0 (silent), 1 (a progress bar), 2 (one line per epoch), or "auto" (default): a bar on a
            terminal, one line per epoch otherwise (`fit_verbosity`).
        log: where progress lines go (print by default).
        profile_steps: (first, last) steps (1-based) of the first epoch trained to record in a TensorBoard profile
            under `<run_dir>/logs`; None records none.
    """
    # Everything that can be checked is checked, and the model built, before the run directory is touched, so that
    # a mistyped command leaves nothing behind.
    epochs, batch_size, hyperparameters, recipe, base_rate = _checked_arguments(
        method, split, epochs=epochs, batch_size=batch_size, final_weights=final_weights, profile_steps=profile_steps,
        load_path=load_path, hyperparameters=hyperparameters, encoder=encoder, recipe=recipe,
        learning_rate=learning_rate, warmup_epochs=warmup_epochs)

    from saeh.methods import ModelSpec, TrainingContext

    spec = ModelSpec(tuple(split.train.images.shape[1:]), num_classes, hash_bits=hash_bits, stack_num=stack_num,
                     encoder=encoder, encoder_weights=encoder_weights, multi_label=split.train.labels.ndim == 2)
    strategy = distributed.strategy_for_machine() if strategy is None else strategy
    replicas = strategy.num_replicas_in_sync
    chief = distributed.is_chief(strategy)
    context = TrainingContext(spec=spec, train=split.train, validation=split.validation, seed=seed, run_dir=run_dir,
                              epochs=epochs, batch_size=batch_size, log=log, strategy=strategy, augment=augment,
                              mixed_precision=mixed_precision, run_eagerly=run_eagerly, train_stage=train)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    # `index`: the image's row in the training set, for methods that keep something per training image; the
    # validation images are none of them (-1).
    per_sample = {"label": pipeline.label_matrix(split.train.labels, num_classes),
                  "index": np.arange(len(split.train), dtype=np.int64)}
    validation_per_sample = {"label": pipeline.label_matrix(split.validation.labels, num_classes),
                             "index": np.full(len(split.validation), -1, np.int64)}
    if method.state is not None and replicas > 1:
        raise SaehError(f"method {method.name!r} keeps a state updated inside its loss, which trains on one device; "
                        f"this run has {replicas} replicas: train it on one GPU (CUDA_VISIBLE_DEVICES) or one "
                        "machine")
    global_batch = batch_size * replicas
    visited = len(split.train) if method.sampler is None else len(
        method.sampler(0, len(split.train), seed, hyperparameters))
    steps_per_epoch = pipeline.steps_per_epoch(visited, global_batch, drop_remainder=replicas > 1)

    def schedule(epoch):
        """The rate at the first step of `epoch` (the rate of the whole epoch under the step schedule)."""
        return recipe.rate_at(epoch * steps_per_epoch, steps_per_epoch, epochs, base_rate)

    if replicas > 1 and global_batch > min(len(split.train), len(split.validation)):
        raise SaehError(f"the global batch ({batch_size} per replica x {replicas} replicas) is larger than the "
                        f"training set ({len(split.train)}) or the validation set ({len(split.validation)})")
    with strategy.scope():
        state = None if method.state is None else method.state(context, hyperparameters)
        model = build_compiled(method, hyperparameters, spec, state, epochs, mixed_precision, jit_compile, base_rate,
                               run_eagerly, steps_per_epoch, recipe)
    if replicas > 1:
        synchronize_count = distributed.synchronize_batch_norm(model)
        log(f"{replicas} replicas ({distributed.task_name(strategy)}): global batch {global_batch} = {batch_size} "
            f"per replica x {replicas}, learning rate {base_rate} as for one replica at that batch; "
            f"{synchronize_count} batch-norm layers use the global batch's statistics")

    settings = dict(settings or {})
    settings.update(method=method.name, hyperparameters=dict(hyperparameters), hash_bits=hash_bits, stack_num=stack_num,
                    encoder=encoder, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                    learning_rate=base_rate, final_weights=final_weights)
    if replicas > 1:  # only then: run folders of single-replica runs keep their settings, and resume
        settings["replicas"] = replicas
    if warmup_epochs:  # likewise: runs without a warm-up keep the settings they were started with
        settings["warmup_epochs"] = warmup_epochs
    if not recipe.trains_as_original:  # likewise: runs of the original recipe (at any rate) keep their settings
        settings["recipe"] = recipe.name
    scratch = None
    if chief:
        run_state = prepare_run_dir(run_dir, settings, resume, overwrite, reuse_finished)
    if distributed.is_multi_worker(strategy):
        # The other workers wait for the chief to settle its run folder, then follow it.
        signal = distributed.barrier_value(strategy, folder_signal(run_state, run_dir) if chief else 0)
        if not chief:
            scratch, run_state = worker_run_dir(strategy, run_dir, settings, signal)
            if run_state != FINISHED:
                run_dir = scratch
                context = dataclasses.replace(context, run_dir=scratch)
    if run_state == FINISHED:
        with strategy.scope():
            return finished_run(model, run_dir, log, state, chief=chief)
    folder = RunFolder(run_dir)
    try:
        trained = _train_in_folder(_FitPlan(
            method=method, split=split, hyperparameters=hyperparameters, recipe=recipe, model=model, state=state,
            context=context, schedule=schedule, per_sample=per_sample, validation_per_sample=validation_per_sample,
            folder=folder, run_state=run_state, chief=chief, load_path=load_path, final_weights=final_weights,
            warmup_epochs=warmup_epochs, profile_steps=profile_steps, callbacks=callbacks, verbose=verbose))
        distributed.barrier_value(strategy, 0)  # the workers leave together, each with its final model written
        return trained
    finally:
        if scratch is not None and not os.environ.get(distributed.WORKER_DIR_VARIABLE):
            shutil.rmtree(scratch, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class _FitPlan:
    """What `train` hands `_train_in_folder` once the run folder is settled, every piece resolved. The data's sets,
    the seed, the epochs, the batch size (per replica), the strategy, augmentation and the log are the context's."""

    # What trains, and on what.
    method: object  # saeh.methods.DeepMethod
    split: object  # saeh.data.Split
    hyperparameters: object  # the method's, resolved
    recipe: object  # saeh.recipes.Recipe
    model: keras.Model  # built and compiled (`build_compiled`)
    state: object  # the method's MethodState, or None
    context: object  # saeh.methods.TrainingContext, its run_dir the folder below
    schedule: object  # epoch -> the rate at its first step
    per_sample: dict  # the training images' per-sample arrays; the method's `prepare` adds its own
    validation_per_sample: dict
    # Where it is written.
    folder: RunFolder
    run_state: str  # NEW or RESUME (`saeh.training.run_states`)
    chief: bool
    # As `train` was given them.
    load_path: object
    final_weights: str
    warmup_epochs: float
    profile_steps: object
    callbacks: object  # extra Keras callbacks, after the loop's own
    verbose: object


def _train_in_folder(plan):
    """The part of `train` after the run folder is settled (`plan`, a `_FitPlan`): prepare, restore or load, fit,
    the final model."""
    method, split, model, state, folder = plan.method, plan.split, plan.model, plan.state, plan.folder
    context, hyperparameters, recipe, schedule = plan.context, plan.hyperparameters, plan.recipe, plan.schedule
    per_sample, validation_per_sample, final_weights = plan.per_sample, plan.validation_per_sample, plan.final_weights
    epochs, batch_size, seed = context.epochs, context.batch_size, context.seed
    strategy, log = context.strategy, context.log
    replicas = strategy.num_replicas_in_sync
    # After the run folder is settled: a stage of `prepare` (SHC's classifier) trains inside it.
    if method.prepare is not None:
        extras, validation_extras = method.prepare(context, hyperparameters)
        per_sample.update(extras)
        validation_per_sample.update(validation_extras)
    initial_epoch = 0
    if plan.run_state == RESUME:
        with strategy.scope():  # the optimiser's variables are built here, as the strategy's
            initial_epoch = restore(model, folder.last_checkpoint, math.ceil(len(split.train) / batch_size))
        if state is not None:
            restore_method_state(state, folder.last_checkpoint)
        log(f"resuming from {folder.last_checkpoint} at epoch {initial_epoch + 1} (learning rate "
            f"{schedule(initial_epoch)})")
    elif plan.load_path is not None:
        with strategy.scope():
            load_initial_weights(model, plan.load_path)
        log(f"starting from the weights of {plan.load_path}: all {epochs} epochs of the schedule, from learning rate "
            f"{schedule(0)}")
    else:
        from saeh.models.whitened_cnn import WHITENING_SAMPLE, initialise

        if initialise(model, split.train.images, seed, whiten=recipe.whiten_from_data,
                      identity=recipe.identity_init):
            log(f"whitening estimated from {min(WHITENING_SAMPLE, len(split.train))} training images")
    history = read_history(folder)[:initial_epoch]
    if split.validation_is_query:
        log("model selection uses the query (test) set as validation, which the original code watched as its "
            "validation data")

    targets = targets_for(model, method)
    sampler = None if method.sampler is None else functools.partial(
        _call_sampler, method.sampler, len(split.train), seed, hyperparameters)
    # With several replicas every global batch is full (each replica needs a whole slice of it).
    global_batch = batch_size * replicas

    def training_batches(part=None):
        return pipeline.training_batches(
            split.train.images, per_sample, targets, global_batch, seed, epochs, initial_epoch=initial_epoch,
            augment=context.augment, sampler=sampler, inputs=method.inputs, drop_remainder=replicas > 1, part=part,
            pad=recipe.augment_pad, padding=recipe.augment_padding)

    # Validation batches of the training size in a seeded mixed order: batch statistics (SAEH's balance term,
    # DSH's pairs) then mean what they mean in training, even for data stored class by class.
    def validation_batches(part=None):
        return pipeline.validation_batches(split.validation.images, validation_per_sample, targets, global_batch,
                                           seed, inputs=method.inputs, drop_remainder=replicas > 1, part=part)

    train_batches, steps = training_batches()
    validation_data = validation_batches()
    if distributed.is_multi_worker(strategy):
        distributed.patch_for_multi_worker(model, next(iter(training_batches((0, batch_size))[0])))
    elif distributed.is_default_strategy(strategy) and not model.run_eagerly:
        # Without a strategy of its own, Keras builds the losses' and metrics' state inside the first traced step, and
        # the variables made there make TensorFlow trace the step again; building it here from one batch, as Keras
        # does under a strategy, saves that second trace (about a fifth of a short run). The pipeline is
        # stateless, so taking a batch changes nothing that fit then reads. Eager steps trace nothing to save.
        model._symbolic_build(data_batch=next(iter(train_batches)))
    if replicas > 1:
        train_batches = distributed.replica_batches(lambda part: training_batches(part)[0], strategy, batch_size)
        # Repeated: Keras keeps the iterator of a dataset of unknown length from one validation to the next.
        validation_data = distributed.replica_batches(lambda part: validation_batches(part).repeat(), strategy,
                                                      batch_size)
    monitor, mode = method.monitor
    checkpoint = RunCheckpoint(folder, monitor, mode, history, schedule, state)
    # Best weights of an epoch later than last.keras (a crash between the two writes) belong to an epoch that is
    # about to be redone.
    folder.remove_best_weights_except(checkpoint.best_epoch)
    own = [] if method.callbacks is None else list(method.callbacks(context, model, state, hyperparameters))
    if recipe is not recipes.ORIGINAL:
        log(f"recipe {recipe.summary()}")
    callbacks = [
        # The step schedule is set per epoch here; a per-step schedule lives inside the optimiser.
        *([keras.callbacks.LearningRateScheduler(schedule)] if recipe.schedule == "step" else []),
        *([LinearWarmUp(schedule, steps, max(1, round(plan.warmup_epochs * steps)))] if plan.warmup_epochs else []),
        NonFiniteGuard(folder),
        *([optimizers.LookaheadCallback(recipe.lookahead, steps, steps * epochs)] if recipe.lookahead else []),
        *own,  # before the checkpoint: what they log can be monitored, and the state they update is saved
        # Only a hashing model (a method's stage, SHC's classifier, has no codes to collapse).
        *([CollapseWatch(split.validation.images, split.validation.labels, method.code.threshold, log,
                         class_code_targets=method.class_code_targets)]
          if HASH_LAYER in [layer.name for layer in model.layers] else []),
        checkpoint,
        keras.callbacks.TensorBoard(folder.logs, profile_batch=plan.profile_steps or 0),
        *plan.callbacks,
    ]
    # A distributed dataset made by a function has no length Keras can read: each validation takes its steps.
    validation_steps = len(split.validation) // global_batch if replicas > 1 else None
    if initial_epoch < epochs:
        model.fit(train_batches, steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                  validation_data=validation_data, validation_steps=validation_steps, callbacks=callbacks,
                  verbose=fit_verbosity(plan.verbose))
    # After fit (or the restore of a checkpoint at the last epoch) the model holds the last epoch's weights.
    final_epoch = len(checkpoint.history)
    if final_weights == "best":
        final_epoch = checkpoint.best_epoch
        model.load_weights(folder.best_weights(final_epoch))
        if state is not None:
            state.assign(load_arrays(folder.best_state(final_epoch)), folder.best_state(final_epoch))
    if state is not None:  # before the model: a finished run (model.keras) always has its state beside it
        save_arrays(folder.method_state, state)
    with atomic_path(folder.model) as temporary:
        model.save(temporary)
    if plan.profile_steps and initial_epoch < epochs:
        log(f"profile of steps {plan.profile_steps[0]}-{plan.profile_steps[1]} of epoch {initial_epoch + 1} written "
            f"under {folder.logs}; view it with: tensorboard --logdir {folder.logs} (Profile tab)")
    which = "the best" if final_weights == "best" else "the last (as the original script saved it)"
    log(f"best epoch {checkpoint.best_epoch} by {monitor} = {checkpoint.best_value}; {folder.model} holds {which} "
        f"epoch's weights, epoch {final_epoch}")
    return TrainedRun(model=model, history=checkpoint.history, best_epoch=checkpoint.best_epoch,
                      run_dir=folder.run_dir, final_epoch=final_epoch, state=state, chief=plan.chief)


def fit_verbosity(verbose, stream=None):
    """Keras's `verbose` for `fit`: "auto" is a progress bar on a terminal and one line per epoch otherwise
    (Keras's own "auto" draws the bar, backspaces and all, into any file or pipe)."""
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def _call_sampler(sampler, count, seed, hyperparameters, epoch):
    return sampler(epoch, count, seed, hyperparameters)
