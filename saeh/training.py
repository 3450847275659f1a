"""The one training loop for every deep method: Keras `fit` with the original optimiser and schedule, crash-safe
checkpoints, resume, and model selection on a validation set.

A run folder's files are named by `saeh.run_folder.RunFolder`. After each epoch the loop writes, in this order, the
best weights (when the epoch is the best so far; their file carries the epoch), the history, then
`checkpoints/last.keras`: weights, optimiser state and the number of completed epochs, in one file written
atomically. The epoch to resume at is that stored count (not the optimiser's step counter, which a mixed-precision
loss-scale optimiser does not advance on the steps it skips), so the weights, the optimiser state and the epoch
can never disagree; the learning rate follows from the epoch, and the data order from (seed, epoch). A crash
between two writes never pairs a history with weights of an epoch it does not describe: the resumed run drops
whatever is newer than `last.keras` and redoes that epoch.

A method with a state (`saeh.methods.DeepMethod.state`: a memory bank, learned database codes) has it saved inside
`last.keras` with the epoch count, beside each best-weights file (`checkpoints/best-epoch-N.state.npz`) and beside
the final model (`method_state.npz`), so that it always pairs with the weights it was trained with.

`load_path`, as in the original script, loads weights only: the run starts at epoch 0 at the first rate of the
schedule with a fresh optimiser, whatever the file's own history.
"""

import csv
import dataclasses
import functools
import json
import math
import os
import shutil
import tempfile
import zipfile

import keras
import numpy as np
import tensorflow as tf

from saeh import defaults, distributed, optimizers, recipes, validation
from saeh.atomic import atomic_path, write_json
from saeh.data import pipeline
from saeh.errors import SaehError
from saeh.inference import HASH_LAYER, check_weights_file
from saeh.method_state import load_arrays, save_arrays
from saeh.run_folder import RunFolder
from saeh.run_record import as_recorded

# The number of completed epochs and the method's state, stored inside the checkpoint's .keras archive (Keras
# ignores other members).
TRAINING_STATE = "saeh_training_state.json"
METHOD_STATE_MEMBER = "saeh_method_state.npz"
FINAL_WEIGHTS = ("best", "last")


@dataclasses.dataclass
class TrainedRun:
    """What `train` returns: the model holding the final weights, and where everything was written."""

    model: keras.Model
    history: list
    best_epoch: int
    run_dir: str
    final_epoch: int = 0
    state: object = None  # the method's MethodState at the final epoch, or None
    chief: bool = True  # False on a worker of several that is not the chief: it wrote no run folder

    @property
    def model_path(self):
        return RunFolder(self.run_dir).model


class LinearWarmUp(keras.callbacks.Callback):
    """Linear learning-rate warm-up: during the first `warmup_steps` steps of the run, step t (0-based, counted from
    the run's first epoch) trains at schedule(epoch) x (t + 1) / warmup_steps; from then on the schedule alone sets
    the rate. The rate follows from (epoch, batch) alone, so a resumed run warms up exactly as an unbroken one.
    Placed after Keras's `LearningRateScheduler`, which sets the schedule's rate at each epoch's start."""

    def __init__(self, schedule, steps_per_epoch, warmup_steps):
        super().__init__()
        self.schedule, self.steps_per_epoch, self.warmup_steps = schedule, int(steps_per_epoch), int(warmup_steps)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch
        if step <= self.warmup_steps:  # step warmup_steps itself restores the schedule's rate
            self.model.optimizer.learning_rate = self.schedule(self.epoch) * min(1.0, (step + 1) / self.warmup_steps)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss term, naming the epoch, the batch and the term; checkpoints stay intact."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, where):
        # Every term that went non-finite is named: the first one alphabetically need not be the cause.
        broken = [f"{name} became {value}" for name, value in sorted((logs or {}).items())
                  if isinstance(value, (int, float, np.floating)) and not math.isfinite(value)]
        if broken:
            last = self.folder.last_checkpoint
            kept = f"the last good checkpoint {last} is intact" if os.path.exists(last) else "no checkpoint yet"
            raise SaehError(f"training diverged in epoch {self.epoch + 1} ({where}): {', '.join(broken)}; {kept}. "
                            "Check the data and the loss weights (--alpha, --beta, --gamma, --set)")

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "validation")


