"""Datasets held in memory as uint8 image arrays with labels, from the files people actually have.

Every loader returns `LabelledData`: a train and a test `ImageSet` plus class names. Images are
(N, H, W, C) uint8 with C = 1 (grayscale) or 3 (RGB), pixel values untouched (scaling to [0, 1] is the input
pipeline's job); labels are (N,) int64 class ids or (N, num_classes) uint8 multi-hot rows.

Sources, by `which_data` name (`load_dataset`):

- ``mnist-sample``: a stratified 5,000/1,000 sample of MNIST bundled in the package (always offline).
- ``mnist``: ``mnist.npz`` (Keras layout) in `data_dir`, else the Keras cache, else a Keras download.
- ``cifar10``: the python pickle batches ``cifar-10-batches-py/`` or an image folder ``cifar10/{train,test}/<class>/``
  in `data_dir`, else the Keras cache, else a Keras download.
- ``svhn``: ``train_32x32.mat`` and ``test_32x32.mat`` (cropped digits) in `data_dir` or ``<keras cache>/svhn``.
- ``folder``: any image folder ``data_dir/{train,test}/<class>/*.{jpg,jpeg,png}``.
- ``list``: list files ``train.txt`` (or ``database.txt``) and ``test.txt`` in `data_dir`, one
  ``relative/path label...`` per line, integer or multi-hot labels.

A path may stand in for the name: a folder (list files inside → ``list``, else ``folder``) or a Keras-layout ``.npz``.
"""

import concurrent.futures
import dataclasses
import importlib
import os
import pickle
import warnings
import zipfile

import numpy as np

from saeh.data.cache import cached_images
from saeh.data.files import memory_budget as _memory_budget
from saeh.data.files import (
    ImageFiles,
    channels_of,
    check_image_size,
    decode_image,
    decoded_bytes,
    describe_array,
    format_bytes,
    scan_image_files,
    usable_cpus,
    warn_alpha_dropped,
)
from saeh.errors import MissingDataError, SaehError

DATASET_NAMES = ("mnist-sample", "mnist", "cifar10", "svhn", "folder", "list")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SVHN_CLASSES = MNIST_CLASSES  # after mapping SVHN's label 10 to digit 0
MNIST_SAMPLE_FILE = "mnist_sample.npz"
SPLIT_NAMES = ("train", "test")
STREAM_CHOICES = ("auto", True, False)
ARRAY_DATASET_NAMES = ("mnist-sample", "mnist", "cifar10", "svhn")  # stored as arrays: always in memory
TRAIN_LIST_NAMES = ("train.txt", "database.txt")
TEST_LIST_NAME = "test.txt"
CLASSES_FILE_NAME = "classes.txt"

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")

# Below this mean file size, decoding is dominated by Python overhead under the GIL and threads slow it down
# (measured: 10,000 CIFAR JPEGs of ~1 KB take 1.4 s in one thread, 2.3 s in two); bigger images spend their time in
# libjpeg/zlib, which release the GIL, so a thread pool pays off (256x256 JPEGs: 0.33 s → 0.23 s with two threads).
_THREADED_DECODE_MIN_BYTES = 16 * 1024
_DECODE_CHUNK = 256


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """One split: images (N, H, W, C) uint8 with C in (1, 3), in memory or left in their files (`ImageFiles`), and
    row-aligned labels.

    Labels are (N,) int64 class ids or (N, num_classes) uint8 multi-hot rows (0/1). Integer label arrays of other
    dtypes are converted; anything else is refused.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        images = self.images
        if not isinstance(images, (np.ndarray, ImageFiles)) or images.dtype != np.uint8 or images.ndim != 4:
            raise SaehError(
                f"images must be a uint8 array of shape (N, H, W, C); got {describe_array(images)}"
            )
        if images.shape[-1] not in (1, 3):
            raise SaehError(f"images must have 1 or 3 channels (last axis); got shape {images.shape}")
        labels = np.asarray(self.labels)
        if labels.ndim not in (1, 2) or len(labels) != len(images):
            raise SaehError(
                f"labels must be (N,) class ids or (N, num_classes) multi-hot with N = {len(images)}; "
                f"got shape {labels.shape}"
            )
        if labels.size and not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
            raise SaehError(f"labels must be integers; got dtype {labels.dtype}")
        if labels.ndim == 1:
            labels = labels.astype(np.int64, copy=False)
        else:
            if labels.size and not np.all((labels == 0) | (labels == 1)):
                raise SaehError("multi-hot labels (N, num_classes) must hold only 0 and 1")
            labels = labels.astype(np.uint8, copy=False)
        object.__setattr__(self, "labels", labels)

    def __len__(self):
        return len(self.images)

    @property
    def multi_label(self):
        """True when labels are (N, num_classes) multi-hot rows."""
        return self.labels.ndim == 2

    @property
    def image_shape(self):
        """(H, W, C) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, indices):
        """The images and labels at `indices` (integer positions or a boolean mask), copied, in that order."""
        indices = np.asarray(indices)
        if indices.dtype == np.bool_:
            if indices.shape != (len(self),):
                raise SaehError(f"a boolean mask must have shape ({len(self)},); got {indices.shape}")
        elif indices.size == 0:
            indices = indices.astype(np.int64)
        elif not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise SaehError(f"indices must be a 1-D integer array or a boolean mask; got {describe_array(indices)}")
        elif indices.min() < -len(self) or indices.max() >= len(self):
            raise SaehError(
                f"indices must lie in [0, {len(self)}); got values from {indices.min()} to {indices.max()}"
            )
        return ImageSet(images=self.images[indices], labels=self.labels[indices])


