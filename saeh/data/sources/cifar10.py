"""CIFAR-10 (``cifar10``): the python pickle batches or an image folder in `data_dir`, else the Keras cache, else a
Keras download; 32x32x3, classes in the standard order (airplane .. truck).
"""

import importlib
import os
import pickle

import numpy as np

from saeh.data.files import describe_array
from saeh.data.sources import register_source
from saeh.data.sources.arrays import check_class_ids, download_with_keras, from_arrays, keras_datasets_dir
from saeh.data.sources.folder import SPLIT_NAMES, load_image_folder
from saeh.errors import MissingDataError, SaehError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@register_source("cifar10", rank=30, takes=("data_dir", "image_size"))
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
    (x_train, y_train), (x_test, y_test) = download_with_keras(
        "cifar10", looked, how=f"any one of these layouts works as data_dir (--data-dir): the pickle batches "
        f"data_batch_1 .. data_batch_5 and test_batch, directly or under cifar-10-batches-py/ (what the tarball "
        f"{_CIFAR_URL} extracts to: extract it there); or an image folder, train/<class>/*.jpg and "
        f"test/<class>/*.jpg (.jpeg, .png too; directly or under cifar10/) with the ten class folders "
        f"{', '.join(CIFAR10_CLASSES)}"
    )
    x_train, x_test = (_channels_last_cifar(x) for x in (x_train, x_test))
    return from_arrays(
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
    return from_arrays("cifar10", x_train, y_train, x_test, y_test, CIFAR10_CLASSES, source=folder)


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
    check_class_ids(labels, len(CIFAR10_CLASSES), path)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)
