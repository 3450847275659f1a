"""MNIST: the 5,000/1,000 sample bundled in the package (``mnist-sample``, always offline) and the full set
(``mnist``: ``mnist.npz`` in Keras' layout in `data_dir`, else the Keras cache, else a Keras download).
"""

import dataclasses
import os

from saeh.data.sources import register_source
from saeh.data.sources.arrays import download_with_keras, from_arrays, keras_datasets_dir, load_npz
from saeh.errors import MissingDataError

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
MNIST_SAMPLE_FILE = "mnist_sample.npz"  # beside the saeh.data package's modules (package data)
_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


@register_source("mnist-sample", rank=10)
def load_mnist_sample():
    """The bundled MNIST sample: 5,000 training and 1,000 test images (500 and 100 per digit), 28x28x1.

    Cut from the full MNIST by ``tools/make_mnist_sample.py`` (seeded, stratified); the file also stores each
    image's index in the original release (``train_index``, ``test_index``). MNIST: Y. LeCun, C. Cortes and
    C. J. C. Burges, CC BY-SA 3.0.
    """
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), MNIST_SAMPLE_FILE)
    if not os.path.isfile(path):
        raise MissingDataError(
            f"the bundled MNIST sample {path} is missing; reinstall the package (it ships as package data) or "
            "rebuild it with tools/make_mnist_sample.py"
        )
    data = load_npz(path, class_names=MNIST_CLASSES)
    return dataclasses.replace(data, name="mnist-sample")


@register_source("mnist", rank=20, takes=("data_dir",))
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
    (x_train, y_train), (x_test, y_test) = download_with_keras(
        "mnist", looked, how=f"download {_MNIST_URL} (a Keras-layout .npz: x_train, y_train, x_test, y_test) and "
        f"pass the file or its folder as data_dir (--data-dir), or put it in {os.path.dirname(cached)}"
    )
    return from_arrays("mnist", x_train, y_train, x_test, y_test, MNIST_CLASSES, source="keras.datasets.mnist")