@dataclasses.dataclass(frozen=True, eq=False)
class LabelledData:
    """A dataset as a loader returns it: train and test sets, class names, and where it came from.

    Checked on construction: both sets non-empty, same image shape, same kind of labels, at least two classes,
    every label in [0, num_classes).
    """

    name: str
    train: ImageSet
    test: ImageSet
    class_names: tuple
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        for split, image_set in (("train", self.train), ("test", self.test)):
            if not isinstance(image_set, ImageSet):
                raise SaehError(f"{split} must be an ImageSet; got {type(image_set).__name__}")
            if len(image_set) == 0:
                raise SaehError(f"the {split} split has no images")
        if self.train.image_shape != self.test.image_shape:
            raise SaehError(
                f"train images are {self.train.image_shape} but test images are {self.test.image_shape}; "
                "both splits need the same (H, W, C)"
            )
        if self.train.multi_label != self.test.multi_label:
            raise SaehError("train and test labels must be of the same kind (class ids or multi-hot rows)")
        num_classes = len(self.class_names)
        if num_classes < 2:
            raise SaehError(
                f"a retrieval dataset needs at least 2 classes; got {num_classes} ({', '.join(self.class_names)})"
            )
        for split, image_set in (("train", self.train), ("test", self.test)):
            labels = image_set.labels
            if image_set.multi_label:
                if labels.shape[1] != num_classes:
                    raise SaehError(
                        f"{split} multi-hot labels have {labels.shape[1]} columns; expected {num_classes} "
                        "(one per class name)"
                    )
            elif labels.min() < 0 or labels.max() >= num_classes:
                raise SaehError(
                    f"{split} labels must lie in 0..{num_classes - 1} ({num_classes} classes); "
                    f"got values from {labels.min()} to {labels.max()}"
                )
        present = np.count_nonzero(self.train.labels.sum(axis=0)) if self.train.multi_label else len(
            np.unique(self.train.labels)
        )
        if present < 2:
            raise SaehError("the training labels hold a single class; a retrieval dataset needs at least 2")

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        """(H, W, C) of one image."""
        return self.train.image_shape

    @property
    def multi_label(self):
        return self.train.multi_label


def dataset_names():
    """The `which_data` names `load_dataset` understands (a folder or ``.npz`` path is accepted too)."""
    return DATASET_NAMES


