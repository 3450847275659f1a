"""What the sources stored as arrays share: Keras-layout arrays checked into `LabelledData`, the Keras-layout
``.npz`` reader (also what a ``.npz`` path given as `which_data` loads), and Keras' dataset cache and download.
"""

import os
import zipfile

import numpy as np

from saeh.data.files import describe_array
from saeh.data.types import ImageSet, labelled_data
from saeh.errors import MissingDataError, SaehError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def keras_datasets_dir():
    """Where Keras caches downloads: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "datasets")


def keras_load_data(module_name):
    """`keras.datasets.<module_name>.load_data()`, importing Keras only here (it is slow to import)."""
    import keras

    return getattr(keras.datasets, module_name).load_data()


def download_with_keras(module_name, looked, how):
    """`keras_load_data(module_name)`, or MissingDataError naming where the files were `looked` for and `how` to
    get them when the download fails."""
    try:
        return keras_load_data(module_name)
    except Exception as error:  # offline, the download fails with one of many exception types
        raise MissingDataError(
            f"{module_name} not found (looked in {', '.join(looked)}) and keras.datasets.{module_name}.load_data() "
            f"could not download it ({type(error).__name__}: {error}); {how}"
        ) from error


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
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise SaehError(
                    f"{path} lacks the array(s) {', '.join(missing)}; expected {', '.join(NPZ_KEYS)} "
                    "(the layout of Keras' mnist.npz)"
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
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
    return from_arrays(name, *(arrays[key] for key in NPZ_KEYS), class_names=class_names, source=path)


def from_arrays(name, x_train, y_train, x_test, y_test, class_names, source):
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
        check_class_ids(labels, len(class_names), f"{source} (y_{split})")
        sets.append(ImageSet(images, labels.astype(np.int64)))
    return labelled_data(name, sets[0], sets[1], class_names, source)


def check_class_ids(labels, num_classes, where):
    """SaehError naming `where` unless `labels` are integers in [0, num_classes)."""
    if labels.size == 0:
        return
    if not np.issubdtype(labels.dtype, np.integer):
        raise SaehError(f"{where}: labels must be integer class ids; got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise SaehError(
            f"{where}: labels must lie in 0..{num_classes - 1}; got values from {labels.min()} to {labels.max()}"
        )
