"""SVHN cropped digits (``svhn``): ``train_32x32.mat`` and ``test_32x32.mat`` in `data_dir` or
``<keras cache>/svhn``; no automatic download.
"""

import os

import numpy as np

from saeh.data.files import describe_array
from saeh.data.sources import register_source
from saeh.data.sources.arrays import from_arrays, keras_datasets_dir
from saeh.data.sources.mnist import MNIST_CLASSES
from saeh.errors import MissingDataError, SaehError

SVHN_CLASSES = MNIST_CLASSES  # after mapping SVHN's label 10 to digit 0
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


@register_source("svhn", rank=40, takes=("data_dir",))
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
            return from_arrays("svhn", x_train, y_train, x_test, y_test, SVHN_CLASSES, source=folder)
    raise MissingDataError(
        f"SVHN needs {' and '.join(_SVHN_FILES)} (the cropped-digits format; no automatic download); looked in "
        f"{', '.join(folders)}. Download them from {_SVHN_URL} and put them in data_dir (--data-dir), directly or "
        "under svhn/, or in the Keras cache's svhn/"
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