def load_dataset(which_data, data_dir=None, image_size=None, stream="auto", memory_budget=None, log=None,
                 cache_dir=None):
    """Load a dataset by name (case-insensitive) or path; see the module docstring for where each looks.

    `data_dir`: the folder (or, for ``mnist``, the ``.npz`` file) holding the data; required by ``folder`` and
    ``list``; ignored by ``mnist-sample``. `image_size`: (H, W) or one int; images of another size are resized
    (bilinear). An image folder with images of different sizes needs it.

    `stream`: for image folders and list files, True leaves the images in their files (`ImageFiles`, decoded
    batch by batch by the pipelines), False decodes them into memory, "auto" streams when the decoded images would
    take more than `memory_budget` bytes (or text like "8G"; default: `saeh.data.files.memory_budget`). Datasets
    stored as arrays (mnist, mnist-sample, cifar10, svhn, .npz) are always in memory; stream=True is refused for
    them. `log`: a function given one line saying which path was chosen and why (folder and list data only).
    `cache_dir`: streamed images are read from their decoded copy in this folder, written first when missing
    (`saeh.data.cache`).
    """
    image_size = check_image_size(image_size)
    if stream not in STREAM_CHOICES:
        raise SaehError(f"stream must be True, False or 'auto'; got {stream!r}")
    if not isinstance(which_data, (str, os.PathLike)):
        raise SaehError(f"which_data must be a dataset name or a path; got {which_data!r}")
    name = os.fspath(which_data).strip().lower()
    if data_dir is not None and name != "mnist-sample":
        if not isinstance(data_dir, (str, os.PathLike)):
            raise SaehError(f"data_dir must be a path; got {data_dir!r}")
        data_dir = os.fspath(data_dir)
        if not os.path.exists(data_dir):
            raise MissingDataError(f"data_dir {data_dir} does not exist")
    files_options = {"image_size": image_size, "stream": stream, "memory_budget": memory_budget, "log": log,
                     "cache_dir": cache_dir}
    loader = None
    if name in ("folder", "list"):
        if data_dir is None:
            raise SaehError(f"which_data={name!r} needs data_dir (--data-dir): the folder holding the data")
        loader, root = (load_image_folder if name == "folder" else load_list_files), data_dir
    elif name not in ARRAY_DATASET_NAMES and os.path.isdir(which_data):
        root = os.fspath(which_data)
        has_lists = any(os.path.isfile(os.path.join(root, list_name)) for list_name in TRAIN_LIST_NAMES)
        loader = load_list_files if has_lists else load_image_folder
    if loader is not None:
        return loader(root, **files_options)
    if stream is True:
        raise SaehError(f"dataset {os.fspath(which_data)!r} is stored as arrays and is always loaded into memory; "
                        "streaming (--stream on) applies to image folders and list files (folder, list)")
    if name == "mnist-sample":
        data = load_mnist_sample()
    elif name == "mnist":
        data = load_mnist(data_dir)
    elif name == "cifar10":
        data = load_cifar10(data_dir, image_size=image_size)
    elif name == "svhn":
        data = load_svhn(data_dir)
    elif os.path.isfile(which_data) and name.endswith(".npz"):
        data = load_npz(which_data)
    elif not os.path.exists(which_data) and (name.endswith(".npz") or os.sep in name):
        raise MissingDataError(
            f"dataset path {os.fspath(which_data)} does not exist; expected an image folder or a Keras-layout "
            ".npz file"
        )
    else:
        raise SaehError(
            f"unknown dataset {os.fspath(which_data)!r}; expected one of {', '.join(DATASET_NAMES)}, "
            "or the path of an image folder or a Keras-layout .npz file"
        )
    if image_size is not None and data.image_shape[:2] != image_size:
        data = dataclasses.replace(
            data,
            train=ImageSet(resize_images(data.train.images, image_size), data.train.labels),
            test=ImageSet(resize_images(data.test.images, image_size), data.test.labels),
        )
    return data


def keras_datasets_dir():
    """Where Keras caches downloads: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "datasets")


# ----------------------------------------------------------------------------------------------------------------
# MNIST


def load_mnist_sample():
    """The bundled MNIST sample: 5,000 training and 1,000 test images (500 and 100 per digit), 28x28x1.

    Cut from the full MNIST by ``tools/make_mnist_sample.py`` (seeded, stratified); the file also stores each
    image's index in the original release (``train_index``, ``test_index``). MNIST: Y. LeCun, C. Cortes and
    C. J. C. Burges, CC BY-SA 3.0.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), MNIST_SAMPLE_FILE)
    if not os.path.isfile(path):
        raise MissingDataError(
            f"the bundled MNIST sample {path} is missing; reinstall the package (it ships as package data) or "
            "rebuild it with tools/make_mnist_sample.py"
        )
    data = load_npz(path, class_names=MNIST_CLASSES)
    return dataclasses.replace(data, name="mnist-sample")


def load_mnist(data_dir=None):
    """MNIST from ``mnist.npz``: `data_dir` (the folder or the file itself), else the Keras cache, else a Keras
    download (`keras.datasets.mnist.load_data`, imported only then). Offline with no file: MissingDataError."""
    looked = []
    if data_dir is not None:
        candidate = data_dir if os.path.isfile(data_dir) else os.path.join(data_dir, "mnist.npz")
        looked.append(candidate)
        if os.path.isfile(candidate):
            return load_npz(candidate, name="mnist", class_names=MNIST_CLASSES)
    cached = os.path.join(keras_datasets_dir(), "mnist.npz")
    looked.append(cached)
    if os.path.isfile(cached):
        return load_npz(cached, name="mnist", class_names=MNIST_CLASSES)
    (x_train, y_train), (x_test, y_test) = _download_with_keras(
        "mnist", looked, how=f"download {_MNIST_URL} into {os.path.dirname(cached)} or pass its folder as data_dir"
    )
    return _from_arrays("mnist", x_train, y_train, x_test, y_test, MNIST_CLASSES, source="keras.datasets.mnist")


