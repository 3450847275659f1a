"""A run folder's record, `run.json`: the settings a run was started with. Only `RunRecord` reads and writes it.

The settings are a flat JSON object whose key names every run folder depends on (renaming one would make every
existing run refuse to resume), written by

- `saeh.training.train`, for a deep method: the data settings of the caller (`hash_su_ae_train.py`: which_data,
  data_dir, image_size, protocol, seed, validation_size, select_on_test, procedure, preset), then method,
  hyperparameters, hash_bits, stack_num, encoder, epochs, batch_size, seed, augment, learning_rate,
  final_weights, and replicas, warmup_epochs and recipe only where they differ from the original's;
- `baselines.shallow_methods.fit_shallow`, for a shallow method: the data settings, then method, hash_bits,
  seed, hyperparameters, features;
- `saeh.pretrained.ship`: the settings of the run it ships, less data_dir.

Next to the settings the file holds `format_version` (FORMAT_VERSION), which is no setting: `read` leaves it out,
so that a resumed run compares the settings alone. A file without it was written before the field existed and is
version 1, the same keys; a file of a newer version than this code knows is refused rather than misread.
"""

import json
import os

from saeh.atomic import write_json
from saeh.errors import SaehError

VERSION_KEY = "format_version"
FORMAT_VERSION = 1
UNVERSIONED = 1  # the version of a run.json written before the field existed


def as_recorded(settings):
    """`settings` as run.json records them (tuples become lists, keys strings), so that settings in memory and
    settings read back compare equal."""
    return json.loads(json.dumps(settings))


class RunRecord:
    """The run.json at `path`."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def exists(self):
        return os.path.exists(self.path)

    def read(self):
        """The recorded settings (without the format version), or {} when there is no file. Raises SaehError for
        a file that is no run record, or one of a format version newer than this code reads."""
        if not self.exists():
            return {}
        with open(self.path) as handle:
            try:
                recorded = json.load(handle)
            except json.JSONDecodeError as error:
                raise SaehError(f"{self.path} is not a readable run record (JSON): {error}") from error
        if not isinstance(recorded, dict):
            raise SaehError(f"{self.path} is not a run record: expected a JSON object of settings; got "
                            f"{type(recorded).__name__}")
        settings = dict(recorded)
        version = settings.pop(VERSION_KEY, UNVERSIONED)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SaehError(f"{self.path} has {VERSION_KEY} {version!r}; expected a positive integer")
        if version > FORMAT_VERSION:
            raise SaehError(f"{self.path} is a run record of format version {version}, newer than this saeh reads "
                            f"(up to {FORMAT_VERSION}): use the saeh version that wrote it, or train the run again")
        return settings

    def write(self, settings):
        """Record `settings` (a dict; its tuples are written as lists), with the current format version."""
        settings = as_recorded(settings)
        if VERSION_KEY in settings:
            raise ValueError(f"{VERSION_KEY!r} is the record's own field, not a setting")
        write_json(self.path, {**settings, VERSION_KEY: FORMAT_VERSION})
