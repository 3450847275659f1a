"""run.json through `saeh.run_record.RunRecord`: the format version is written, a file without it (every run folder
and shipped model from before the field) reads as version 1 and still resumes, a newer version is refused."""

import glob
import json
import os

import pytest

from saeh.errors import SaehError
from saeh.run_folder import RunFolder
from saeh.run_record import FORMAT_VERSION, VERSION_KEY, RunRecord, as_recorded
from saeh.training import run_states

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {"which_data": "mnist-sample", "method": "saeh", "hash_bits": 8, "image_size": (12, 12),
            "hyperparameters": {"alpha": 0.1}, "seed": 0, "preset": None}


def write_raw(folder, content):
    os.makedirs(folder.run_dir, exist_ok=True)
    with open(folder.run_file, "w") as handle:
        json.dump(content, handle)


def leave_a_checkpoint(folder):
    """Make `folder` an unfinished run with a checkpoint, as a run killed after its first epoch."""
    os.makedirs(folder.checkpoints, exist_ok=True)
    open(folder.last_checkpoint, "wb").close()


def test_round_trip_writes_the_version_and_reads_the_settings_alone(tmp_path):
    record = RunRecord(tmp_path / "run.json")
    record.write(SETTINGS)
    with open(record.path) as handle:
        written = json.load(handle)
    assert written[VERSION_KEY] == FORMAT_VERSION
    assert record.read() == {**SETTINGS, "image_size": [12, 12]}  # as JSON records a tuple
    assert VERSION_KEY not in record.read()
    with pytest.raises(ValueError, match="format_version"):
        record.write({**SETTINGS, VERSION_KEY: 2})


def test_a_missing_record_reads_as_no_settings(tmp_path):
    assert RunRecord(tmp_path / "run.json").read() == {}
    assert RunFolder(tmp_path).settings() == {}


def test_an_old_record_without_the_version_is_version_1_and_resumes(tmp_path):
    folder = RunFolder(tmp_path / "run")
    write_raw(folder, as_recorded(SETTINGS))  # as every run folder before the field
    assert folder.settings() == as_recorded(SETTINGS)
    leave_a_checkpoint(folder)
    assert run_states.prepare_run_dir(folder.run_dir, SETTINGS, resume=True, overwrite=False) == run_states.RESUME
    with open(folder.run_file) as handle:
        assert VERSION_KEY not in json.load(handle)  # resuming leaves the record as it was
    with pytest.raises(SaehError, match="other settings.*hash_bits: 8 -> 16"):
        run_states.prepare_run_dir(folder.run_dir, {**SETTINGS, "hash_bits": 16}, resume=True, overwrite=False)


def test_an_old_finished_run_is_reused_and_a_new_record_resumes(tmp_path):
    old = RunFolder(tmp_path / "old")
    write_raw(old, as_recorded(SETTINGS))
    open(old.model, "wb").close()
    assert run_states.prepare_run_dir(old.run_dir, SETTINGS, resume=True, overwrite=False,
                                      reuse_finished=True) == run_states.FINISHED
    new = RunFolder(tmp_path / "new")
    assert run_states.prepare_run_dir(new.run_dir, SETTINGS, resume=True, overwrite=False) == run_states.NEW
    leave_a_checkpoint(new)
    assert run_states.prepare_run_dir(new.run_dir, SETTINGS, resume=True, overwrite=False) == run_states.RESUME


@pytest.mark.parametrize("version, message", [
    (FORMAT_VERSION + 1, f"format version {FORMAT_VERSION + 1}, newer than this saeh reads"),
    ("2", "format_version '2'; expected a positive integer"),
    (0, "format_version 0; expected a positive integer"),
])
def test_an_unknown_version_is_refused_naming_the_file(tmp_path, version, message):
    folder = RunFolder(tmp_path / "run")
    write_raw(folder, {**as_recorded(SETTINGS), VERSION_KEY: version})
    with pytest.raises(SaehError, match=message) as refused:
        folder.settings()
    assert folder.run_file in str(refused.value)
    leave_a_checkpoint(folder)
    with pytest.raises(SaehError, match=message):  # refused rather than resumed or cleared
        run_states.prepare_run_dir(folder.run_dir, SETTINGS, resume=True, overwrite=False)
    assert os.path.exists(folder.last_checkpoint)


def test_a_file_that_is_no_record_is_refused_naming_it(tmp_path):
    folder = RunFolder(tmp_path)
    write_raw(folder, ["not", "settings"])
    with pytest.raises(SaehError, match=f"{folder.run_file} is not a run record: expected a JSON object"):
        folder.settings()
    with open(folder.run_file, "w") as handle:
        handle.write("{cut short")
    with pytest.raises(SaehError, match="is not a readable run record"):
        folder.settings()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "pretrained", "*", "run.json"))))
def test_the_shipped_models_records_read_as_version_1(path):
    with open(path) as handle:
        content = json.load(handle)
    assert RunFolder(os.path.dirname(path)).settings() == {key: value for key, value in content.items()
                                                          if key != VERSION_KEY}