CONSTANT_BITS_LOG = "val_constant_bits"


class CollapseWatch(keras.callbacks.Callback):
    """After each epoch, binarise the codes of the validation images (the method's threshold) and log a warning
    when a bit is the same for all of them, with the share of such bits, and when the images have fewer distinct
    codes than label sets (at worst one code):
    a collapsed model trains on (its loss may still fall) while its codes retrieve nothing. The share is logged as
    `val_constant_bits` (in the history). A warning, never an error: early epochs may recover."""

    def __init__(self, images, labels, threshold, log):
        super().__init__()
        self.images, self.threshold, self.log = images, threshold, log
        labels = np.asarray(labels)
        self.label_sets = len(np.unique(labels, axis=0) if labels.ndim == 2 else np.unique(labels))
        self.encoder = None

    def on_train_begin(self, logs=None):
        from saeh.inference import hash_encoder

        self.encoder = hash_encoder(self.model)  # once: a new model each epoch would trace its prediction again

    def on_epoch_end(self, epoch, logs=None):
        from saeh.inference import encode

        bits = encode(self.model, self.images, encoder=self.encoder) > self.threshold
        constant = int(np.sum(np.all(bits == bits[:1], axis=0)))
        share = constant / bits.shape[1]
        if logs is not None:
            logs[CONSTANT_BITS_LOG] = share
        if constant:
            distinct = len(np.unique(np.packbits(bits, axis=1), axis=0))
            # Fewer codes than the images have label sets is a collapse; a few constant bits among enough codes need
            # not be: class hash centres (CSQ, SHC) can agree on a bit, and perfect codes then hold it constant.
            if distinct == 1:
                verdict = "; every image has the same code: the codes have collapsed"
            elif distinct < self.label_sets:
                verdict = f"; {distinct} distinct codes for {self.label_sets} label sets: the codes have collapsed"
            else:
                verdict = (f"; {distinct} distinct codes: those bits carry no information (by design when the "
                           "method's class targets agree on them, as hash centres can)")
            self.log(f"warning: epoch {epoch + 1}: {constant} of {bits.shape[1]} bits ({share:.0%}) are the same for "
                     f"all {len(bits)} validation images{verdict} (see the README's 'When things go wrong')")


def write_history_csv(path, history):
    """history.csv: one row per epoch (1-based, as in history.json), a column per logged value."""
    columns = ["epoch", *sorted({name for row in history for name in row} - {"epoch"})]
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)


def save_checkpoint(model, path, completed_epochs, state=None):
    """Write model + optimiser state, the number of completed epochs and the method's state (if any) as one `.keras`
    file, atomically."""
    with atomic_path(path) as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(TRAINING_STATE, json.dumps({"completed_epochs": int(completed_epochs)}))
            if state is not None:
                archive.writestr(METHOD_STATE_MEMBER, state.to_bytes())


def restore_method_state(state, path):
    """Load the method's state saved inside the checkpoint `path` into `state`."""
    with zipfile.ZipFile(path) as archive:
        if METHOD_STATE_MEMBER not in archive.namelist():
            raise SaehError(f"{path} holds no method state, but this method keeps one; pass --overwrite to start "
                            "again")
        state.from_bytes(archive.read(METHOD_STATE_MEMBER), f"the method state in {path}")


