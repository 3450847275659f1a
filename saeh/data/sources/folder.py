"""Image folders (``folder``): ``data_dir/{train,test}/<class>/*.{jpg,jpeg,png}``, one sub-folder per class."""

import os
import warnings

import numpy as np

from saeh.data.sources import LOAD_ARGUMENTS, register_source
from saeh.data.sources.image_files import checked_root, labelled_images, visible_entries
from saeh.errors import MissingDataError, SaehError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLIT_NAMES = ("train", "test")


@register_source("folder", rank=50, takes=LOAD_ARGUMENTS, needs_data_dir=True)
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
    root, image_size = checked_root(root, image_size, "image folder")
    class_names = None
    paths_by_split = {}
    labels_by_split = {}
    ignored = []
    for split in SPLIT_NAMES:
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            raise MissingDataError(
                f"image folder {root} has no {split}/ folder; expected {root}/{split}/<class>/*.jpg "
                f"(found: {', '.join(visible_entries(root)) or 'nothing'})"
            )
        classes = sorted(
            entry for entry in visible_entries(split_dir) if os.path.isdir(os.path.join(split_dir, entry))
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
            for entry in sorted(visible_entries(class_dir)):
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
    train, test = ((paths_by_split[split], np.asarray(labels_by_split[split], dtype=np.int64)) for split in SPLIT_NAMES)
    return labelled_images(root, name, train, test, class_names, image_size, stream, memory_budget, log, cache_dir)
