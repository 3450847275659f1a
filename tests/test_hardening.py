"""Faults injected into the command-line scripts: SIGKILL mid-training, full disks, divergence, and bad input.

Each fault must end in one clear line and a non-zero exit (or the right recovery), and lose nothing already
written. docs/FAULTS.md lists the faults and the tests below that check each. The scripts run as users run them:
in a subprocess where a process must die, otherwise in this process through `runpy` (the real files).
"""

import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from saeh import defaults
from script_helpers import error_line, run_script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, GENERATE, EVALUATE = "hash_su_ae_train.py", "generate_hash.py", "evaluate.py"
SIDE = 16  # the side of tiny_npz's images (tests/conftest.py)
SMALL = ["--stack-num", "1", "--hash-bits", "8", "--batch-size", "16", "--verbose", "2"]

# Runs hash_su_ae_train.py unchanged, except that the second epoch stops after its second batch (and says so in a
# marker file) until the test kills the process: a kill in mid-epoch, at a known place, on a machine of any speed.
PAUSING_TRAIN = """\
import runpy, sys, time
from saeh.training import callbacks

original = callbacks.NonFiniteGuard.on_train_batch_end

def pause_in_epoch_two(self, batch, logs=None):
    original(self, batch, logs)
    if self.epoch == 1 and batch == 1:
        open({marker!r}, "w").close()
        time.sleep(900)

callbacks.NonFiniteGuard.on_train_batch_end = pause_in_epoch_two
sys.argv = [{script!r}] + sys.argv[1:]
runpy.run_path({script!r}, run_name="__main__")
"""


