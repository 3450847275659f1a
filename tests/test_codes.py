"""Code dumps (saeh.codes): the MATLAB classes and shapes each writer stores, and `load_codes` reading our dumps,
the original `generate_hash.py`'s and those of earlier versions; GNU Octave does arithmetic on a dump when installed."""

import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from saeh.codes import Codes, load_codes, make_codes, save_codes, save_original_dump
from saeh.errors import SaehError

COUNT, BITS, CLASSES = 7, 12, 3
MAT_HEADER_BYTES = 128  # a MAT 5 file: 128 header bytes, then data elements, each opening with its type
MI_MATRIX, MI_COMPRESSED = 14, 15


def single_label_codes(seed=0, count=COUNT):
    rng = np.random.default_rng(seed)
    return make_codes(rng.random((count, BITS)), rng.integers(0, CLASSES, count))


def multi_hot_codes(seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((COUNT, CLASSES)) < 0.5).astype(np.uint8)
    labels[:, 0] |= labels.sum(axis=1) == 0  # each sample has at least one label
    return make_codes(rng.random((COUNT, BITS)), labels)


def stored(path):
    """{field: (shape, MATLAB class)} as MATLAB would see them."""
    return {name: (shape, matlab_class) for name, shape, matlab_class in scipy.io.whosmat(path)}


def first_element_type(path):
    with open(path, "rb") as handle:
        handle.seek(MAT_HEADER_BYTES)
        return struct.unpack("<I", handle.read(4))[0]


def assert_same_codes(loaded, codes):
    assert loaded.hash_bin.dtype == np.uint8 and loaded.hash_org.dtype == np.float32
    np.testing.assert_array_equal(loaded.hash_bin, codes.hash_bin)
    np.testing.assert_array_equal(loaded.hash_org, codes.hash_org)
    np.testing.assert_array_equal(loaded.label, codes.label)
    assert loaded.label.shape == codes.label.shape


def test_default_mat_dump_is_logical_codes_and_a_label_column(tmp_path):
    codes = single_label_codes()
    path = str(tmp_path / "codes.mat")
    save_codes(path, codes)
    assert stored(path) == {"hash_org": ((COUNT, BITS), "single"), "hash_bin": ((COUNT, BITS), "logical"),
                            "label": ((COUNT, 1), "int64")}
    raw = scipy.io.loadmat(path)
    assert raw["hash_bin"].dtype == np.uint8  # scipy reads a logical back as uint8
    np.testing.assert_array_equal(raw["hash_bin"], codes.hash_bin)
    np.testing.assert_array_equal(raw["label"][:, 0], codes.label)
    assert first_element_type(path) == MI_COMPRESSED
    assert_same_codes(load_codes(path), codes)


def test_default_mat_dump_keeps_multi_hot_labels_n_by_c_as_logical(tmp_path):
    codes = multi_hot_codes()
    path = str(tmp_path / "codes.mat")
    save_codes(path, codes)
    assert stored(path) == {"hash_org": ((COUNT, BITS), "single"), "hash_bin": ((COUNT, BITS), "logical"),
                            "label": ((COUNT, CLASSES), "logical")}
    assert_same_codes(load_codes(path), codes)


@pytest.mark.parametrize("make", [single_label_codes, multi_hot_codes], ids=["single-label", "multi-hot"])
def test_npz_dump_is_unchanged_uint8_codes_and_labels_as_given(tmp_path, make):
    codes = make()
    path = str(tmp_path / "codes.npz")
    save_codes(path, codes)
    with np.load(path) as archive:
        assert archive["hash_org"].dtype == np.float32 and archive["hash_bin"].dtype == np.uint8
        assert archive["hash_bin"].shape == (COUNT, BITS) and archive["label"].shape == codes.label.shape
    assert_same_codes(load_codes(path), codes)


