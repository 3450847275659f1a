"""The files of a run folder, named in one place.

Training, `generate_hash.py`, `evaluate.py` and search all reach a run's files through `RunFolder`, so that
starting again (`--overwrite`), resuming and the recovery of a run killed before its scores agree on which files
belong to a run:

    run.json                              the settings (checked on resume: a resumed run is the same run), read
                                          and written by `saeh.run_record.RunRecord` only
    checkpoints/last.keras                model + optimiser state + completed epochs after the last whole epoch
    checkpoints/best-epoch-N.weights.h5   weights of the best epoch N on the validation set
    checkpoints/best-epoch-N.state.npz    the method's state at that epoch (methods with a state only)
    history.json, history.csv             every epoch's logs and the best epoch
    logs/                                 TensorBoard
    model.keras                           the final model (the best epoch's weights; the last epoch's under
                                          the original procedure); model.npz for a shallow method
    stages/NAME/                          a run folder of a method's earlier stage (SHC's classifier)
    method_state.npz                      the method's state that goes with model.keras (a memory bank, learned
                                          database codes), for methods with a state
    codes/{query,database}.{mat,npz}      the code dumps
    <data>_hash_<bits>bits_res_testset_su_ae.mat   the original procedure's dump (test set only)
    scores.json                           the scores printed at the end
"""

import fnmatch
import os
import shutil

from saeh.atomic import remove_temporaries
from saeh.errors import SaehError
from saeh.run_record import RunRecord

CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST_PREFIX = "best-epoch-"
BEST_SUFFIX = ".weights.h5"
BEST_STATE_SUFFIX = ".state.npz"
METHOD_STATE = "method_state.npz"
STAGES = "stages"
HISTORY = "history.json"
HISTORY_CSV = "history.csv"
LOGS = "logs"
MODEL = "model.keras"
SHALLOW_MODEL = "model.npz"
RUN = "run.json"
CODES = "codes"
SCORES = "scores.json"
ORIGINAL_DUMP = "{which_data}_hash_{bits}bits_res_testset_su_ae.mat"


def original_dump_name(dataset, bits):
    """The original generate_hash.py's file name for the test-set dump of `dataset` (its name, e.g. cifar10). The
    original wrote "32bits" whatever the length; the real length is written here."""
    return ORIGINAL_DUMP.format(which_data=dataset, bits=bits)