def write_folder(root, classes=("a", "b"), per_class=4, side=8, seed=0):
    """A small RGB image folder root/{train,test}/<class>/*.png; returns root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for name in classes:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for index in range(per_class if split == "train" else 2):
                image = rng.integers(0, 255, (side, side, 3)).astype(np.uint8)
                Image.fromarray(image).save(os.path.join(root, split, name, f"{index}.png"))
    return str(root)


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, _, names in os.walk(folder) for name in names)


def read_history(run_dir):
    with open(os.path.join(run_dir, "history.json")) as handle:
        return json.load(handle)["epochs"]


# ---------------------------------------------------------------------------------------------------------------
# Crash-safe training


@pytest.mark.slow
def test_sigkill_mid_epoch_then_the_same_command_resumes(tiny_npz, tmp_path):
    save_dir = str(tmp_path / "runs")
    args = ["--which-data", tiny_npz, "--save-dir", save_dir, "--epochs", "3", "--deterministic", *SMALL]
    run_dir = os.path.join(save_dir, "saeh_tiny_8bits")
    checkpoints = os.path.join(run_dir, "checkpoints")
    marker = str(tmp_path / "paused-in-epoch-2")
    pausing = tmp_path / "pausing_train.py"
    pausing.write_text(PAUSING_TRAIN.format(marker=marker, script=os.path.join(REPO, TRAIN)))

    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen([sys.executable, str(pausing), *args], cwd=str(tmp_path), stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 900
            while not os.path.exists(marker) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert os.path.exists(marker), (tmp_path / "killed.log").read_text()[-3000:]
            # Epoch 1 is complete and checkpointed; epoch 2 is half done.
            assert os.path.isfile(os.path.join(checkpoints, "last.keras"))
            assert [row["epoch"] for row in read_history(run_dir)] == [1]
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    # A kill during a checkpoint write leaves its temporary file; the resumed run must clear it.
    stale = os.path.join(checkpoints, ".tmp-0badc0de-last.keras")
    with open(stale, "wb") as handle:
        handle.write(b"PK\x03\x04 half a checkpoint")

    result = subprocess.run([sys.executable, os.path.join(REPO, TRAIN), *args], cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    expected_rate = defaults.learning_rate(1, 3)
    assert (f"resuming from {os.path.join(checkpoints, 'last.keras')} at epoch 2 (learning rate {expected_rate})"
            in result.stdout), result.stdout
    history = read_history(run_dir)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["learning_rate"] for row in history] == [defaults.learning_rate(epoch, 3) for epoch in range(3)]
    with open(os.path.join(run_dir, "history.csv")) as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2, 3]
    assert not [name for name in files_under(run_dir) if ".tmp-" in name]
    for name in ("checkpoints/last.keras", "model.keras"):
        assert zipfile.is_zipfile(os.path.join(run_dir, name)), name
    assert os.path.isfile(os.path.join(run_dir, "codes", "query.npz"))
    assert "map@1000 = " in result.stdout


def test_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny_npz, tmp_path, monkeypatch, capsys):
    """Epoch 2's checkpoint write fails half-way: epoch 1's checkpoint stays whole under its name, no temporary
    file is left, and the error says which file could not be written and why."""
    import keras

    original_save = keras.Model.save
    kept = {}

    def save_until_the_disk_fills(self, filepath, *args, **kwargs):
        last = os.path.join(os.path.dirname(filepath), "last.keras")
        if not os.path.exists(last):  # epoch 1: written normally
            return original_save(self, filepath, *args, **kwargs)
        with open(last, "rb") as handle:
            kept["epoch 1"] = handle.read()
        with open(filepath, "wb") as handle:
            handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_fills)
    save_dir = str(tmp_path / "runs")
    code, out, err = run_script(TRAIN, ["--which-data", tiny_npz, "--save-dir", save_dir, "--epochs", "2", *SMALL],
                                monkeypatch, capsys)
    run_dir = os.path.join(save_dir, "saeh_tiny_8bits")
    last = os.path.join(run_dir, "checkpoints", "last.keras")
    assert code == 2
    assert f"could not write {last}: No space left on device" in error_line(err, TRAIN)
    with open(last, "rb") as handle:
        assert handle.read() == kept["epoch 1"]  # untouched
    assert not [name for name in files_under(run_dir) if ".tmp-" in name]
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))


def test_a_diverging_run_stops_naming_the_epoch_and_the_term(tiny_npz, tmp_path, monkeypatch, capsys):
    save_dir = str(tmp_path / "runs")
    code, out, err = run_script(TRAIN, ["--which-data", tiny_npz, "--save-dir", save_dir, "--epochs", "2",
                                        "--alpha", "1e30", "--beta", "1e30", *SMALL], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, TRAIN)
    assert "training diverged in epoch 1 (batch " in line
    assert re.search(r"hash_x_(balance|binary) became (nan|inf)", line) and "no checkpoint yet" in line
    assert not os.path.exists(os.path.join(save_dir, "saeh_tiny_8bits", "model.keras"))


# ---------------------------------------------------------------------------------------------------------------
# Bad input to hash_su_ae_train.py


def truncated_image(tmp_path, npz):
    root = write_folder(tmp_path / "data")
    broken = os.path.join(root, "train", "b", "1.png")
    with open(broken, "rb") as handle:
        content = handle.read()
    with open(broken, "wb") as handle:
        handle.write(content[: len(content) // 2])
    return ["--which-data", "folder", "--data-dir", root], f"cannot decode image {broken}"


def not_an_image(tmp_path, npz):
    root = write_folder(tmp_path / "data")
    broken = os.path.join(root, "test", "a", "0.png")
    with open(broken, "wb") as handle:
        handle.write(b"this is not a PNG file")
    return ["--which-data", root], f"cannot decode image {broken}"


def empty_class_folder(tmp_path, npz):
    root = write_folder(tmp_path / "data")
    os.makedirs(os.path.join(root, "train", "c"))
    return ["--which-data", "folder", "--data-dir", root], f"class folder {root}/train/c holds no images"


def single_class(tmp_path, npz):
    root = write_folder(tmp_path / "data", classes=("only",))
    return ["--which-data", root], "a retrieval dataset needs at least 2 classes; got 1 (only)"


def list_file_with_a_malformed_line(tmp_path, npz):
    root = write_folder(tmp_path / "data")
    (tmp_path / "data" / "train.txt").write_text("train/a/0.png 0\n\ntrain/a/1.png zero\n")
    (tmp_path / "data" / "test.txt").write_text("test/a/0.png 0\n")
    return ["--which-data", "list", "--data-dir", root], f"{root}/train.txt:3: labels must be integers; got 'zero'"


def list_file_with_a_label_out_of_range(tmp_path, npz):
    root = write_folder(tmp_path / "data")
    (tmp_path / "data" / "classes.txt").write_text("a\nb\n")
    (tmp_path / "data" / "train.txt").write_text("train/a/0.png 0\ntrain/b/0.png 1\n")
    (tmp_path / "data" / "test.txt").write_text("test/a/0.png 0\ntest/b/0.png 5\n")
    return ["--which-data", root], f"{root}/test.txt:2: label 5 is out of range"


def npz_with_pickled_objects(tmp_path, npz):
    path = tmp_path / "pickled.npz"
    images = np.empty(4, dtype=object)
    images[:] = [np.zeros((8, 8), np.uint8)] * 4
    np.savez(path, x_train=images, y_train=np.arange(4) % 2, x_test=images, y_test=np.arange(4) % 2)
    return ["--which-data", str(path)], f"{path} holds pickled objects, which are refused for safety"


def missing_data_dir(tmp_path, npz):
    return (["--which-data", "folder", "--data-dir", str(tmp_path / "nowhere")],
            f"data_dir {tmp_path / 'nowhere'} does not exist")


def missing_npz(tmp_path, npz):
    return ["--which-data", str(tmp_path / "mnist.npz")], f"dataset path {tmp_path / 'mnist.npz'} does not exist"


def on_tiny(*flags, message):
    """A case on the tiny .npz with more flags; the flags and `message` may name {tmp_path} and {npz}."""
    def case(tmp_path, npz):
        names = {"tmp_path": tmp_path, "npz": npz}
        return ["--which-data", npz, *(flag.format(**names) for flag in flags)], message.format(**names)

    return case


def save_dir_under_a_file(tmp_path, npz):
    (tmp_path / "a_file").write_text("not a folder")
    return (["--which-data", npz, "--save-dir", str(tmp_path / "a_file" / "sub")],
            f"cannot create the output directory {tmp_path}/a_file/sub/saeh_tiny_8bits: Not a directory")


BAD_TRAINING_INPUT = {
    "truncated image": truncated_image,
    "not an image": not_an_image,
    "empty class folder": empty_class_folder,
    "single class": single_class,
    "list file malformed line": list_file_with_a_malformed_line,
    "list file label out of range": list_file_with_a_label_out_of_range,
    "npz with pickled objects": npz_with_pickled_objects,
    "missing data dir": missing_data_dir,
    "missing npz": missing_npz,
    "unknown dataset": on_tiny("--which-data", "nonsense", message="unknown dataset 'nonsense'; expected one of"),
    "unknown method": on_tiny("--method", "nonsense", message="unknown method 'nonsense'; expected one of saeh"),
    "zero hash bits": on_tiny("--hash-bits", "0", message="--hash-bits must be a positive integer; got 0"),
    "negative hash bits": on_tiny("--hash-bits", "-8", message="--hash-bits must be a positive integer; got -8"),
    "zero batch size": on_tiny("--batch-size", "0", message="--batch-size must be a positive integer; got 0"),
    "zero epochs": on_tiny("--epochs", "0", message="--epochs must be a positive integer; got 0"),
    "batch larger than the data": on_tiny(
        "--batch-size", "1000", message="batch_size 1000 is larger than the training set (54 images)"),
    "num classes mismatch": on_tiny("--num-classes", "5", message="--num-classes is 5 but {npz} has 3 classes"),
    "missing load path": on_tiny("--load-path", "{tmp_path}/old.keras",
                                 message="load_path {tmp_path}/old.keras does not exist"),
    "save dir under a file": save_dir_under_a_file,
}


@pytest.mark.parametrize("fault", sorted(BAD_TRAINING_INPUT))
def test_bad_training_input_is_one_clear_line(fault, tmp_path, tiny_npz, monkeypatch, capsys):
    args, message = BAD_TRAINING_INPUT[fault](tmp_path, tiny_npz)
    save_dir = str(tmp_path / "runs")
    if "--save-dir" not in args:
        args += ["--save-dir", save_dir]
    code, out, err = run_script(TRAIN, [*SMALL, "--epochs", "1", *args], monkeypatch, capsys)
    assert code == 2
    assert message in error_line(err, TRAIN)
    assert not os.path.exists(save_dir)  # a refused command leaves no run behind


def test_a_failed_start_does_not_block_the_corrected_command(tiny_npz, tmp_path, monkeypatch, capsys):
    """An unknown encoder fails after the run directory was made; with no checkpoint there is nothing to keep, so
    the next command is judged on its own instead of being refused as 'an unfinished run with other settings'."""
    args = ["--which-data", tiny_npz, "--save-dir", str(tmp_path / "runs"), "--epochs", "1", *SMALL]
    code, _, err = run_script(TRAIN, [*args, "--encoder", "nonsense"], monkeypatch, capsys)
    assert code == 2 and "unknown encoder 'nonsense'; expected one of resnet_cifar" in error_line(err, TRAIN)
    code, _, err = run_script(TRAIN, [*args, "--encoder", "other"], monkeypatch, capsys)
    assert code == 2 and "unknown encoder 'other'" in error_line(err, TRAIN)


def test_grayscale_and_rgba_images_in_an_rgb_folder_are_converted(tmp_path):
    from PIL import Image

    from saeh.data import load_dataset

    root = write_folder(tmp_path / "data")
    gray = np.full((8, 8), 77, np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "data" / "train" / "a" / "gray.png")
    rgba = np.random.default_rng(0).integers(0, 255, (8, 8, 4)).astype(np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "data" / "train" / "b" / "rgba.png")
    with pytest.warns(UserWarning) as warned:
        data = load_dataset("folder", data_dir=root)
    messages = sorted(str(warning.message) for warning in warned)
    assert len(messages) == 2, messages
    assert "1 of 14 images" in messages[0] and "grayscale" in messages[0] and "gray.png" in messages[0]
    assert "1 of 14 images" in messages[1] and "alpha" in messages[1] and "rgba.png" in messages[1]
    assert data.image_shape == (8, 8, 3)
    # Sorted file names: a/0..3, a/gray, b/0..3, b/rgba.
    np.testing.assert_array_equal(data.train.images[4], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(data.train.images[9], rgba[..., :3])


# ---------------------------------------------------------------------------------------------------------------
# generate_hash.py: safe loading, missing files


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    """A hashing model (a Dense named hash_x) whose graph holds a Lambda layer: arbitrary code in the file."""
    import keras

    inputs = keras.Input((SIDE, SIDE, 1))
    features = keras.layers.Lambda(lambda images: images * 2.0 - 1.0)(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(8, activation="sigmoid", name="hash_x")(features)
    path = str(tmp_path_factory.mktemp("models") / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    return path


def test_a_model_with_a_lambda_layer_needs_unsafe_load(lambda_model, tiny_npz, tmp_path, monkeypatch, capsys):
    out = tmp_path / "codes"
    args = ["--load-path", lambda_model, "--which-data", tiny_npz, "--out", str(out)]
    code, _, err = run_script(GENERATE, args, monkeypatch, capsys)
    assert code == 2
    line = error_line(err, GENERATE)
    assert f"model file {lambda_model} contains a Lambda layer" in line and "--unsafe-load" in line
    assert not out.exists()
    code, out_text, err = run_script(GENERATE, [*args, "--unsafe-load"], monkeypatch, capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["database.mat", "database.npz", "query.mat", "query.npz"]


@pytest.mark.parametrize("case", ["missing model", "not a model", "truncated model", "missing default model"])
def test_generate_hash_without_a_usable_model(case, lambda_model, tmp_path, monkeypatch, capsys):
    path = tmp_path / "model.keras"
    if case == "not a model":
        path.write_bytes(b"PK\x03\x04 not a keras file")
    elif case == "truncated model":
        with open(lambda_model, "rb") as handle:
            path.write_bytes(handle.read()[:2000])
    args = ["--load-path", str(path)] if case != "missing default model" else []
    monkeypatch.chdir(tmp_path)  # the script's default load_path is relative: runs/saeh_cifar10_32bits/...
    code, _, err = run_script(GENERATE, args, monkeypatch, capsys)
    assert code == 2
    line = error_line(err, GENERATE)
    if case in ("not a model", "truncated model"):
        assert f"model file {path} is not a readable .keras model: not a zip archive" in line
    else:
        expected = str(path) if case == "missing model" else "runs/saeh_cifar10_32bits/model.keras"
        assert f"model file {expected} does not exist" in line


# ---------------------------------------------------------------------------------------------------------------
# evaluate.py: broken dumps


def dump(path, bits, n=12, **fields):
    from saeh.codes import make_codes, save_codes

    rng = np.random.default_rng(bits)
    codes = make_codes(rng.random((n, bits)), rng.integers(0, 3, n))
    if fields:
        np.savez(path, **fields)
    else:
        save_codes(path, codes)
    return str(path)


BAD_DUMPS = {
    "mismatched bit lengths": (
        lambda t: ["--query", dump(t / "q.mat", 8), "--database", dump(t / "d.npz", 16)],
        "query dump {t}/q.mat has 8-bit codes but database dump {t}/d.npz has 16-bit codes"),
    "missing field": (
        lambda t: [dump(t / "d.npz", 8, hash_bin=np.zeros((4, 8), np.uint8))],
        "code dump {t}/d.npz lacks the field(s) label"),
    "pickled objects": (
        lambda t: [dump(t / "d.npz", 8, hash_bin=np.zeros((4, 8), np.uint8), label=np.array([None] * 4))],
        "code dump {t}/d.npz holds pickled objects, which are refused for safety"),
    "missing dump": (lambda t: [str(t / "nothing.npz")], "code dump {t}/nothing.npz does not exist"),
}


@pytest.mark.parametrize("fault", sorted(BAD_DUMPS))
def test_bad_dumps_are_one_clear_line(fault, tmp_path, monkeypatch, capsys):
    make, message = BAD_DUMPS[fault]
    code, _, err = run_script(EVALUATE, make(tmp_path), monkeypatch, capsys)
    assert code == 2
    assert message.format(t=tmp_path) in error_line(err, EVALUATE)