def test_empty_codes_round_trip(tmp_path):
    codes = Codes(np.zeros((0, BITS), np.float32), np.zeros((0, BITS), np.uint8), np.zeros(0, np.int64))
    for suffix in (".mat", ".npz"):
        path = str(tmp_path / f"empty{suffix}")
        save_codes(path, codes)
        assert_same_codes(load_codes(path), codes)


def write_as_the_original_did(path, outputs, y_test):
    """The original `generate_hash.py`'s own call, to compare our writer with."""
    scipy.io.savemat(path, {"hash_org": outputs, "hash_bin": np.where(outputs > 0.5, 1, 0), "label": y_test})


@pytest.mark.parametrize("loader_shape, stored_shape", [((COUNT, 1), (COUNT, 1)), ((COUNT,), (1, COUNT))],
                         ids=["cifar10-svhn-column", "mnist-row"])
def test_original_dump_matches_the_original_scripts_file(tmp_path, loader_shape, stored_shape):
    rng = np.random.default_rng(1)
    outputs = rng.random((COUNT, BITS))  # float64, as the original's
    y_test = rng.integers(0, 10, COUNT).astype(np.uint8).reshape(loader_shape)  # Keras's labels
    codes = make_codes(outputs, y_test)
    ours, theirs = str(tmp_path / "ours.mat"), str(tmp_path / "theirs.mat")
    save_original_dump(ours, codes, label=y_test)
    write_as_the_original_did(theirs, outputs, y_test)
    assert stored(ours) == stored(theirs) == {"hash_org": ((COUNT, BITS), "double"),
                                              "hash_bin": ((COUNT, BITS), "int64"), "label": (stored_shape, "uint8")}
    assert first_element_type(ours) == first_element_type(theirs) == MI_MATRIX  # not compressed
    raw = scipy.io.loadmat(ours)
    assert raw["hash_org"].dtype == np.float64 and raw["hash_bin"].dtype == np.int64
    np.testing.assert_array_equal(raw["hash_bin"], codes.hash_bin)
    for path in (ours, theirs):
        loaded = load_codes(path)
        assert_same_codes(loaded, codes)
        assert loaded.label.shape == (COUNT,)


def test_original_dump_without_labels_writes_the_codes_labels(tmp_path):
    codes = multi_hot_codes()
    path = str(tmp_path / "original.mat")
    save_original_dump(path, codes)
    assert stored(path)["label"] == ((COUNT, CLASSES), "uint8")
    assert_same_codes(load_codes(path), codes)


@pytest.mark.parametrize("bin_dtype", [np.bool_, np.uint8, np.int64, np.float64])
@pytest.mark.parametrize("label_layout", ["row", "column", "flat"])
def test_load_reads_any_0_1_codes_and_row_or_column_labels(tmp_path, bin_dtype, label_layout):
    """Dumps of earlier versions (uint8 codes, (N,) labels that MATLAB stores as a row), the original's (int64,
    double), MATLAB-made ones (double, logical), with labels as rows or columns."""
    codes = single_label_codes(seed=2)
    label = {"row": codes.label[None, :], "column": codes.label[:, None], "flat": codes.label}[label_layout]
    path = str(tmp_path / "dump.mat")
    scipy.io.savemat(path, {"hash_org": codes.hash_org, "hash_bin": codes.hash_bin.astype(bin_dtype),
                            "label": label.astype(np.float64 if bin_dtype == np.float64 else np.int64)})
    assert_same_codes(load_codes(path), codes)


def test_load_reads_column_labels_from_npz(tmp_path):
    codes = single_label_codes(seed=3)
    path = str(tmp_path / "dump.npz")
    np.savez(path, hash_org=codes.hash_org, hash_bin=codes.hash_bin.astype(bool), label=codes.label[:, None])
    assert_same_codes(load_codes(path), codes)


