"""Callbacks the training tests share: a crash right after an epoch was checkpointed."""

import keras


class Crash(Exception):
    pass


class CrashAfterEpoch(keras.callbacks.Callback):
    """Simulate a crash right after epoch `epoch` (1-based) was checkpointed."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Crash
