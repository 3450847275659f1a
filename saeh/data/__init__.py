"""Datasets in memory or left in their files (`load_dataset`) and named, seeded retrieval protocols (`make_split`).

Pure numpy/scipy/PIL: importing this package never imports TensorFlow.
"""

from saeh.data.files import ImageFiles, concatenate_images, memory_budget, scan_image_files
from saeh.data.loaders import (
    CIFAR10_CLASSES,
    DATASET_NAMES,
    IMAGE_EXTENSIONS,
    MNIST_CLASSES,
    ImageSet,
    LabelledData,
    dataset_names,
    decode_images,
    keras_datasets_dir,
    load_cifar10,
    load_dataset,
    load_image_folder,
    load_list_files,
    load_mnist,
    load_mnist_sample,
    load_npz,
    load_svhn,
    resize_images,
)
from saeh.data.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, Split, make_split, protocol_names

__all__ = [
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
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