def test_writers_refuse_what_they_cannot_write(tmp_path):
    codes = single_label_codes()
    with pytest.raises(SaehError, match=r"original\.npz.*expected a \.mat file"):
        save_original_dump(str(tmp_path / "original.npz"), codes)
    with pytest.raises(SaehError, match=r"label must be \(N,\) or \(N, C\) with N = 7 rows.*got shape \(6, 1\)"):
        save_original_dump(str(tmp_path / "original.mat"), codes, label=np.zeros((6, 1), np.uint8))
    signed = Codes(codes.hash_org, codes.hash_bin.astype(np.int8) * 2 - 1, codes.label)
    for suffix in (".mat", ".npz"):
        with pytest.raises(SaehError, match=rf"signed{suffix}: hash_bin must hold only 0 and 1"):
            save_codes(str(tmp_path / f"signed{suffix}"), signed)
    with pytest.raises(SaehError, match=r"codes\.txt: unknown format '\.txt'"):
        save_codes(str(tmp_path / "codes.txt"), codes)
    assert os.listdir(tmp_path) == []  # nothing half-written


def parse_matrix(text):
    """A matrix printed by Octave's mat2str, e.g. "[1 -1;0 2]", as a 2-D int array."""
    rows = text.strip().strip("[]").split(";")
    return np.array([[int(value) for value in row.split()] for row in rows])


def test_octave_does_signed_arithmetic_and_products_on_a_default_dump(tmp_path):
    octave = shutil.which("octave-cli") or shutil.which("octave")
    if octave is None:
        pytest.skip("GNU Octave (octave-cli or octave) is not on PATH")
    codes = single_label_codes(seed=4)
    path = str(tmp_path / "codes.mat")
    save_codes(path, codes)
    script = (f"d = load('{path}'); B = d.hash_bin; S = 2*B-1; G = B*B';"
              "printf('class %s\\n', class(B));"
              "printf('signed %s\\n', mat2str(S));"
              "printf('gram %s\\n', mat2str(G));"
              "printf('label %s\\n', mat2str(size(d.label)));")
    result = subprocess.run([octave, "--quiet", "--no-init-file", "--eval", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert printed["class"] == "logical"
    bits = codes.hash_bin.astype(np.int64)
    np.testing.assert_array_equal(parse_matrix(printed["signed"]), 2 * bits - 1)
    np.testing.assert_array_equal(parse_matrix(printed["gram"]), bits @ bits.T)
    assert parse_matrix(printed["label"]).tolist() == [[COUNT, 1]]


def test_encoding_draws_progress_on_a_terminal_only(capsys, monkeypatch):
    """Long encodes (a 60,000-image database) show a progress bar on a terminal; "auto" writes none into a file or
    pipe, and the default (the per-epoch collapse check's encodes) none at all."""
    import keras

    from saeh import inference

    inputs = keras.Input((4, 4, 1), name="image")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid", name="hash_x")(
        keras.layers.Flatten()(inputs)))
    images = np.zeros((10, 4, 4, 1), np.uint8)
    for progress, terminal, drawn in ((False, True, False), ("auto", False, False), ("auto", True, True),
                                      (True, False, True)):
        monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal, raising=False)
        inference.encode(model, images, batch_size=4, progress=progress)
        output = capsys.readouterr().out
        assert ("3/3" in output) == drawn, (progress, terminal, output)


def test_decoding_a_dataset_counts_its_images_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    """Decoding a folder into memory, and into the decoded cache, shows a counter of images on a terminal; into a
    file or pipe ("auto" off a terminal) nothing, so a log keeps one line per epoch."""
    from image_folders import write_class_folders

    from saeh.data import load_dataset

    folder = write_class_folders(tmp_path / "data", 2, 3, 2, 8, seed=0)  # 6 train + 4 test images
    for terminal, drawn in ((False, False), (True, True)):
        monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal, raising=False)
        load_dataset("folder", folder, stream=False)
        load_dataset("folder", folder, stream=True, cache_dir=str(tmp_path / f"cache{terminal}"))
        output = capsys.readouterr().out
        assert output.count("10/10 (100%)") == (2 if drawn else 0), (terminal, output)
        assert ("\r" in output) == drawn
