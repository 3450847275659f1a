"""The loop's own Keras callbacks besides the checkpoint (`saeh.training.checkpoints.RunCheckpoint`): the
learning-rate warm-up, the stop at a non-finite loss, and the warning when the codes collapse."""

import math
import os

import keras
import numpy as np

from saeh.errors import SaehError


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

    def __init__(self, images, labels, threshold, log, class_code_targets=False):
        super().__init__()
        self.images, self.threshold, self.log = images, threshold, log
        self.class_code_targets = class_code_targets
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
            # Other methods have no such targets, so there those bits are only lost.
            if distinct == 1:
                verdict = "; every image has the same code: the codes have collapsed"
            elif distinct < self.label_sets:
                verdict = f"; {distinct} distinct codes for {self.label_sets} label sets: the codes have collapsed"
            elif self.class_code_targets:
                verdict = (f"; {distinct} distinct codes: those bits carry no information, by design where the "
                           "classes' target codes agree on them")
            else:
                verdict = (f"; {distinct} distinct codes: those bits carry no information, so the codes work as "
                           f"{bits.shape[1] - constant}-bit codes (early epochs may still recover them)")
            self.log(f"warning: epoch {epoch + 1}: {constant} of {bits.shape[1]} bits ({share:.0%}) are the same for "
                     f"all {len(bits)} validation images{verdict} (see docs/FAULTS.md, 'Constant bits')")