def completed_epochs(path):
    """The completed epochs stored in a checkpoint by `save_checkpoint`, or None for a file without them."""
    with zipfile.ZipFile(path) as archive:
        if TRAINING_STATE not in archive.namelist():
            return None
        return int(json.loads(archive.read(TRAINING_STATE))["completed_epochs"])


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: the best weights (if the monitored value improved), the history (JSON and CSV), then the
    last state, then older best weights are deleted.

    Each file is written to a temporary name and renamed, so a crash at any point leaves every file whole. The
    order makes a crash between two writes harmless: the epoch is redone and its history row replaced.
    """

    def __init__(self, folder, monitor, mode, history, learning_rate, state=None):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.mode = mode
        self.history = history
        self.learning_rate = learning_rate
        self.state = state
        self.best_epoch, self.best_value = best_so_far(history, monitor, mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        logs["learning_rate"] = self.learning_rate(epoch)
        self.history.append({"epoch": epoch + 1, **logs})
        value = logs.get(self.monitor)
        if value is None:
            raise SaehError(f"cannot select the best epoch: {self.monitor} is not among the logged values "
                            f"({', '.join(sorted(logs))})")
        if is_better(value, self.best_value, self.mode):
            self.best_epoch, self.best_value = epoch + 1, value
            if self.state is not None:  # before the weights: a best-weights file always has its state beside it
                save_arrays(self.folder.best_state(self.best_epoch), self.state)
            with atomic_path(self.folder.best_weights(self.best_epoch)) as temporary:
                self.model.save_weights(temporary)
        write_json(self.folder.history,
                   {"monitor": self.monitor, "mode": self.mode, "best_epoch": self.best_epoch, "epochs": self.history})
        write_history_csv(self.folder.history_csv, self.history)
        save_checkpoint(self.model, self.folder.last_checkpoint, epoch + 1, self.state)
        self.folder.remove_best_weights_except(self.best_epoch)


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


def is_better(value, best, mode):
    return best is None or (value > best if mode == "max" else value < best)


def best_so_far(history, monitor, mode):
    """(best epoch, best value) of `monitor` in a history list; (0, None) when empty."""
    best_epoch, best_value = 0, None
    for row in history:
        value = row.get(monitor)
        if value is not None and is_better(value, best_value, mode):
            best_epoch, best_value = row["epoch"], value
    return best_epoch, best_value


def read_history(folder):
    if not os.path.exists(folder.history):
        return []
    with open(folder.history) as handle:
        return json.load(handle)["epochs"]


NEW, RESUME, FINISHED = "new", "resume", "finished"


def _changed_settings(folder, settings):
    previous = folder.settings()
    changed = sorted(key for key in set(previous) | set(settings) if previous.get(key) != settings.get(key))
    return "; ".join(f"{key}: {previous.get(key)!r} -> {settings.get(key)!r}" for key in changed)


def prepare_run_dir(run_dir, settings, resume, overwrite, reuse_finished=False):
    """Create the run folder, or check that the one there holds the same run.

    Returns NEW (train from scratch), RESUME (an unfinished run with a checkpoint: continue it) or FINISHED (a
    finished run of the same settings, only with `reuse_finished`: its model is used as it is). A finished run is
    otherwise refused unless `overwrite`. An unfinished run with no checkpoint yet (it failed or was killed in its
    first epoch) holds nothing to lose: it is started again with the new settings rather than refused. Starting
    again removes every file of the old run (`RunFolder.clear`: its codes and scores too), nothing else.
    """
    folder = RunFolder(run_dir)
    settings = as_recorded(settings)
    if folder.is_finished() and not overwrite:
        if not reuse_finished or _changed_settings(folder, settings):
            raise SaehError(f"{run_dir} already holds a finished run ({os.path.basename(folder.model)}); pass "
                            "--overwrite to train again or choose another --save-dir")
        return FINISHED
    if folder.has_checkpoint() and not overwrite:
        changed = _changed_settings(folder, settings)
        if changed:
            raise SaehError(f"{run_dir} holds an unfinished run with other settings ({changed}); pass --overwrite to "
                            "start again or choose another --save-dir")
        if not resume:
            raise SaehError(f"{run_dir} holds an unfinished run; drop --no-resume to continue it or pass --overwrite")
        folder.remove_temporaries()
        return RESUME
    folder.clear()
    folder.record.write(settings)
    return NEW


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


def train(method, split, num_classes, run_dir, *, hash_bits=defaults.HASH_BITS, stack_num=defaults.STACK_NUM,
          encoder=defaults.ENCODER, encoder_weights=None, hyperparameters=None, epochs=defaults.EPOCHS,
          batch_size=defaults.BATCH_SIZE, seed=defaults.SEED, augment=False, load_path=None, resume=True,
          overwrite=False, mixed_precision=False, jit_compile="auto", deterministic=False, verbose="auto",
          learning_rate=None, final_weights="best", settings=None, reuse_finished=False, callbacks=(), log=print,
          strategy=None, profile_steps=None, run_eagerly=False, warmup_epochs=0, recipe=None):
    """Train `method` on `split.train`, choosing the epoch on `split.validation`; see the module docstring.

    Args:
        method: a `saeh.methods.DeepMethod`; its builder gets a `saeh.methods.ModelSpec` made of the data's image
            shape and label kind and the arguments below.
        split: a `saeh.data.Split` (train / validation / query / database sets).
        num_classes: classes of the labels.
        run_dir: where checkpoints, logs, history and the final model go (`saeh.run_folder.RunFolder`).
        hyperparameters: overrides of the method's own (e.g. alpha, beta, gamma for SAEH).
        load_path: weights to start from (a `.keras` model or a `.weights.h5` file), as the original's load_path:
            weights only; the whole schedule then runs from epoch 0 with a fresh optimiser.
        resume: continue an unfinished run found in `run_dir` (default), instead of refusing.
        overwrite: discard whatever run `run_dir` holds and start again.
        reuse_finished: when `run_dir` holds a finished run of the same settings, return it (its model.keras)
            instead of refusing; for a caller whose own work after training was interrupted.
        learning_rate: starting rate of the recipe's schedule (default: the recipe's, 0.1 for SAEH).
        recipe: the `saeh.recipes.Recipe` to train with; default: the method's, or the encoder's own where it has
            one (`saeh.recipes.for_method`). Its name is recorded in run.json (unless it trains as the original's:
            `Recipe.trains_as_original`), so give a changed recipe a name of its own.
        warmup_epochs: linear warm-up of the rate over this many epochs' steps (a fraction is fine; `LinearWarmUp`);
            0 (default): none, as the original.
        final_weights: "best" (default): model.keras holds the best validation epoch's weights; "last": the last
            epoch's, as the original script saved them (its best-epoch checkpoint was a side file).
        settings: a dict describing the run (written to run.json and compared on resume).
        mixed_precision: False (float32), True (mixed bfloat16 on a CPU, float16 on a GPU) or a policy name.
        deterministic: enable TensorFlow's op determinism (slower; the same seed then gives the same codes).
        run_eagerly: run the steps as Python, untraced (Keras's `run_eagerly`): for debugging, and for a few steps
            of a large model, where tracing the step costs more than running it.
        callbacks: extra Keras callbacks, run after the built-in ones.
        log: where progress lines go (print by default).
        profile_steps: (first, last) steps (1-based) of the first epoch trained to record in a TensorBoard profile
            under `<run_dir>/logs`; None records none.
        strategy: the tf.distribute strategy (default: `saeh.distributed.strategy_for_machine`); several replicas
            follow the rules of `saeh.distributed` (batch_size per replica, global batch statistics, only the
            chief writes `run_dir`).
    """
    epochs = validation.positive_int(epochs, "epochs")
    batch_size = validation.positive_int(batch_size, "batch_size")
    validation.one_of(final_weights, "final_weights", FINAL_WEIGHTS)
    # Everything that can be checked is checked, and the model built, before the run directory is touched, so that
    # a mistyped command leaves nothing behind.
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

    from saeh.methods import ModelSpec, TrainingContext

    if split.train.labels.ndim == 2 and not method.multi_label:
        raise SaehError(f"method {method.name!r} is defined for single-label data only; these labels are multi-hot "
                        f"({split.train.labels.shape[1]} classes)")
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
        signal = distributed.barrier_value(strategy, _folder_signal(run_state, run_dir) if chief else 0)
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
        trained = _train_in_folder(method, split, model, state, context, folder, run_state, hyperparameters,
                                   per_sample, validation_per_sample, strategy, chief, schedule, load_path, augment,
                                   final_weights, verbose, callbacks, log, profile_steps, warmup_epochs, recipe)
        distributed.barrier_value(strategy, 0)  # the workers leave together, each with its final model written
        return trained
    finally:
        if scratch is not None and not os.environ.get(distributed.WORKER_DIR_VARIABLE):
            shutil.rmtree(scratch, ignore_errors=True)


def _train_in_folder(method, split, model, state, context, folder, run_state, hyperparameters, per_sample,
                     validation_per_sample, strategy, chief, schedule, load_path, augment, final_weights, verbose,
                     callbacks, log, profile_steps=None, warmup_epochs=0, recipe=recipes.ORIGINAL):
    """The part of `train` after the run folder is settled: prepare, restore or load, fit, the final model."""
    epochs, batch_size, seed = context.epochs, context.batch_size, context.seed
    replicas = strategy.num_replicas_in_sync
    # After the run folder is settled: a stage of `prepare` (SHC's classifier) trains inside it.
    if method.prepare is not None:
        extras, validation_extras = method.prepare(context, hyperparameters)
        per_sample.update(extras)
        validation_per_sample.update(validation_extras)
    initial_epoch = 0
    if run_state == RESUME:
        with strategy.scope():  # the optimiser's variables are built here, as the strategy's
            initial_epoch = restore(model, folder.last_checkpoint, math.ceil(len(split.train) / batch_size))
        if state is not None:
            restore_method_state(state, folder.last_checkpoint)
        log(f"resuming from {folder.last_checkpoint} at epoch {initial_epoch + 1} (learning rate "
            f"{schedule(initial_epoch)})")
    elif load_path is not None:
        with strategy.scope():
            load_initial_weights(model, load_path)
        log(f"starting from the weights of {load_path}: all {epochs} epochs of the schedule, from learning rate "
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
            augment=augment, sampler=sampler, inputs=method.inputs, drop_remainder=replicas > 1, part=part,
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
        *([LinearWarmUp(schedule, steps, max(1, round(warmup_epochs * steps)))] if warmup_epochs else []),
        NonFiniteGuard(folder),
        *([optimizers.LookaheadCallback(recipe.lookahead, steps, steps * epochs)] if recipe.lookahead else []),
        *own,  # before the checkpoint: what they log can be monitored, and the state they update is saved
        # Only a hashing model (a method's stage, SHC's classifier, has no codes to collapse).
        *([CollapseWatch(split.validation.images, split.validation.labels, method.code.threshold, log)]
          if HASH_LAYER in [layer.name for layer in model.layers] else []),
        checkpoint,
        keras.callbacks.TensorBoard(folder.logs, profile_batch=profile_steps or 0),
        *callbacks,
    ]
    # A distributed dataset made by a function has no length Keras can read: each validation takes its steps.
    validation_steps = len(split.validation) // global_batch if replicas > 1 else None
    if initial_epoch < epochs:
        model.fit(train_batches, steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                  validation_data=validation_data, validation_steps=validation_steps, callbacks=callbacks,
                  verbose=verbose)
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
    if profile_steps and initial_epoch < epochs:
        log(f"profile of steps {profile_steps[0]}-{profile_steps[1]} of epoch {initial_epoch + 1} written under "
            f"{folder.logs}; view it with: tensorboard --logdir {folder.logs} (Profile tab)")
    which = "the best" if final_weights == "best" else "the last (as the original script saved it)"
    log(f"best epoch {checkpoint.best_epoch} by {monitor} = {checkpoint.best_value}; {folder.model} holds {which} "
        f"epoch's weights, epoch {final_epoch}")
    return TrainedRun(model=model, history=checkpoint.history, best_epoch=checkpoint.best_epoch,
                      run_dir=folder.run_dir, final_epoch=final_epoch, state=state, chief=chief)


FINISHED_SIGNAL = -1


def _folder_signal(run_state, run_dir):
    """What the chief tells the other workers about its run folder: FINISHED_SIGNAL, or the epochs to resume
    after (0 for a new run)."""
    if run_state == FINISHED:
        return FINISHED_SIGNAL
    if run_state == RESUME:
        return completed_epochs(RunFolder(run_dir).last_checkpoint) or 0
    return 0


def worker_run_dir(strategy, chief_run_dir, settings, signal):
    """A non-chief worker's own folder for what training writes, and the state of its run: FINISHED (the chief's
    finished run is read), RESUME (the chief's checkpoint, history and best weights copied in) or NEW.

    The folder is `$SAEH_WORKER_DIR/<task>-<index>` (kept), else a temporary folder (removed by `train`)."""
    kept = os.environ.get(distributed.WORKER_DIR_VARIABLE)
    task = distributed.task_name(strategy).replace(" ", "-")
    if kept:
        scratch = os.path.join(kept, task)
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
    else:
        scratch = tempfile.mkdtemp(prefix=f"saeh-{task}-")
    if signal == FINISHED_SIGNAL:
        return scratch, FINISHED
    chief = RunFolder(chief_run_dir)
    if signal > 0:
        found = completed_epochs(chief.last_checkpoint) if os.path.exists(chief.last_checkpoint) else None
        if found != signal:
            raise SaehError(f"{distributed.task_name(strategy)} cannot read the chief's checkpoint of epoch {signal} "
                            f"at {chief.last_checkpoint}: to resume, every worker must see the run folder (a shared "
                            "filesystem)")
        shutil.copytree(chief.run_dir, scratch, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(os.path.basename(chief.logs)))
        return scratch, RESUME
    RunFolder(scratch).record.write(settings)
    return scratch, NEW


def _call_sampler(sampler, count, seed, hyperparameters, epoch):
    return sampler(epoch, count, seed, hyperparameters)


def finished_run(model, run_dir, log=print, state=None, chief=True):
    """The TrainedRun of a finished run folder: `model` (built for its settings) with the weights of its
    model.keras, its history, and the method's `state` (if any) from method_state.npz."""
    folder = RunFolder(run_dir)
    restore(model, folder.model, steps_per_epoch=1)
    if state is not None:
        state.assign(load_arrays(folder.method_state), folder.method_state)
    with open(folder.history) as handle:
        history = json.load(handle)
    keeps_best = folder.settings().get("final_weights", "best") == "best"
    final = history["best_epoch"] if keeps_best else len(history["epochs"])
    log(f"{run_dir} already holds a finished run of these settings; using its {os.path.basename(folder.model)} "
        f"(epoch {final})")
    return TrainedRun(model=model, history=history["epochs"], best_epoch=history["best_epoch"], run_dir=run_dir,
                      final_epoch=final, state=state, chief=chief)


def _load_weights(model, path):
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise SaehError(f"{path} does not fit the model being trained (other hash bits, classes, encoder or "
                        f"stack_num?): {str(error).splitlines()[0]}") from error
    except (OSError, zipfile.BadZipFile) as error:
        raise SaehError(f"{path} is not a readable model or weights file: {error}") from error


def restore(model, path, steps_per_epoch):
    """Load weights and optimiser state from a `.keras` checkpoint; return the number of completed epochs (stored
    by `save_checkpoint`; for a checkpoint without it, the optimiser's steps // `steps_per_epoch`)."""
    model.optimizer.build(model.trainable_variables)
    _load_weights(model, path)
    stored = completed_epochs(path)
    if stored is not None:
        return stored
    return int(model.optimizer.iterations.numpy()) // steps_per_epoch


def load_initial_weights(model, path):
    """The original's load_path: the model's weights from `path` (`.keras` or `.weights.h5`), and nothing else:
    the optimiser keeps its fresh state (step 0, no momentum), whatever the file holds."""
    model.optimizer.build(model.trainable_variables)
    fresh = [variable.numpy() for variable in model.optimizer.variables]
    _load_weights(model, path)
    for variable, value in zip(model.optimizer.variables, fresh):
        variable.assign(value)
