"""Datasets in memory or left in their files (`load_dataset`) and named, seeded retrieval protocols (`make_split`).

Pure numpy/scipy/PIL: importing this package never imports TensorFlow.
"""

from saeh.data.decoding import decode_images, resize_images
from saeh.data.files import ImageFiles, concatenate_images, memory_budget, scan_image_files
from saeh.data.load import dataset_names, load_dataset
from saeh.data.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, Split, make_split, protocol_names
from saeh.data.sources.arrays import keras_datasets_dir, load_npz
from saeh.data.sources.cifar10 import CIFAR10_CLASSES, load_cifar10
from saeh.data.sources.folder import IMAGE_EXTENSIONS, load_image_folder
from saeh.data.sources.lists import load_list_files
from saeh.data.sources.mnist import MNIST_CLASSES, load_mnist, load_mnist_sample
from saeh.data.sources.svhn import load_svhn
from saeh.data.types import ImageSet, LabelledData

__all__ = [
    "CIFAR10_CLASSES",
    "DEFAULT_PROTOCOL",
    "IMAGE_EXTENSIONS",
    "MNIST_CLASSES",
    "PROTOCOL_NAMES",
    "ImageFiles",
    "ImageSet",
    "LabelledData",
    "Split",
    "concatenate_images",
    "dataset_names",
    "decode_images",
    "keras_datasets_dir",
    "load_cifar10",
    "load_dataset",
    "load_image_folder",
    "load_list_files",
    "load_mnist",
    "load_mnist_sample",
    "load_npz",
    "load_svhn",
    "make_split",
    "memory_budget",
    "protocol_names",
    "resize_images",
    "scan_image_files",
]
