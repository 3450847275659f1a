"""`load_dataset`: a `which_data` name or path to `LabelledData`, through the registry of sources
(`saeh.data.sources`, one module per source, each saying where it looks).

A registered name picks its source. A path may stand in for a name: a folder (list files inside → the list source,
else the image-folder source) or a Keras-layout ``.npz`` file.
"""

import dataclasses
import difflib
import os

from saeh.data import sources
from saeh.data.decoding import check_image_size, resize_images
from saeh.data.sources.arrays import load_npz
from saeh.data.sources.folder import load_image_folder
from saeh.data.sources.image_files import STREAM_CHOICES
from saeh.data.sources.lists import TRAIN_LIST_NAMES, load_list_files
from saeh.data.types import ImageSet
from saeh.errors import MissingDataError, SaehError


def dataset_names():
    """The `which_data` names `load_dataset` understands (a folder or ``.npz`` path is accepted too)."""
    return sources.names()


def load_dataset(which_data, data_dir=None, image_size=None, stream="auto", memory_budget=None, log=None,
                 cache_dir=None):
    """Load a dataset by name (case-insensitive) or path; see the modules of `saeh.data.sources` for where each
    source looks.

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
    source = sources.find(name)
    if data_dir is not None and (source is None or "data_dir" in source.takes):
        if not isinstance(data_dir, (str, os.PathLike)):
            raise SaehError(f"data_dir must be a path; got {data_dir!r}")
        data_dir = os.fspath(data_dir)
        if not os.path.exists(data_dir):
            raise MissingDataError(f"data_dir {data_dir} does not exist")
    if source is not None and source.data_kind != "images" and image_size is not None:
        raise SaehError(f"image_size (--image-size) resizes images; the {name!r} source holds {source.data_kind}")
    if source is not None and source.needs_data_dir and data_dir is None:
        raise SaehError(f"which_data={name!r} needs data_dir (--data-dir): the folder holding the data")
    arguments = {"data_dir": data_dir, "image_size": image_size, "stream": stream, "memory_budget": memory_budget,
                 "log": log, "cache_dir": cache_dir}
    if source is not None and source.streams:
        return source.load_with(arguments)
    if source is None and os.path.isdir(which_data):
        root = os.fspath(which_data)
        has_lists = any(os.path.isfile(os.path.join(root, list_name)) for list_name in TRAIN_LIST_NAMES)
        loader = load_list_files if has_lists else load_image_folder
        return loader(root, **{key: value for key, value in arguments.items() if key != "data_dir"})
    if stream is True:
        streaming = ", ".join(each.name for each in sources.registered() if each.streams)
        raise SaehError(f"dataset {os.fspath(which_data)!r} is stored as arrays and is always loaded into memory; "
                        f"streaming (--stream on) applies to image folders and list files ({streaming})")
    if source is not None:
        data = source.load_with(arguments)
    elif os.path.isfile(which_data) and name.endswith(".npz"):
        data = load_npz(which_data)
    elif not os.path.exists(which_data) and (name.endswith(".npz") or os.sep in name):
        raise MissingDataError(
            f"dataset path {os.fspath(which_data)} does not exist; expected an image folder or a Keras-layout "
            ".npz file"
        )
    else:
        close = difflib.get_close_matches(name, sources.names(), n=1, cutoff=0.6)
        raise SaehError(
            f"unknown dataset {os.fspath(which_data)!r}" + (f" (did you mean {close[0]}?)" if close else "")
            + f"; expected one of {', '.join(sources.names())}, or the path of an image folder or a Keras-layout "
            ".npz file"
        )
    if image_size is not None and data.image_shape[:2] != image_size:
        data = dataclasses.replace(
            data,
            train=ImageSet(resize_images(data.train.images, image_size), data.train.labels, data.train.paths),
            test=ImageSet(resize_images(data.test.images, image_size), data.test.labels, data.test.paths),
        )
    return data
