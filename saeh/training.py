"""The one training loop for every deep method: Keras `fit` with the original optimiser and schedule, crash-safe
checkpoints, resume, and model selection on a validation set.

A run directory holds:

    run.json                 the settings of the run (checked on resume, so a resumed run is the same run)
    checkpoints/last.keras   model + optimiser state after the last complete epoch (written atomically)
    checkpoints/best-epoch-N.weights.h5  weights of the best epoch N on the validation set (written atomically)
    history.json             every epoch's logs (each loss term, accuracy, learning rate) and the best epoch
    history.csv              the same, one row per epoch
    logs/                    TensorBoard
    model.keras              the final model: the best epoch's weights

The epoch to resume at is read from the optimiser's step counter inside `last.keras`, so the weights, the
optimiser state and the epoch can never disagree; the learning rate follows from the epoch, and the data order from
(seed, epoch). Each epoch's files are written in the order best weights, history, last state, and the best weights
carry their epoch in their name, so a crash between two writes never pairs a history with weights of an epoch it
does not describe: the resumed run drops whatever is newer than `last.keras` and redoes that epoch.
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import zipfile

import keras
import numpy as np
import tensorflow as tf

from saeh import defaults
from saeh.atomic import atomic_path, remove_temporaries, write_json
from saeh.data import pipeline
from saeh.errors import SaehError
from saeh.inference import check_model_file

CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST_PREFIX = "best-epoch-"
BEST_SUFFIX = ".weights.h5"
HISTORY = "history.json"
HISTORY_CSV = "history.csv"
MODEL = "model.keras"
RUN = "run.json"


@dataclasses.dataclass
class TrainedRun:
    """What `train` returns: the model holding the best epoch's weights, and where everything was written."""

    model: keras.Model
    history: list
    best_epoch: int
    run_dir: str

    @property
    def model_path(self):
        return os.path.join(self.run_dir, MODEL)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss term, naming the epoch, the batch and the term; checkpoints stay intact."""

    def __init__(self, checkpoint_dir):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, where):
        # Every term that went non-finite is named: the first one alphabetically need not be the cause.
        broken = [f"{name} became {value}" for name, value in sorted((logs or {}).items())
                  if isinstance(value, (int, float, np.floating)) and not math.isfinite(value)]
        if broken:
            last = os.path.join(self.checkpoint_dir, LAST)
            kept = f"the last good checkpoint {last} is intact" if os.path.exists(last) else "no checkpoint yet"
            raise SaehError(f"training diverged in epoch {self.epoch + 1} ({where}): {', '.join(broken)}; {kept}. "
                            "Check the data and the loss weights (--alpha, --beta, --gamma, --set)")

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "validation")


def best_weights_path(run_dir, epoch):
    return os.path.join(run_dir, CHECKPOINTS, f"{BEST_PREFIX}{epoch}{BEST_SUFFIX}")


def remove_best_weights_except(run_dir, epoch):
    """Delete every best-weights file but the one of `epoch` (older bests, or one of an epoch being redone)."""
    directory = os.path.join(run_dir, CHECKPOINTS)
    keep = os.path.basename(best_weights_path(run_dir, epoch))
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if name.startswith(BEST_PREFIX) and name.endswith(BEST_SUFFIX) and name != keep:
            os.remove(os.path.join(directory, name))


def write_history_csv(path, history):
    """history.csv: one row per epoch (1-based, as in history.json), a column per logged value."""
    columns = ["epoch", *sorted({name for row in history for name in row} - {"epoch"})]
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: the best weights (if the monitored value improved), the history (JSON and CSV), then the
    last state, then older best weights are deleted.

    Each file is written to a temporary name and renamed, so a crash at any point leaves every file whole. The
    order makes a crash between two writes harmless: the epoch is redone and its history row replaced.
    """

    def __init__(self, run_dir, monitor, mode, history, learning_rate):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.mode = mode
        self.history = history
        self.learning_rate = learning_rate
        self.best_epoch, self.best_value = best_so_far(history, monitor, mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        logs["learning_rate"] = self.learning_rate(epoch)
        self.history.append({"epoch": epoch + 1, **logs})
        value = logs.get(self.monitor)
        if value is None:
            raise SaehError(f"cannot select the best epoch: {self.monitor} is not among the logged values "
                            f"({', '.join(sorted(logs))})")
        improved = self.best_value is None or (value > self.best_value if self.mode == "max" else value < self.best_value)
        if improved:
            self.best_epoch, self.best_value = epoch + 1, value
            with atomic_path(best_weights_path(self.run_dir, self.best_epoch)) as temporary:
                self.model.save_weights(temporary)
        write_json(os.path.join(self.run_dir, HISTORY),
                   {"monitor": self.monitor, "mode": self.mode, "best_epoch": self.best_epoch, "epochs": self.history})
        write_history_csv(os.path.join(self.run_dir, HISTORY_CSV), self.history)
        with atomic_path(os.path.join(self.run_dir, CHECKPOINTS, LAST)) as temporary:
            self.model.save(temporary)
        remove_best_weights_except(self.run_dir, self.best_epoch)


def best_so_far(history, monitor, mode):
    """(best epoch, best value) of `monitor` in a history list; (0, None) when empty."""
    best_epoch, best_value = 0, None
    for row in history:
        value = row.get(monitor)
        if value is not None and (best_value is None or (value > best_value if mode == "max" else value < best_value)):
            best_epoch, best_value = row["epoch"], value
    return best_epoch, best_value


def read_history(run_dir):
    path = os.path.join(run_dir, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return json.load(handle)["epochs"]


NEW, RESUME, FINISHED = "new", "resume", "finished"


def _changed_settings(run_file, settings):
    with open(run_file) as handle:
        previous = json.load(handle)
    changed = sorted(key for key in set(previous) | set(settings) if previous.get(key) != settings.get(key))
    return "; ".join(f"{key}: {previous.get(key)!r} -> {settings.get(key)!r}" for key in changed)


def prepare_run_dir(run_dir, settings, resume, overwrite, reuse_finished=False):
    """Create the run directory, or check that the one there holds the same run.

    Returns NEW (train from scratch), RESUME (an unfinished run with a checkpoint: continue it) or FINISHED (a
    finished run of the same settings, only with `reuse_finished`: its model is used as it is). A finished run is
    otherwise refused unless `overwrite`. An unfinished run with no checkpoint yet (it failed or was killed in its
    first epoch) holds nothing to lose: it is started again with the new settings rather than refused.
    """
    run_file = os.path.join(run_dir, RUN)
    checkpoint = os.path.join(run_dir, CHECKPOINTS, LAST)
    if os.path.exists(run_file) and not overwrite and os.path.exists(os.path.join(run_dir, MODEL)):
        if not reuse_finished or _changed_settings(run_file, settings):
            raise SaehError(f"{run_dir} already holds a finished run ({MODEL}); pass --overwrite to train again or "
                            "choose another --save-dir")
        return FINISHED
    if os.path.exists(run_file) and not overwrite and os.path.exists(checkpoint):
        changed = _changed_settings(run_file, settings)
        if changed:
            raise SaehError(f"{run_dir} holds an unfinished run with other settings ({changed}); pass --overwrite to "
                            "start again or choose another --save-dir")
        if not resume:
            raise SaehError(f"{run_dir} holds an unfinished run; drop --no-resume to continue it or pass --overwrite")
        # A process killed while writing leaves its temporary file behind; nobody else writes here now.
        for directory in (run_dir, os.path.join(run_dir, CHECKPOINTS)):
            remove_temporaries(directory)
        return RESUME
    if os.path.exists(run_file):
        for name in (CHECKPOINTS, "logs"):
            shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
        for name in (RUN, HISTORY, HISTORY_CSV, MODEL):
            if os.path.exists(os.path.join(run_dir, name)):
                os.remove(os.path.join(run_dir, name))
        remove_temporaries(run_dir)
    write_json(run_file, settings)
    return NEW


def distribution_strategy():
    """MirroredStrategy over all GPUs when there are several; OneDeviceStrategy on a single GPU, whose distributed
    dataset copies the next batches to the GPU while the current one trains; else the default strategy (CPU)."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if gpus:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()


def build_compiled(method, hyperparameters, input_shape, num_classes, multi_label, hash_bits, stack_num, encoder,
                   encoder_weights=None, epochs=defaults.EPOCHS, mixed_precision=False, jit_compile="auto",
                   learning_rate=None):
    """Build the method's model and compile it with the original optimiser (SGD, Nesterov momentum 0.9)."""
    previous_policy = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        model = method.build(input_shape, num_classes, hash_bits=hash_bits, stack_num=stack_num, encoder=encoder,
                             multi_label=multi_label, encoder_weights=encoder_weights, **hyperparameters)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    base = method.learning_rate if learning_rate is None else learning_rate
    optimizer = keras.optimizers.SGD(learning_rate=defaults.learning_rate(0, epochs, base), momentum=defaults.MOMENTUM,
                                     nesterov=defaults.NESTEROV)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  **method.compile_arguments(multi_label=multi_label, hash_bits=hash_bits, **hyperparameters))
    return model


def targets_for(model, method):
    """The method's target function, restricted to the outputs this model has."""
    outputs = set(model.output_names)

    def targets(images, batch):
        return {name: value for name, value in method.targets(images, batch).items() if name in outputs}

    return targets


def train(method, split, num_classes, run_dir, *, hash_bits=defaults.HASH_BITS, stack_num=defaults.STACK_NUM,
          encoder=defaults.ENCODER, encoder_weights=None, hyperparameters=None, epochs=defaults.EPOCHS,
          batch_size=defaults.BATCH_SIZE, seed=defaults.SEED, augment=False, load_path=None, resume=True,
          overwrite=False, mixed_precision=False, jit_compile="auto", deterministic=False, verbose="auto",
          learning_rate=None, settings=None, reuse_finished=False, callbacks=(), log=print):
    """Train `method` on `split.train`, choosing the epoch on `split.validation`; see the module docstring.

    Args:
        method: a `saeh.methods.DeepMethod`.
        split: a `saeh.data.Split` (train / validation / query / database sets).
        num_classes: classes of the labels.
        run_dir: where checkpoints, logs, history and the final model go.
        hyperparameters: overrides of the method's own (e.g. alpha, beta, gamma for SAEH).
        load_path: a `.keras` file to start from (weights, optimiser state and epoch), as the original's load_path.
        resume: continue an unfinished run found in `run_dir` (default), instead of refusing.
        overwrite: discard whatever `run_dir` holds and start again.
        reuse_finished: when `run_dir` holds a finished run of the same settings, return it (its model.keras)
            instead of refusing; for a caller whose own work after training was interrupted.
        learning_rate: starting rate of the step schedule (default: the method's, 0.1 for SAEH).
        settings: a dict describing the run (written to run.json and compared on resume).
        deterministic: enable TensorFlow's op determinism (slower; the same seed then gives the same codes).
        callbacks: extra Keras callbacks, run after the built-in ones.
        log: where progress lines go (print by default).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SaehError(f"{name} must be a positive integer; got {value!r}")
    # Everything that can be checked is checked, and the model built, before the run directory is touched, so that
    # a mistyped command leaves nothing behind.
    if batch_size > len(split.train):
        raise SaehError(f"batch_size {batch_size} is larger than the training set ({len(split.train)} images)")
    if load_path is not None:
        check_model_file(load_path, "load_path")
    hyperparameters = method.resolve(hyperparameters)
    base_rate = method.learning_rate if learning_rate is None else float(learning_rate)
    if not base_rate > 0:
        raise SaehError(f"learning_rate must be positive; got {learning_rate!r}")

    def schedule(epoch):
        return defaults.learning_rate(epoch, epochs, base_rate)

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    per_sample = {"label": pipeline.label_matrix(split.train.labels, num_classes)}
    validation_per_sample = {"label": pipeline.label_matrix(split.validation.labels, num_classes)}
    if method.prepare is not None:
        extras, validation_extras = method.prepare(split.train.labels, split.validation.labels, hash_bits=hash_bits,
                                                   seed=seed, **hyperparameters)
        per_sample.update(extras)
        validation_per_sample.update(validation_extras)
    input_shape = tuple(split.train.images.shape[1:])
    multi_label = split.train.labels.ndim == 2
    with distribution_strategy().scope():
        model = build_compiled(method, hyperparameters, input_shape, num_classes, multi_label, hash_bits, stack_num,
                               encoder, encoder_weights, epochs, mixed_precision, jit_compile, base_rate)

    settings = dict(settings or {})
    settings.update(method=method.name, hyperparameters=hyperparameters, hash_bits=hash_bits, stack_num=stack_num,
                    encoder=encoder, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                    learning_rate=base_rate)
    state = prepare_run_dir(run_dir, settings, resume, overwrite, reuse_finished)
    if state == FINISHED:
        return finished_run(model, run_dir, log)
    steps = math.ceil(len(split.train) / batch_size)
    start_from = os.path.join(run_dir, CHECKPOINTS, LAST) if state == RESUME else load_path
    initial_epoch = restore(model, start_from, steps) if start_from else 0
    history = read_history(run_dir)[:initial_epoch] if state == RESUME else []
    if initial_epoch:
        log(f"resuming from {start_from} at epoch {initial_epoch + 1} (learning rate "
            f"{schedule(initial_epoch)})")
    if split.validation_is_query:
        log("model selection uses the query (test) set as validation, as the original code did (--select-on-test)")

    targets = targets_for(model, method)
    train_batches, steps = pipeline.training_batches(
        split.train.images, per_sample, targets, batch_size, seed, epochs, initial_epoch=initial_epoch,
        augment=augment)
    validation_batches = pipeline.evaluation_batches(split.validation.images, validation_per_sample, targets,
                                                     max(batch_size, 256))
    monitor, mode = method.monitor
    checkpoint = RunCheckpoint(run_dir, monitor, mode, history, schedule)
    # Best weights of an epoch later than last.keras (a crash between the two writes) belong to an epoch that is
    # about to be redone.
    remove_best_weights_except(run_dir, checkpoint.best_epoch)
    callbacks = [
        keras.callbacks.LearningRateScheduler(schedule),
        NonFiniteGuard(os.path.join(run_dir, CHECKPOINTS)),
        checkpoint,
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0),
        *callbacks,
    ]
    if initial_epoch < epochs:
        model.fit(train_batches, steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                  validation_data=validation_batches, callbacks=callbacks, verbose=verbose)
    best_path = best_weights_path(run_dir, checkpoint.best_epoch)
    if os.path.exists(best_path):
        model.load_weights(best_path)
    with atomic_path(os.path.join(run_dir, MODEL)) as temporary:
        model.save(temporary)
    log(f"best epoch {checkpoint.best_epoch} by {monitor} = {checkpoint.best_value}; model written to "
        f"{os.path.join(run_dir, MODEL)}")
    return TrainedRun(model=model, history=checkpoint.history, best_epoch=checkpoint.best_epoch, run_dir=run_dir)


def finished_run(model, run_dir, log=print):
    """The TrainedRun of a finished run directory: `model` (built for its settings) with the weights of its
    model.keras, and its history."""
    path = os.path.join(run_dir, MODEL)
    restore(model, path, steps_per_epoch=1)
    with open(os.path.join(run_dir, HISTORY)) as handle:
        history = json.load(handle)
    log(f"{run_dir} already holds a finished run of these settings; using its {MODEL} (best epoch "
        f"{history['best_epoch']})")
    return TrainedRun(model=model, history=history["epochs"], best_epoch=history["best_epoch"], run_dir=run_dir)


def restore(model, path, steps_per_epoch):
    """Load weights and optimiser state from a `.keras` file (checked by `check_model_file` where it comes from the
    user); return the epoch to continue at."""
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise SaehError(f"{path} does not fit the model being trained (other hash bits, classes, encoder or "
                        f"stack_num?): {str(error).splitlines()[0]}") from error
    except (OSError, zipfile.BadZipFile) as error:
        raise SaehError(f"{path} is not a readable .keras model: {error}") from error
    iterations = int(model.optimizer.iterations.numpy())
    return iterations // steps_per_epoch
