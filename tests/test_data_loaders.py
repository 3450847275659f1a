"""Dataset loaders on small files in each real format, written by the tests; every bad input gives a clear error."""

import os
import pickle
import tarfile
import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from saeh.data import (
    CIFAR10_CLASSES,
    ImageSet,
    LabelledData,
    dataset_names,
    load_dataset,
)
from saeh.data import decoding
from saeh.data import sources
from saeh.data.sources import arrays
from saeh.errors import MissingDataError, SaehError

SHARED_DATASETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """An empty HOME and no KERAS_HOME, and a Keras download that fails the test if reached."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def no_download(module_name):
        raise AssertionError(f"the test reached the keras.datasets.{module_name} download")

    monkeypatch.setattr(arrays, "keras_load_data", no_download)
    return home


def digits(rng, count, size=28):
    return rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)


def write_mnist_npz(path, rng, train=30, test=20, **overrides):
    arrays = {
        "x_train": digits(rng, train),
        "y_train": (np.arange(train) % 10).astype(np.uint8),
        "x_test": digits(rng, test),
        "y_test": (np.arange(test) % 10).astype(np.uint8),
    }
    arrays.update(overrides)
    np.savez_compressed(path, **arrays)
    return arrays


def write_cifar_batches(folder, rng, per_batch=4, labels=None):
    """CIFAR-10 python batches in the real layout: a pickled dict with bytes keys, b"data" (N, 3072) holding the R,
    G and B planes row-major, b"labels" a list of ints. Returns the (N, 32, 32, 3) images and labels written."""
    os.makedirs(folder, exist_ok=True)
    written = {}
    for batch_number, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        batch_labels = [(batch_number + i) % 10 for i in range(per_batch)] if labels is None else labels
        batch = {
            b"batch_label": f"batch {batch_number}".encode(),
            b"labels": list(batch_labels),
            b"data": images.transpose(0, 3, 1, 2).reshape(per_batch, 3072),
            b"filenames": [f"image_{i}.png".encode() for i in range(per_batch)],
        }
        with open(os.path.join(folder, name), "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
        written[name] = (images, np.asarray(batch_labels))
    x_train = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    y_train = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    return x_train, y_train, written["test_batch"][0], written["test_batch"][1]


def write_image(path, array, **save_options):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, **save_options)


def write_folder(root, rng, classes=("cat", "dog", "bird"), per_class=(3, 2), size=(6, 5), extension=".png"):
    """root/train/<class>/*.png and root/test/<class>/*.png with random RGB pixels; returns the arrays by split."""
    written = {"train": [], "test": []}
    for split, count in zip(("train", "test"), per_class):
        for class_name in classes:
            for index in range(count):
                array = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                write_image(os.path.join(root, split, class_name, f"{index:03d}{extension}"), array)
                written[split].append((class_name, array))
    return written


# ------------------------------------------------------------------------------------------------ containers


def test_image_set_subset_and_kinds():
    images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1)
    single = ImageSet(images, np.array([0, 1, 2, 1, 0], dtype=np.uint8))
    assert single.labels.dtype == np.int64 and not single.multi_label and len(single) == 5
    part = single.subset([4, 1])
    np.testing.assert_array_equal(part.images, images[[4, 1]])
    np.testing.assert_array_equal(part.labels, [0, 1])
    assert len(single.subset(np.array([], dtype=np.int64))) == 0
    assert len(single.subset(single.labels == 1)) == 2
    multi = ImageSet(images, np.eye(5, 3, dtype=np.int64))
    assert multi.multi_label and multi.labels.dtype == np.uint8
    with pytest.raises(SaehError, match=r"indices must lie in \[0, 5\)"):
        single.subset([5])


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.zeros((2, 4, 4, 1), np.float32), [0, 1], "must be a uint8 array"),
        (np.zeros((2, 4, 4), np.uint8), [0, 1], "must be a uint8 array"),
        (np.zeros((2, 4, 4, 2), np.uint8), [0, 1], "1 or 3 channels"),
        (np.zeros((2, 4, 4, 1), np.uint8), [0, 1, 1], "N = 2"),
        (np.zeros((2, 4, 4, 1), np.uint8), [0.5, 1.0], "must be integers"),
        (np.zeros((2, 4, 4, 1), np.uint8), [[0, 2], [1, 0]], "only 0 and 1"),
    ],
)
def test_image_set_rejects_bad_arrays(images, labels, message):
    with pytest.raises(SaehError, match=message):
        ImageSet(images, np.asarray(labels))


def test_labelled_data_checks():
    images = np.zeros((4, 3, 3, 1), np.uint8)
    good = ImageSet(images, np.array([0, 1, 0, 1]))
    data = LabelledData("toy", good, good, ("a", "b"))
    assert data.num_classes == 2 and data.image_shape == (3, 3, 1) and not data.multi_label
    with pytest.raises(SaehError, match="at least 2 classes"):
        LabelledData("toy", good, good, ("a",))
    with pytest.raises(SaehError, match=r"labels must lie in 0\.\.1"):
        LabelledData("toy", ImageSet(images, np.array([0, 1, 2, 1])), good, ("a", "b"))
    with pytest.raises(SaehError, match="test split has no images"):
        LabelledData("toy", good, ImageSet(images[:0], np.zeros(0, np.int64)), ("a", "b"))
    with pytest.raises(SaehError, match="single class"):
        LabelledData("toy", ImageSet(images, np.zeros(4, np.int64)), good, ("a", "b"))
    with pytest.raises(SaehError, match="same"):
        LabelledData("toy", good, ImageSet(np.zeros((4, 3, 3, 3), np.uint8), good.labels), ("a", "b"))


# ------------------------------------------------------------------------------------------------ names and arguments


def test_names_and_case_insensitive_lookup():
    assert dataset_names() == ("mnist-sample", "mnist", "cifar10", "svhn", "folder", "list", "text")
    data = load_dataset("  MNIST-Sample ")
    assert data.name == "mnist-sample"


def test_a_source_is_one_registered_loader(monkeypatch):
    monkeypatch.setattr(sources, "_SOURCES", dict(sources._SOURCES))  # the test's source leaves with the test
    rng = np.random.default_rng(0)
    calls = []

    @sources.register_source("toy", rank=35, takes=("data_dir",))
    def load_toy(data_dir=None):
        calls.append(data_dir)
        images = rng.integers(0, 256, size=(4, 6, 6, 1), dtype=np.uint8)
        split = ImageSet(images, np.array([0, 1, 0, 1]))
        return LabelledData("toy", split, split, ("a", "b"))

    assert dataset_names() == ("mnist-sample", "mnist", "cifar10", "toy", "svhn", "folder", "list", "text")
    data = load_dataset(" Toy", image_size=3)  # stored as arrays: resized after loading
    assert calls == [None] and data.image_shape == (3, 3, 1)
    with pytest.raises(SaehError, match=r"'toy' is stored as arrays.*\(folder, list\)"):
        load_dataset("toy", stream=True)
    with pytest.raises(SaehError, match="two loaders are registered as the dataset source 'mnist'"):
        sources.register_source("mnist", rank=1)(load_toy)
    with pytest.raises(SaehError, match="takes unknown argument"):
        sources.register_source("other", rank=1, takes=("root",))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"which_data": "imagenet"}, SaehError, "unknown dataset 'imagenet'.*mnist-sample"),
        ({"which_data": 3}, SaehError, "which_data must be"),
        ({"which_data": "mnist", "data_dir": "/no/such/folder"}, MissingDataError, "/no/such/folder does not exist"),
        ({"which_data": "folder"}, SaehError, "needs data_dir"),
        ({"which_data": "list"}, SaehError, "needs data_dir"),
        ({"which_data": "mnist-sample", "image_size": (0, 4)}, SaehError, "two positive integers"),
        ({"which_data": "mnist-sample", "image_size": "big"}, SaehError, "image_size must be"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_dataset(**kwargs)


@pytest.mark.parametrize("which_data, message", [("folder", "image folder"), ("list", "list-file folder")])
def test_a_file_sources_folder_is_checked_with_its_image_size(tmp_path, which_data, message):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("")
    with pytest.raises(MissingDataError, match=f"{message} {not_a_folder} does not exist"):
        load_dataset(which_data, data_dir=str(not_a_folder))
    with pytest.raises(SaehError, match="image_size must be"):
        load_dataset(which_data, data_dir=str(not_a_folder), image_size="big")


# ------------------------------------------------------------------------------------------------ MNIST


def test_bundled_mnist_sample():
    data = load_dataset("mnist-sample")
    assert data.train.images.shape == (5000, 28, 28, 1) and data.test.images.shape == (1000, 28, 28, 1)
    assert data.train.images.dtype == np.uint8 and data.train.labels.dtype == np.int64
    assert np.bincount(data.train.labels).tolist() == [500] * 10
    assert np.bincount(data.test.labels).tolist() == [100] * 10
    assert data.class_names == tuple("0123456789") and data.image_shape == (28, 28, 1)
    assert os.path.getsize(data.source) < 2_000_000
    with np.load(data.source) as archive:
        assert set(archive.files) == {"x_train", "y_train", "x_test", "y_test", "train_index", "test_index"}
        assert len(np.unique(archive["train_index"])) == 5000


def test_bundled_sample_can_be_resized():
    data = load_dataset("mnist-sample", image_size=(32, 32))
    assert data.image_shape == (32, 32, 1) and len(data.train) == 5000


def test_mnist_from_data_dir(tmp_path):
    arrays = write_mnist_npz(tmp_path / "mnist.npz", np.random.default_rng(0))
    for data_dir in (tmp_path, tmp_path / "mnist.npz"):  # the folder or the file itself
        data = load_dataset("mnist", data_dir=data_dir)
        assert data.train.images.shape == (30, 28, 28, 1) and data.test.images.shape == (20, 28, 28, 1)
        np.testing.assert_array_equal(data.train.images[..., 0], arrays["x_train"])
        np.testing.assert_array_equal(data.test.labels, arrays["y_test"])
        assert data.source == os.path.join(tmp_path, "mnist.npz")


def test_mnist_from_keras_cache(tmp_path, isolated_home, monkeypatch):
    cache = isolated_home / ".keras" / "datasets"
    cache.mkdir(parents=True)
    write_mnist_npz(cache / "mnist.npz", np.random.default_rng(1))
    assert load_dataset("mnist").source == str(cache / "mnist.npz")
    # An empty data_dir falls through to the cache.
    (tmp_path / "empty").mkdir()
    assert load_dataset("mnist", data_dir=tmp_path / "empty").source == str(cache / "mnist.npz")
    other = tmp_path / "keras_home"
    (other / "datasets").mkdir(parents=True)
    write_mnist_npz(other / "datasets" / "mnist.npz", np.random.default_rng(2))
    monkeypatch.setenv("KERAS_HOME", str(other))
    assert load_dataset("mnist").source == str(other / "datasets" / "mnist.npz")


def test_mnist_offline_download_failure_is_missing_data(tmp_path, monkeypatch):
    def offline(module_name):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(arrays, "keras_load_data", offline)
    with pytest.raises(MissingDataError) as caught:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(caught.value)
    assert os.path.join(tmp_path, "mnist.npz") in message
    assert os.path.join(".keras", "datasets", "mnist.npz") in message
    assert "no network" in message and "https://" in message


def test_mnist_download_used_as_last_resort(monkeypatch):
    rng = np.random.default_rng(3)
    calls = []

    def fake_download(module_name):
        calls.append(module_name)
        return (digits(rng, 10), np.arange(10, dtype=np.uint8)), (digits(rng, 10), np.arange(10, dtype=np.uint8))

    monkeypatch.setattr(arrays, "keras_load_data", fake_download)
    data = load_dataset("mnist")
    assert calls == ["mnist"] and data.train.images.shape == (10, 28, 28, 1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"y_train": np.full(30, 12, np.uint8)}, r"labels must lie in 0\.\.9"),
        ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}, "test split has no images"),
        ({"x_train": np.zeros((30, 28, 28), np.float32)}, "x_train must be uint8"),
        ({"y_train": np.zeros(29, np.uint8)}, "one class id per image"),
        ({"y_train": np.zeros(30, np.uint8)}, "single class"),
    ],
)
def test_mnist_bad_files(tmp_path, overrides, message):
    write_mnist_npz(tmp_path / "mnist.npz", np.random.default_rng(4), **overrides)
    with pytest.raises(SaehError, match=message) as caught:
        load_dataset("mnist", data_dir=tmp_path)
    assert "mnist.npz" in str(caught.value)


def test_npz_missing_keys_and_garbage(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(SaehError, match="lacks the array.*y_train"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(SaehError, match="not a readable .npz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_npz_path_as_which_data(tmp_path):
    arrays = write_mnist_npz(tmp_path / "digits.npz", np.random.default_rng(5))
    data = load_dataset(str(tmp_path / "digits.npz"))
    assert data.name == "digits" and data.num_classes == 10
    np.testing.assert_array_equal(data.train.labels, arrays["y_train"])


# ------------------------------------------------------------------------------------------------ CIFAR-10


def test_cifar10_python_batches(tmp_path):
    x_train, y_train, x_test, y_test = write_cifar_batches(tmp_path / "cifar-10-batches-py", np.random.default_rng(6))
    for data_dir in (tmp_path, tmp_path / "cifar-10-batches-py"):
        data = load_dataset("cifar10", data_dir=data_dir)
        assert data.train.images.shape == (20, 32, 32, 3) and data.test.images.shape == (4, 32, 32, 3)
        np.testing.assert_array_equal(data.train.images, x_train)
        np.testing.assert_array_equal(data.train.labels, y_train)
        np.testing.assert_array_equal(data.test.images, x_test)
        np.testing.assert_array_equal(data.test.labels, y_test)
        assert data.class_names == CIFAR10_CLASSES


def test_cifar10_plane_order(tmp_path):
    """Row = R plane, then G, then B, each 32x32 row-major: a row whose first 1024 values are 255 is pure red."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder, np.random.default_rng(7))
    row = np.zeros((1, 3072), np.uint8)
    row[0, :1024] = 255
    row[0, 1024 + 5] = 77  # green plane, pixel (0, 5)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.repeat(row, 2, axis=0), b"labels": [3, 4]}, handle, protocol=2)
    image = load_dataset("cifar10", data_dir=folder).test.images[0]
    assert np.all(image[..., 0] == 255) and image[0, 5, 1] == 77 and image[..., 2].max() == 0


def test_cifar10_keras3_cache_layout(isolated_home):
    folder = isolated_home / ".keras" / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_cifar_batches(folder, np.random.default_rng(8))
    assert load_dataset("cifar10").source == str(folder)


def test_cifar10_image_folder(tmp_path):
    rng = np.random.default_rng(9)
    written = write_folder(tmp_path / "cifar10", rng, classes=CIFAR10_CLASSES, per_class=(2, 1), size=(32, 32))
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.train.images.shape == (20, 32, 32, 3) and data.test.images.shape == (10, 32, 32, 3)
    assert data.class_names == CIFAR10_CLASSES
    np.testing.assert_array_equal(data.train.labels, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(data.test.images[3], written["test"][3][1])  # PNG is lossless


def test_cifar10_image_folder_with_other_classes_is_refused(tmp_path):
    write_folder(tmp_path, np.random.default_rng(10), classes=("apple", "pear"))
    with pytest.raises(SaehError, match="CIFAR-10's are.*which_data='folder'"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar10_missing_and_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(arrays, "keras_load_data", lambda name: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(MissingDataError, match=r"cifar10 not found.*cifar-10-batches-py.*offline.*cifar-10-python"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar10_bad_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder, np.random.default_rng(11), labels=[0, 1, 2, 10])
    with pytest.raises(SaehError, match=r"data_batch_1: labels must lie in 0\.\.9"):
        load_dataset("cifar10", data_dir=folder)
    write_cifar_batches(folder, np.random.default_rng(11))
    os.remove(folder / "data_batch_3")
    with pytest.raises(MissingDataError, match="lacks the CIFAR-10 batch file.*data_batch_3"):
        load_dataset("cifar10", data_dir=folder)
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(SaehError, match="data_batch_3 is not a readable CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=folder)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_cifar10_pickle_with_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder, np.random.default_rng(12))
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, handle, protocol=2)
    with pytest.raises(SaehError, match="test_batch is not a readable.*refusing to load"):
        load_dataset("cifar10", data_dir=folder)


# ------------------------------------------------------------------------------------------------ SVHN


def write_svhn(folder, rng, counts=(12, 6), labels=None):
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, count in zip(("train_32x32.mat", "test_32x32.mat"), counts):
        images = rng.integers(0, 256, size=(32, 32, 3, count), dtype=np.uint8)
        digits_1_to_10 = (np.arange(count) % 10 + 1) if labels is None else np.asarray(labels)
        scipy.io.savemat(os.path.join(folder, name), {"X": images, "y": digits_1_to_10.reshape(-1, 1).astype(np.uint8)})
        written.append((images, digits_1_to_10))
    return written


def test_svhn_mat_files(tmp_path):
    (train_x, train_y), (test_x, _) = write_svhn(tmp_path, np.random.default_rng(13))
    data = load_dataset("svhn", data_dir=tmp_path)
    assert data.train.images.shape == (12, 32, 32, 3) and data.test.images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(data.train.images, train_x.transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(data.test.images[2], test_x[..., 2])
    assert train_y[9] == 10 and data.train.labels[9] == 0  # SVHN's 10 is the digit 0
    np.testing.assert_array_equal(data.train.labels, train_y % 10)
    assert data.class_names == tuple("0123456789")


def test_svhn_subfolder_and_bad_labels(tmp_path):
    write_svhn(tmp_path / "svhn", np.random.default_rng(14), counts=(4, 4), labels=[1, 2, 11, 3])
    with pytest.raises(SaehError, match=r"train_32x32.mat: y must hold digits 1\.\.10"):
        load_dataset("svhn", data_dir=tmp_path)
    write_svhn(tmp_path / "svhn", np.random.default_rng(14), counts=(4, 4), labels=[1, 2, 0, 3])
    with pytest.raises(SaehError, match="y must hold digits"):
        load_dataset("svhn", data_dir=tmp_path)


def test_svhn_missing(tmp_path):
    with pytest.raises(MissingDataError, match=r"train_32x32.mat and test_32x32.mat.*ufldl"):
        load_dataset("svhn", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ image folders


def test_folder_loader_numbers_classes_alphabetically(tmp_path):
    written = write_folder(tmp_path / "photos", np.random.default_rng(15))
    data = load_dataset("folder", data_dir=tmp_path / "photos")
    assert data.class_names == ("bird", "cat", "dog") and data.name == "photos"
    assert data.train.images.shape == (9, 6, 5, 3) and data.test.images.shape == (6, 6, 5, 3)
    np.testing.assert_array_equal(data.train.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    cat_first = [array for name, array in written["train"] if name == "cat"][0]
    np.testing.assert_array_equal(data.train.images[3], cat_first)
    # A folder path works as which_data too.
    assert load_dataset(str(tmp_path / "photos")).class_names == ("bird", "cat", "dog")


def test_folder_loader_reads_jpeg_of_any_case(tmp_path):
    for split in ("train", "test"):
        for class_name in ("a", "b"):
            for index, extension in enumerate((".jpg", ".JPEG", ".png")):
                array = np.full((8, 8, 3), 40 + 100 * (class_name == "b"), np.uint8)
                write_image(str(tmp_path / split / class_name / f"{index}{extension}"), array, **(
                    {"quality": 95} if extension.lower() != ".png" else {}))
    (tmp_path / "train" / "a" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="ignored 1 file.*notes.txt"):
        data = load_dataset("folder", data_dir=tmp_path)
    assert len(data.train) == 6 and data.image_shape == (8, 8, 3)
    assert abs(int(data.train.images[0].mean()) - 40) <= 2 and abs(int(data.train.images[5].mean()) - 140) <= 2


def test_folder_grayscale_among_rgb_warns_once(tmp_path):
    rng = np.random.default_rng(17)
    write_folder(tmp_path, rng, classes=("a", "b"), per_class=(2, 1), size=(4, 4))
    gray = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    write_image(str(tmp_path / "train" / "a" / "gray1.png"), gray)
    write_image(str(tmp_path / "test" / "b" / "gray2.png"), gray)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset("folder", data_dir=tmp_path)
    grayscale_warnings = [w for w in caught if "grayscale" in str(w.message)]
    assert len(grayscale_warnings) == 1 and "2 of 8 images" in str(grayscale_warnings[0].message)
    assert data.image_shape == (4, 4, 3)
    converted = data.train.images[2]  # train/a: 000.png, 001.png, gray1.png
    for channel in range(3):
        np.testing.assert_array_equal(converted[..., channel], gray)


def test_folder_all_grayscale_has_one_channel(tmp_path):
    rng = np.random.default_rng(18)
    for split in ("train", "test"):
        for class_name in ("x", "y"):
            write_image(str(tmp_path / split / class_name / "0.png"), rng.integers(0, 256, (5, 5), dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_dataset("folder", data_dir=tmp_path)
    assert data.image_shape == (5, 5, 1)


def test_folder_rgba_becomes_rgb(tmp_path):
    rng = np.random.default_rng(19)
    write_folder(tmp_path, rng, classes=("a", "b"), per_class=(1, 1), size=(4, 4))
    rgba = rng.integers(0, 256, size=(4, 4, 4), dtype=np.uint8)
    write_image(str(tmp_path / "train" / "b" / "alpha.png"), rgba)
    with pytest.warns(UserWarning, match=r"1 of 5 images .* alpha .*alpha\.png"):
        data = load_dataset("folder", data_dir=tmp_path)
    np.testing.assert_array_equal(data.train.images[2], rgba[..., :3])


def test_folder_corrupt_image_names_the_file(tmp_path):
    write_folder(tmp_path, np.random.default_rng(20), classes=("a", "b"), size=(16, 16), extension=".jpg")
    victim = tmp_path / "train" / "b" / "001.jpg"
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(SaehError, match=r"cannot decode image .*train/b/001\.jpg"):
        load_dataset("folder", data_dir=tmp_path)
    victim.write_bytes(b"\x89PNG not really")
    with pytest.raises(SaehError, match=r"cannot decode image .*001\.jpg"):
        load_dataset("folder", data_dir=tmp_path)


def test_folder_empty_class_and_missing_split(tmp_path):
    write_folder(tmp_path, np.random.default_rng(21), classes=("a", "b"))
    (tmp_path / "test" / "c").mkdir()
    with pytest.raises(SaehError, match=r"test/c have no counterpart in .*train"):
        load_dataset("folder", data_dir=tmp_path)
    (tmp_path / "train" / "c").mkdir()
    with pytest.raises(SaehError, match=r"class folder .*train/c holds no images"):
        load_dataset("folder", data_dir=tmp_path)
    other = tmp_path / "other"
    write_folder(other, np.random.default_rng(21), classes=("a", "b"))
    import shutil

    shutil.rmtree(other / "test")
    with pytest.raises(MissingDataError, match=r"has no test/ folder"):
        load_dataset("folder", data_dir=other)


def test_folder_single_class(tmp_path):
    write_folder(tmp_path, np.random.default_rng(22), classes=("only",))
    with pytest.raises(SaehError, match=r"at least 2 classes.*only"):
        load_dataset("folder", data_dir=tmp_path)


def test_folder_mixed_sizes_need_image_size(tmp_path):
    write_folder(tmp_path, np.random.default_rng(23), classes=("a", "b"), size=(6, 5))
    write_image(str(tmp_path / "train" / "b" / "big.png"), np.zeros((12, 9, 3), np.uint8))
    with pytest.raises(SaehError, match=r"2 different sizes.*6x5.*big\.png is 12x9.*image_size"):
        load_dataset("folder", data_dir=tmp_path)
    data = load_dataset("folder", data_dir=tmp_path, image_size=(8, 7))
    assert data.image_shape == (8, 7, 3) and len(data.train) == 7


def test_decode_in_threads_matches_serial(tmp_path, monkeypatch):
    rng = np.random.default_rng(24)
    paths = []
    for index in range(600):
        path = str(tmp_path / f"{index}.png")
        write_image(path, rng.integers(0, 256, size=(3, 3, 3), dtype=np.uint8))
        paths.append(path)
    serial = decoding.decode_images(paths, source="test")
    monkeypatch.setattr(decoding, "_decode_workers", lambda paths: 2)
    threaded = decoding.decode_images(paths, source="test")
    np.testing.assert_array_equal(serial, threaded)


# ------------------------------------------------------------------------------------------------ list files


def write_list_dataset(root, rng, lines_by_file, size=(4, 4)):
    for list_name, entries in lines_by_file.items():
        rows = []
        for path, labels in entries:
            full = os.path.join(root, path)
            if not os.path.exists(full):
                write_image(full, rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))
            rows.append(f"{path} {labels}")
        (root / list_name).write_text("# comment\n" + "\n".join(rows) + "\n\n")


def test_list_files_with_integer_labels(tmp_path):
    write_list_dataset(tmp_path, np.random.default_rng(25), {
        "train.txt": [("img/a.png", "0"), ("img/b.png", "2"), ("img/c.png", "1")],
        "test.txt": [("img/d.png", "2"), ("img/a.png", "0")],
    })
    data = load_dataset("list", data_dir=tmp_path)
    assert not data.multi_label and data.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(data.train.labels, [0, 2, 1])
    np.testing.assert_array_equal(data.test.images[1], data.train.images[0])
    # A folder holding list files is recognised as a list dataset.
    assert load_dataset(str(tmp_path)).num_classes == 3


def test_list_files_with_multi_hot_labels_and_database_txt(tmp_path):
    write_list_dataset(tmp_path, np.random.default_rng(26), {
        "database.txt": [("a.jpg", "0 1 0 1"), ("b.jpg", "1 0 0 0"), ("c.jpg", "0 0 1 1")],
        "test.txt": [("d.jpg", "0 1 1 0")],
    })
    (tmp_path / "classes.txt").write_text("sky\nwater\nperson\nanimal\n")
    data = load_dataset("list", data_dir=tmp_path)
    assert data.multi_label and data.class_names == ("sky", "water", "person", "animal")
    assert data.train.labels.dtype == np.uint8
    np.testing.assert_array_equal(data.train.labels, [[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 1, 1]])


@pytest.mark.parametrize(
    "train_lines, message",
    [
        ([("a.png", "0"), ("b.png", "x")], r"train\.txt:3: labels must be integers"),
        ([("a.png", "0"), ("b.png", "")], r"train\.txt:3: expected 'relative/path label"),
        ([("a.png", "0 1"), ("b.png", "1 0 1")], r"train\.txt:3: 3 label\(s\) but earlier lines have 2"),
        ([("a.png", "0 1"), ("b.png", "2 0")], r"train\.txt:3: a multi-hot row must hold only 0 and 1"),
        ([("a.png", "0"), ("b.png", "-1")], r"train\.txt:3: class ids must be non-negative"),
    ],
)
def test_list_files_malformed_lines(tmp_path, train_lines, message):
    write_list_dataset(tmp_path, np.random.default_rng(27), {"train.txt": train_lines, "test.txt": [("c.png", "1")]})
    with pytest.raises(SaehError, match=message):
        load_dataset("list", data_dir=tmp_path)


def test_list_files_other_errors(tmp_path):
    rng = np.random.default_rng(28)
    write_list_dataset(tmp_path, rng, {"train.txt": [("a.png", "0"), ("b.png", "1")], "test.txt": [("c.png", "1")]})
    (tmp_path / "test.txt").write_text("c.png 1\nmissing.png 0\n")
    with pytest.raises(MissingDataError, match=r"test\.txt:2: image .*missing\.png does not exist"):
        load_dataset("list", data_dir=tmp_path)
    (tmp_path / "test.txt").write_text("c.png 0 1\n")
    with pytest.raises(SaehError, match="same label format"):
        load_dataset("list", data_dir=tmp_path)
    (tmp_path / "test.txt").write_text("# nothing here\n")
    with pytest.raises(SaehError, match=r"test\.txt lists no images"):
        load_dataset("list", data_dir=tmp_path)
    (tmp_path / "test.txt").write_text("c.png 2\n")
    (tmp_path / "classes.txt").write_text("zero\none\n")
    with pytest.raises(SaehError, match=r"test\.txt:1: label 2 is out of range.*2 classes"):
        load_dataset("list", data_dir=tmp_path)
    os.remove(tmp_path / "test.txt")
    with pytest.raises(MissingDataError, match=r"needs the list files test\.txt"):
        load_dataset("list", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ the real files


@pytest.mark.skipif(not os.path.isdir(SHARED_DATASETS), reason="the shared datasets folder is absent")
def test_real_mnist_and_bundled_sample_traceability():
    data = load_dataset("mnist", data_dir=SHARED_DATASETS)
    assert data.train.images.shape == (60000, 28, 28, 1) and data.test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(data.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    sample = load_dataset("mnist-sample")
    with np.load(sample.source) as archive:
        train_index, test_index = archive["train_index"], archive["test_index"]
    np.testing.assert_array_equal(sample.train.images, data.train.images[train_index])
    np.testing.assert_array_equal(sample.test.labels, data.test.labels[test_index])


@pytest.mark.skipif(not os.path.isdir(SHARED_DATASETS), reason="the shared datasets folder is absent")
def test_real_cifar10_jpeg_extract(tmp_path):
    """The first 3 training and 2 test JPEGs of each class, extracted from the real tar, through the cifar10 loader."""
    wanted = {f"cifar10/{split}/{name}/{index:04d}.jpg" for split, count in (("train", 3), ("test", 2))
              for name in CIFAR10_CLASSES for index in range(count)}
    with tarfile.open(os.path.join(SHARED_DATASETS, "cifar10-jpg.tar")) as archive:
        members = [member for member in archive.getmembers() if member.name in wanted]
        archive.extractall(tmp_path, members=members, filter="data")
    assert len(members) == 50
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.train.images.shape == (30, 32, 32, 3) and data.test.images.shape == (20, 32, 32, 3)
    assert data.class_names == CIFAR10_CLASSES
    np.testing.assert_array_equal(data.train.labels, np.repeat(np.arange(10), 3))
    reference = np.asarray(Image.open(tmp_path / "cifar10" / "test" / "ship" / "0001.jpg").convert("RGB"))
    np.testing.assert_array_equal(data.test.images[8 * 2 + 1], reference)
