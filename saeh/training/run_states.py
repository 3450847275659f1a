"""The life cycle of a run folder as training starts: a new run, an unfinished one to resume or a finished one
(`prepare_run_dir`); under several workers the chief settles it and the others follow (`folder_signal`,
`worker_run_dir`); and what `train` returns (`TrainedRun`), read back from a finished run (`finished_run`)."""

import dataclasses
import json
import os
import shutil
import tempfile

import keras

from saeh import distributed
from saeh.errors import SaehError
from saeh.method_state import load_arrays
from saeh.run_folder import RunFolder
from saeh.run_record import as_recorded
from saeh.training.checkpoints import completed_epochs, restore


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


FINISHED_SIGNAL = -1


def folder_signal(run_state, run_dir):
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
