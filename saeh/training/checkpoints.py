"""The checkpoint format of a run, and the callback that writes it after each epoch: `checkpoints/last.keras`, the
best weights, the history (JSON and CSV); reading them back to resume, and loading weights to start from.

After each epoch `RunCheckpoint` writes, in this order, the best weights (when the epoch is the best so far; their
file carries the epoch), the history, then `checkpoints/last.keras`: weights, optimiser state and the number of
completed epochs, in one file written atomically. The epoch to resume at is that stored count (not the optimiser's
step counter, which a mixed-precision loss-scale optimiser does not advance on the steps it skips), so the weights,
the optimiser state and the epoch can never disagree; the learning rate follows from the epoch, and the data order
from (seed, epoch). A crash between two writes never pairs a history with weights of an epoch it does not describe:
the resumed run drops whatever is newer than `last.keras` and redoes that epoch. The files' names are
`saeh.run_folder.RunFolder`'s.

A method with a state (`saeh.methods.DeepMethod.state`: a memory bank, learned database codes) has it saved inside
`last.keras` with the epoch count, beside each best-weights file (`checkpoints/best-epoch-N.state.npz`) and beside
the final model (`method_state.npz`), so that it always pairs with the weights it was trained with.
"""

import csv
import json
import os
import zipfile

import keras

from saeh.atomic import atomic_path, write_json
from saeh.errors import SaehError
from saeh.method_state import save_arrays

# The number of completed epochs and the method's state, stored inside the checkpoint's .keras archive (Keras
# ignores other members).
TRAINING_STATE = "saeh_training_state.json"
METHOD_STATE_MEMBER = "saeh_method_state.npz"


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


def read_history(folder):
    if not os.path.exists(folder.history):
        return []
    with open(folder.history) as handle:
        return json.load(handle)["epochs"]


def write_history_csv(path, history):
    """history.csv: one row per epoch (1-based, as in history.json), a column per logged value."""
    columns = ["epoch", *sorted({name for row in history for name in row} - {"epoch"})]
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)


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