class RunFolder:
    """Paths of one run folder, and the operations that treat its files as one run."""

    def __init__(self, run_dir):
        self.run_dir = os.fspath(run_dir)

    @classmethod
    def of_model(cls, model_path):
        """The run folder a model file (`model.keras`, or a checkpoint inside `checkpoints/`) belongs to."""
        folder = os.path.dirname(os.path.abspath(model_path))
        if os.path.basename(folder) == CHECKPOINTS:
            folder = os.path.dirname(folder)
        return cls(folder)

    @classmethod
    def of_dump(cls, dump_path):
        """The run folder whose run.json describes code dump `dump_path` (in its codes/, or the folder itself for an
        --original dump); None for a dump outside a run folder."""
        folder = os.path.dirname(os.path.abspath(dump_path))
        for candidate in ((os.path.dirname(folder),) if os.path.basename(folder) == CODES else ()) + (folder,):
            if os.path.isfile(os.path.join(candidate, RUN)):
                return cls(candidate)
        return None

    def _path(self, *parts):
        return os.path.join(self.run_dir, *parts)

    @property
    def run_file(self):
        return self._path(RUN)

    @property
    def record(self):
        """The run's record (run.json), through which its settings are read and written."""
        return RunRecord(self.run_file)

    @property
    def checkpoints(self):
        return self._path(CHECKPOINTS)

    @property
    def last_checkpoint(self):
        return self._path(CHECKPOINTS, LAST)

    def best_weights(self, epoch):
        return self._path(CHECKPOINTS, f"{BEST_PREFIX}{epoch}{BEST_SUFFIX}")

    def best_state(self, epoch):
        """The method's state at the best epoch `epoch`, beside its weights."""
        return self._path(CHECKPOINTS, f"{BEST_PREFIX}{epoch}{BEST_STATE_SUFFIX}")

    @property
    def method_state(self):
        return self._path(METHOD_STATE)

    def stage(self, name):
        """The run folder of a method's stage `name` inside this run."""
        return RunFolder(self._path(STAGES, name))

    @property
    def history(self):
        return self._path(HISTORY)

    @property
    def history_csv(self):
        return self._path(HISTORY_CSV)

    @property
    def logs(self):
        return self._path(LOGS)

    @property
    def model(self):
        return self._path(MODEL)

    @property
    def shallow_model(self):
        """The fitted hasher of a shallow method (ITQ, KSH)."""
        return self._path(SHALLOW_MODEL)

    @property
    def codes(self):
        return self._path(CODES)

    def code_path(self, name, suffix=".npz"):
        return self._path(CODES, f"{name}{suffix}")

    @property
    def scores(self):
        return self._path(SCORES)

    def original_dump(self, dataset, bits):
        """Where the original procedure writes its test-set dump (the run folder, as the original wrote to ./)."""
        return self._path(original_dump_name(dataset, bits))

    def dump_directory(self, procedure):
        """Where a run's code dumps go: codes/, or the run folder itself for the original procedure."""
        return self.run_dir if procedure == "original" else self.codes

    def settings(self):
        """The run.json settings, or {} when there is none (`RunRecord.read`)."""
        return self.record.read()

    def is_finished(self):
        return os.path.exists(self.run_file) and os.path.exists(self.model)

    def has_checkpoint(self):
        return os.path.exists(self.run_file) and os.path.exists(self.last_checkpoint)

    def is_scored(self):
        return os.path.exists(self.scores)

    def code_dumps(self):
        """(query dump, database dump) of a finished run: codes/*.npz, or the original procedure's test-set dump
        as both."""
        settings = self.settings()
        if settings.get("procedure") == "original":
            pattern = original_dump_name("*", settings.get("hash_bits"))
            found = sorted(fnmatch.filter(os.listdir(self.run_dir), pattern))
            if len(found) != 1:
                raise SaehError(f"{self.run_dir} is a run of the original procedure but holds "
                                f"{len(found) or 'no'} dump(s) named {pattern}; expected one (generate_hash.py "
                                "writes it)")
            return self._path(found[0]), self._path(found[0])
        return self.code_path("query"), self.code_path("database")

    def remove_best_weights_except(self, epoch):
        """Delete every best-weights file (and best-state file) but those of `epoch` (older bests, or one of an
        epoch being redone)."""
        keep = {os.path.basename(self.best_weights(epoch)), os.path.basename(self.best_state(epoch))}
        for name in os.listdir(self.checkpoints) if os.path.isdir(self.checkpoints) else ():
            if name.startswith(BEST_PREFIX) and name.endswith((BEST_SUFFIX, BEST_STATE_SUFFIX)) and name not in keep:
                os.remove(os.path.join(self.checkpoints, name))

    def remove_temporaries(self):
        """Temporary files of writes killed half-way (nobody else writes here while a run is being set up)."""
        for directory in (self.run_dir, self.checkpoints, self.codes):
            remove_temporaries(directory)

    def clear(self):
        """Remove every file that belongs to a run (and the temporaries of killed writes); other files stay."""
        for name in (CHECKPOINTS, LOGS, CODES, STAGES):
            shutil.rmtree(self._path(name), ignore_errors=True)
        pattern = ORIGINAL_DUMP.format(which_data="*", bits="*")
        names = os.listdir(self.run_dir) if os.path.isdir(self.run_dir) else ()
        for name in names:
            if name in (RUN, HISTORY, HISTORY_CSV, MODEL, SHALLOW_MODEL, SCORES, METHOD_STATE) or fnmatch.fnmatch(
                    name, pattern):
                os.remove(self._path(name))
        remove_temporaries(self.run_dir)