def load_npz(path, name=None, class_names=None):
    """A Keras-layout ``.npz`` (``x_train`` (N, H, W) or (N, H, W, C) uint8, ``y_train``, ``x_test``, ``y_test``).

    Without `class_names` the classes are named ``0`` .. ``max label``.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":  # np.load would take any other bytes for a pickle
            raise SaehError(f"{path} is not a readable .npz file: it is not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _NPZ_KEYS if key not in archive.files]
            if missing:
                raise SaehError(
                    f"{path} lacks the array(s) {', '.join(missing)}; expected {', '.join(_NPZ_KEYS)} "
                    "(the layout of Keras' mnist.npz)"
                )
            arrays = {key: archive[key] for key in _NPZ_KEYS}
    except ValueError as error:
        if isinstance(error, SaehError):
            raise
        raise SaehError(f"{path} holds pickled objects, which are refused for safety") from error
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise SaehError(f"{path} is not a readable .npz file: {error}") from error
    if class_names is None:
        labels = [np.asarray(arrays["y_train"]), np.asarray(arrays["y_test"])]
        if not all(np.issubdtype(array.dtype, np.integer) for array in labels):
            raise SaehError(f"{path}: y_train and y_test must hold integer class ids")
        highest = max(int(array.max()) if array.size else 0 for array in labels)
        class_names = tuple(str(label) for label in range(highest + 1))
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    return _from_arrays(name, *(arrays[key] for key in _NPZ_KEYS), class_names=class_names, source=path)


# ----------------------------------------------------------------------------------------------------------------
# CIFAR-10


def load_cifar10(data_dir=None, image_size=None):
    """CIFAR-10, 32x32x3, classes in the standard order (airplane .. truck).

    Looks, in order, in `data_dir` for the python pickle batches (``data_batch_1`` .. ``data_batch_5``,
    ``test_batch``, directly or under ``cifar-10-batches-py/``) or an image folder (``train/`` and ``test/``
    directly or under ``cifar10/``, each with the ten class folders); then in the Keras cache
    (``cifar-10-batches-py``, or Keras 3's ``cifar-10-batches-py-target/cifar-10-batches-py``); then downloads
    with `keras.datasets.cifar10.load_data`. `image_size` only matters for the image folder form.
    """
    looked = []
    if data_dir is not None:
        for folder in (data_dir, os.path.join(data_dir, "cifar-10-batches-py")):
            looked.append(folder)
            if os.path.isfile(os.path.join(folder, _CIFAR_TRAIN_BATCHES[0])):
                return _load_cifar_batches(folder)
        for root in (data_dir, os.path.join(data_dir, "cifar10")):
            if all(os.path.isdir(os.path.join(root, split)) for split in SPLIT_NAMES):
                data = load_image_folder(root, image_size=image_size, name="cifar10")
                if data.class_names != CIFAR10_CLASSES:
                    raise SaehError(
                        f"{root} holds the classes {', '.join(data.class_names)}; CIFAR-10's are "
                        f"{', '.join(CIFAR10_CLASSES)}. Load other image folders with which_data='folder'"
                    )
                return data
            looked.append(os.path.join(root, "{train,test}/<class>/"))
    cache = keras_datasets_dir()
    for folder in (
        os.path.join(cache, "cifar-10-batches-py"),
        os.path.join(cache, "cifar-10-batches-py-target", "cifar-10-batches-py"),
    ):
        looked.append(folder)
        if os.path.isfile(os.path.join(folder, _CIFAR_TRAIN_BATCHES[0])):
            return _load_cifar_batches(folder)
    (x_train, y_train), (x_test, y_test) = _download_with_keras(
        "cifar10", looked, how=f"download and extract {_CIFAR_URL} and pass the folder as data_dir"
    )
    x_train, x_test = (_channels_last_cifar(x) for x in (x_train, x_test))
    return _from_arrays(
        "cifar10", x_train, y_train, x_test, y_test, CIFAR10_CLASSES, source="keras.datasets.cifar10"
    )


def _channels_last_cifar(images):
    # Keras returns channels-first arrays when its image_data_format says so.
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 3 and images.shape[-1] != 3:
        images = images.transpose(0, 2, 3, 1)
    return images


def _load_cifar_batches(folder):
    expected = _CIFAR_TRAIN_BATCHES + (_CIFAR_TEST_BATCH,)
    missing = [name for name in expected if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise MissingDataError(
            f"{folder} lacks the CIFAR-10 batch file(s) {', '.join(missing)}; expected data_batch_1 .. "
            f"data_batch_5 and test_batch (extract {_CIFAR_URL})"
        )
    train = [_read_cifar_batch(os.path.join(folder, name)) for name in _CIFAR_TRAIN_BATCHES]
    x_test, y_test = _read_cifar_batch(os.path.join(folder, _CIFAR_TEST_BATCH))
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return _from_arrays("cifar10", x_train, y_train, x_test, y_test, CIFAR10_CLASSES, source=folder)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only: a pickle naming any other callable is refused, so a
    planted batch file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how protocol 2 stores Python 3 bytes
    }

    def find_class(self, module, name):
        # Pickles from numpy 1 (and the original Python 2 CIFAR files) name numpy.core, numpy 2's numpy._core.
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return getattr(importlib.import_module(module), name)


def _read_cifar_batch(path):
    """One CIFAR-10 python batch: a pickled dict with b"data" (N, 3072) uint8, each row the R, G and B planes of a
    32x32 image in row-major order, and b"labels" (N,) ints. Returns (N, 32, 32, 3) uint8 and (N,) labels."""
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnlyUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise SaehError(f"{path} is not a readable CIFAR-10 python batch: {error}") from error
    if not isinstance(batch, dict):
        raise SaehError(f"{path} is not a CIFAR-10 python batch: expected a dict, got {type(batch).__name__}")
    values = {(key.decode("latin1") if isinstance(key, bytes) else key): value for key, value in batch.items()}
    if "data" not in values or "labels" not in values:
        raise SaehError(f"{path} lacks the keys b'data' and b'labels' of a CIFAR-10 python batch")
    data = np.asarray(values["data"])
    labels = np.asarray(values["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise SaehError(f"{path}: b'data' must be (N, 3072) uint8; got {describe_array(data)}")
    if labels.shape != (len(data),):
        raise SaehError(f"{path}: b'labels' must hold {len(data)} labels, one per row of b'data'; got {labels.shape}")
    _check_class_ids(labels, len(CIFAR10_CLASSES), path)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# SVHN


def load_svhn(data_dir=None):
    """SVHN cropped digits from ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5 files with X (32, 32, 3, N)
    uint8 and y (N, 1) in 1..10, where 10 stands for the digit 0 and is mapped to 0 here).

    Looks in `data_dir`, ``data_dir/svhn`` and ``<keras cache>/svhn``; there is no automatic download.
    """
    folders = [] if data_dir is None else [data_dir, os.path.join(data_dir, "svhn")]
    folders.append(os.path.join(keras_datasets_dir(), "svhn"))
    for folder in folders:
        if all(os.path.isfile(os.path.join(folder, name)) for name in _SVHN_FILES):
            x_train, y_train = _read_svhn_mat(os.path.join(folder, _SVHN_FILES[0]))
            x_test, y_test = _read_svhn_mat(os.path.join(folder, _SVHN_FILES[1]))
            return _from_arrays("svhn", x_train, y_train, x_test, y_test, SVHN_CLASSES, source=folder)
    raise MissingDataError(
        f"SVHN needs {' and '.join(_SVHN_FILES)}; looked in {', '.join(folders)}. "
        f"Download them from {_SVHN_URL} and pass their folder as data_dir (--data-dir)"
    )


def _read_svhn_mat(path):
    import scipy.io

    try:
        contents = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several unrelated types for a bad file
        raise SaehError(f"{path} is not a readable MATLAB file: {error}") from error
    if "X" not in contents or "y" not in contents:
        raise SaehError(f"{path} lacks the variables X and y of an SVHN cropped-digits file")
    images, labels = np.asarray(contents["X"]), np.asarray(contents["y"])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] != 3:
        raise SaehError(f"{path}: X must be (32, 32, 3, N) uint8; got {describe_array(images)}")
    labels = labels.reshape(-1)
    if len(labels) != images.shape[3]:
        raise SaehError(f"{path}: y has {len(labels)} labels but X has {images.shape[3]} images")
    if labels.size and (
        not np.all(labels == np.round(labels)) or labels.min() < 1 or labels.max() > 10
    ):
        raise SaehError(
            f"{path}: y must hold digits 1..10 (10 stands for 0); got values from {labels.min()} to {labels.max()}"
        )
    labels = labels.astype(np.int64) % 10
    return np.ascontiguousarray(images.transpose(3, 0, 1, 2)), labels


# ----------------------------------------------------------------------------------------------------------------
# Image folders and list files


def load_image_folder(root, image_size=None, name=None, stream=False, memory_budget=None, log=None,
                      cache_dir=None):
    """An image folder ``root/train/<class>/*`` and ``root/test/<class>/*`` (.jpg, .jpeg, .png, any case).

    Classes are the ``train`` sub-folders numbered in alphabetical order (CIFAR-10's folders give its standard
    labels); ``test`` may lack a class but may not add one. Files are read in sorted order. If some images are
    grayscale and others colour, the grayscale ones are converted to RGB with one warning; RGBA and palette images
    become RGB, with one warning when an alpha channel is dropped. Images of different sizes need `image_size`
    (H, W). An unreadable image, an empty class folder or a missing split raises SaehError naming it; nothing is
    skipped silently (files with other extensions are ignored with a warning).

    `stream`, `memory_budget`, `log`, `cache_dir`: as for `load_dataset` (True: the images stay in their files,
    `ImageFiles`).
    """
    root = os.fspath(root)
    image_size = check_image_size(image_size)
    if not os.path.isdir(root):
        raise MissingDataError(f"image folder {root} does not exist")
    class_names = None
    paths_by_split = {}
    labels_by_split = {}
    ignored = []
    for split in SPLIT_NAMES:
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            raise MissingDataError(
                f"image folder {root} has no {split}/ folder; expected {root}/{split}/<class>/*.jpg "
                f"(found: {', '.join(_visible_entries(root)) or 'nothing'})"
            )
        classes = sorted(
            entry for entry in _visible_entries(split_dir) if os.path.isdir(os.path.join(split_dir, entry))
        )
        if not classes:
            raise SaehError(f"{split_dir} holds no class folders; expected {split_dir}/<class>/*.jpg")
        if class_names is None:
            class_names = tuple(classes)
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise SaehError(
                f"class folder(s) {', '.join(os.path.join(split_dir, entry) for entry in unknown)} have no "
                f"counterpart in {os.path.join(root, SPLIT_NAMES[0])}; every class needs training images"
            )
        paths, labels = [], []
        for label, class_name in enumerate(class_names):
            class_dir = os.path.join(split_dir, class_name)
            if not os.path.isdir(class_dir):
                continue
            files = []
            for entry in sorted(_visible_entries(class_dir)):
                full = os.path.join(class_dir, entry)
                if entry.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(full):
                    files.append(full)
                elif os.path.isfile(full):
                    ignored.append(full)
            if not files:
                raise SaehError(
                    f"class folder {class_dir} holds no images; expected files ending in {', '.join(IMAGE_EXTENSIONS)}"
                )
            paths.extend(files)
            labels.extend([label] * len(files))
        paths_by_split[split], labels_by_split[split] = paths, labels
    if ignored:
        warnings.warn(
            f"ignored {len(ignored)} file(s) under {root} that are not {'/'.join(IMAGE_EXTENSIONS)} images, "
            f"e.g. {ignored[0]}",
            stacklevel=2,
        )
    # Decode (or scan) both splits in one go so the channel and size decisions are the same for both.
    all_paths = paths_by_split["train"] + paths_by_split["test"]
    images = _images_of(all_paths, image_size, root, stream, memory_budget, log, cache_dir)
    count = len(paths_by_split["train"])
    train = ImageSet(images[:count], np.asarray(labels_by_split["train"], dtype=np.int64))
    test = ImageSet(images[count:], np.asarray(labels_by_split["test"], dtype=np.int64))
    return _assemble(name or os.path.basename(os.path.normpath(root)), train, test, class_names, root)


def load_list_files(root, image_size=None, name=None, stream=False, memory_budget=None, log=None,
                    cache_dir=None):
    """Images named in list files under `root`: ``train.txt`` (or ``database.txt`` when there is no
    ``train.txt``) and ``test.txt``.

    Each line is ``relative/path label`` (an integer class id) or ``relative/path l_1 ... l_C`` (a multi-hot row of
    0/1, NUS-WIDE/COCO style); paths are relative to `root` and contain no spaces; blank lines and lines starting
    with ``#`` are skipped. An optional ``classes.txt`` (one name per line) names the classes and bounds the ids;
    without it, classes are ``0`` .. ``max id`` (or one per column). Multi-hot rows with no label are allowed: such
    an image is relevant to no query. A malformed line raises SaehError quoting ``file:line``.

    `stream`, `memory_budget`, `log`, `cache_dir`: as for `load_dataset` (True: the images stay in their files,
    `ImageFiles`).
    """
    root = os.fspath(root)
    image_size = check_image_size(image_size)
    if not os.path.isdir(root):
        raise MissingDataError(f"list-file folder {root} does not exist")
    existing = [os.path.join(root, list_name) for list_name in TRAIN_LIST_NAMES]
    train_list = next((path for path in existing if os.path.isfile(path)), None)
    test_list = os.path.join(root, TEST_LIST_NAME)
    if train_list is None or not os.path.isfile(test_list):
        raise MissingDataError(
            f"{root} needs the list files {TEST_LIST_NAME} and {' or '.join(TRAIN_LIST_NAMES)} "
            "(lines 'relative/path label...'); found: " + (", ".join(_visible_entries(root)) or "nothing")
        )
    train_entries = _read_list_file(train_list, root)
    test_entries = _read_list_file(test_list, root)
    widths = {train_entries[2], test_entries[2]}
    if len(widths) > 1:
        raise SaehError(
            f"{train_list} has {train_entries[2]} label column(s) per line but {test_list} has {test_entries[2]}; "
            "both must use the same label format"
        )
    width = widths.pop()
    classes_file = os.path.join(root, CLASSES_FILE_NAME)
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as handle:
            class_names = tuple(line.strip() for line in handle if line.strip())
        if width > 1 and len(class_names) != width:
            raise SaehError(f"{classes_file} names {len(class_names)} classes but the lists have {width} label columns")
    elif width > 1:
        class_names = tuple(str(column) for column in range(width))
    else:
        highest = max(int(labels.max()) for _, labels, _, _ in (train_entries, test_entries))
        class_names = tuple(str(label) for label in range(highest + 1))
    if width == 1:
        for list_file, (_, labels, _, line_numbers) in ((train_list, train_entries), (test_list, test_entries)):
            too_big = np.flatnonzero(labels >= len(class_names))
            if too_big.size:
                first = too_big[0]
                raise SaehError(
                    f"{list_file}:{line_numbers[first]}: label {labels[first]} is out of range; "
                    f"{classes_file} names {len(class_names)} classes (0..{len(class_names) - 1})"
                )
    paths = train_entries[0] + test_entries[0]
    images = _images_of(paths, image_size, root, stream, memory_budget, log, cache_dir)
    count = len(train_entries[0])
    train = ImageSet(images[:count], train_entries[1])
    test = ImageSet(images[count:], test_entries[1])
    return _assemble(name or os.path.basename(os.path.normpath(root)), train, test, class_names, root)


def _read_list_file(list_file, root):
    """Parse one list file → (absolute paths, labels (N,) int64 or (N, C) uint8, label columns, line numbers)."""
    paths, rows, line_numbers = [], [], []
    width = None
    with open(list_file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{list_file}:{line_number}"
            tokens = text.split()
            if len(tokens) < 2:
                raise SaehError(f"{where}: expected 'relative/path label...'; got {text!r}")
            try:
                values = [int(token) for token in tokens[1:]]
            except ValueError:
                raise SaehError(f"{where}: labels must be integers; got {' '.join(tokens[1:])!r}") from None
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise SaehError(f"{where}: {len(values)} label(s) but earlier lines have {width}")
            if width == 1 and values[0] < 0:
                raise SaehError(f"{where}: class ids must be non-negative; got {values[0]}")
            if width > 1 and any(value not in (0, 1) for value in values):
                raise SaehError(f"{where}: a multi-hot row must hold only 0 and 1; got {' '.join(tokens[1:])!r}")
            path = os.path.join(root, tokens[0])
            if not os.path.isfile(path):
                raise MissingDataError(f"{where}: image {path} does not exist")
            paths.append(path)
            rows.append(values)
            line_numbers.append(line_number)
    if not paths:
        raise SaehError(f"{list_file} lists no images; expected lines 'relative/path label...'")
    labels = np.asarray(rows, dtype=np.int64)
    labels = labels[:, 0] if width == 1 else labels.astype(np.uint8)
    return paths, labels, width, line_numbers


def _images_of(paths, image_size, source, stream, memory_budget, log, cache_dir=None):
    """The images of `paths`: decoded into memory, or scanned into `ImageFiles` when `stream` is True, or "auto"
    and the decoded images would exceed the memory budget; streamed ones are read from `cache_dir` if given."""
    if stream not in STREAM_CHOICES:
        raise SaehError(f"stream must be True, False or 'auto'; got {stream!r}")
    if stream == "auto":
        budget = _memory_budget(memory_budget)
        needed = decoded_bytes(len(paths), paths[0], image_size) if paths else 0
        stream = needed > budget
        why = (f"decoded, {len(paths)} images would take {format_bytes(needed)}, "
               f"{'over' if stream else 'within'} the memory budget of {format_bytes(budget)}")
    else:
        why = "as asked (stream " + ("on" if stream else "off") + ")"
    if log is not None:
        log(f"{source}: " + ("streaming the images from their files" if stream else "decoding the images into memory")
            + f": {why}")
    if stream:
        files = scan_image_files(paths, image_size=image_size, source=source)
        return files if cache_dir is None else cached_images(files, cache_dir, log)
    if cache_dir is not None and log is not None:
        log(f"{source}: the cache folder {cache_dir} is not used: it holds streamed images")
    return decode_images(paths, image_size=image_size, source=source)


def decode_images(paths, image_size=None, source=None):
    """Decode image files into one (N, H, W, C) uint8 array, in the order given.

    C = 1 when every image is grayscale, else 3 (grayscale ones are converted to RGB with one warning naming how
    many). `image_size` (H, W) resizes (bilinear) every image of another size; without it all images must share
    one size. Any unreadable file raises SaehError naming it. Large images are decoded in a thread pool.
    """
    image_size = check_image_size(image_size)
    if not paths:
        raise SaehError(f"no images to decode under {source}")
    chunks = [paths[start : start + _DECODE_CHUNK] for start in range(0, len(paths), _DECODE_CHUNK)]
    workers = _decode_workers(paths)
    if workers > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
            results = executor.map(lambda chunk: _decode_chunk(chunk, image_size), chunks)
            decoded_with_alpha = [item for chunk in results for item in chunk]
    else:
        decoded_with_alpha = [item for chunk in chunks for item in _decode_chunk(chunk, image_size)]
    decoded = [array for array, _ in decoded_with_alpha]
    warn_alpha_dropped([index for index, (_, had_alpha) in enumerate(decoded_with_alpha) if had_alpha], paths,
                       source)
    sizes = {array.shape[:2] for array in decoded}
    if len(sizes) > 1:
        first_shape = decoded[0].shape[:2]
        other = next(index for index, array in enumerate(decoded) if array.shape[:2] != first_shape)
        raise SaehError(
            f"images under {source} have {len(sizes)} different sizes ({paths[0]} is {first_shape[0]}x"
            f"{first_shape[1]}, {paths[other]} is {decoded[other].shape[0]}x{decoded[other].shape[1]}); "
            "pass image_size=(H, W) (--image-size) to resize them all"
        )
    height, width = sizes.pop()
    channels = channels_of([index for index, array in enumerate(decoded) if array.ndim == 2], paths, source)
    images = np.empty((len(decoded), height, width, channels), dtype=np.uint8)
    for index, array in enumerate(decoded):
        # A 2-D grayscale array broadcasts into every channel, which is exactly PIL's L → RGB conversion.
        images[index] = array[..., None] if array.ndim == 2 else array
    return images


def resize_images(images, image_size):
    """Resize (N, H, W, C) uint8 images to `image_size` (H, W) with PIL's bilinear filter."""
    from PIL import Image

    height, width = check_image_size(image_size)
    resized = np.empty((len(images), height, width, images.shape[-1]), dtype=np.uint8)
    for index, image in enumerate(images):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        result = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
        resized[index] = result[..., None] if result.ndim == 2 else result
    return resized


def _decode_workers(paths):
    if len(paths) < 2 * _DECODE_CHUNK:
        return 1
    cpus = usable_cpus()
    if cpus < 2:
        return 1
    sample = paths[:: max(1, len(paths) // 32)][:32]
    mean_bytes = sum(os.path.getsize(path) for path in sample) / len(sample)
    return min(8, cpus) if mean_bytes >= _THREADED_DECODE_MIN_BYTES else 1


def _decode_chunk(paths, image_size):
    return [decode_image(path, image_size) for path in paths]


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers


def _keras_load_data(module_name):
    """`keras.datasets.<module_name>.load_data()`, importing Keras only here (it is slow to import)."""
    import keras

    return getattr(keras.datasets, module_name).load_data()


def _download_with_keras(module_name, looked, how):
    try:
        return _keras_load_data(module_name)
    except Exception as error:  # offline, the download fails with one of many exception types
        raise MissingDataError(
            f"{module_name} not found (looked in {', '.join(looked)}) and keras.datasets.{module_name}.load_data() "
            f"could not download it ({type(error).__name__}: {error}); {how}"
        ) from error


def _from_arrays(name, x_train, y_train, x_test, y_test, class_names, source):
    """Build LabelledData from Keras-style arrays, checking dtype, shape and label range, naming `source`."""
    sets = []
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim == 3:
            images = images[..., None]
        if images.dtype != np.uint8:
            raise SaehError(f"{source}: x_{split} must be uint8 images; got {describe_array(images)}")
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise SaehError(
                f"{source}: x_{split} must be (N, H, W) or (N, H, W, 1 or 3); got shape {images.shape}"
            )
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.shape != (len(images),):
            raise SaehError(
                f"{source}: y_{split} must hold one class id per image ({len(images)}); got shape {labels.shape}"
            )
        _check_class_ids(labels, len(class_names), f"{source} (y_{split})")
        sets.append(ImageSet(images, labels.astype(np.int64)))
    return _assemble(name, sets[0], sets[1], class_names, source)


def _check_class_ids(labels, num_classes, where):
    if labels.size == 0:
        return
    if not np.issubdtype(labels.dtype, np.integer):
        raise SaehError(f"{where}: labels must be integer class ids; got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise SaehError(
            f"{where}: labels must lie in 0..{num_classes - 1}; got values from {labels.min()} to {labels.max()}"
        )


def _assemble(name, train, test, class_names, source):
    try:
        return LabelledData(name=name, train=train, test=test, class_names=tuple(class_names), source=source)
    except SaehError as error:
        raise SaehError(f"{source}: {error}") from error


def _visible_entries(folder):
    return [entry for entry in os.listdir(folder) if not entry.startswith(".")]
