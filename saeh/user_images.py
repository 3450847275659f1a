"""A user's own images, made ready for a model: image arrays, image files and folders (flat, or one sub-folder per
class) as uint8 images of the model's input shape, with their files and labels where known."""

import dataclasses
import os

import numpy as np

from saeh.errors import MissingDataError, SaehError

# Images decoded and encoded at a time: bounds memory whatever the folder's size, and a multiple of the encoder's
# batch size, so that every batch (and so each code) is the one encoding all at once would give.
DECODE_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class ImageListing:
    """Image files in a fixed order: `paths` (N,) str; `labels` (N,) int64 class ids and `class_names` when the files
    sit in one sub-folder per class, else None."""

    paths: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple | None = None

    def __len__(self):
        return len(self.paths)


def _image_files(folder):
    from saeh.data import IMAGE_EXTENSIONS

    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def list_folder(folder):
    """The images of `folder`: its image files (.jpg, .jpeg, .png; sorted by name), without labels; or, when it holds
    sub-folders of images and no images of its own, each sub-folder a class (classes numbered in alphabetical
    order, files sorted), as an `ImageListing`."""
    from saeh.data import IMAGE_EXTENSIONS

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise MissingDataError(f"image folder {folder} does not exist")
    flat = _image_files(folder)
    classes = sorted(name for name in os.listdir(folder)
                     if not name.startswith(".") and os.path.isdir(os.path.join(folder, name)))
    if flat or not classes:
        if not flat:
            raise SaehError(f"image folder {folder} holds no images; expected files ending in "
                            f"{', '.join(IMAGE_EXTENSIONS)}, or one sub-folder of them per class")
        return ImageListing(np.asarray(flat, dtype=str))
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = _image_files(os.path.join(folder, name))
        if not files:
            raise SaehError(f"class folder {os.path.join(folder, name)} holds no images; expected files ending in "
                            f"{', '.join(IMAGE_EXTENSIONS)}")
        paths += files
        labels += [label] * len(files)
    return ImageListing(np.asarray(paths, dtype=str), np.asarray(labels, dtype=np.int64), tuple(classes))


def listing_of(source):
    """An `ImageListing` of a folder, one image file or a list (or string array) of image files; None for anything
    else (an array of pixels)."""
    if isinstance(source, np.ndarray) and source.dtype.kind == "U":
        source = source.tolist()
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            return list_folder(source)
        if not os.path.isfile(source):
            raise MissingDataError(f"image {os.fspath(source)} does not exist; expected an image file or a folder")
        return ImageListing(np.asarray([os.fspath(source)], dtype=str))
    if isinstance(source, (list, tuple)) and source and all(isinstance(item, (str, os.PathLike)) for item in source):
        missing = [os.fspath(item) for item in source if not os.path.isfile(item)]
        if missing:
            raise MissingDataError(f"image file {missing[0]} does not exist ({len(missing)} of {len(source)} missing)")
        return ImageListing(np.asarray([os.fspath(item) for item in source], dtype=str))
    return None


def fit_to(images, shape):
    """(N, H, W, C) uint8 `images` converted to `shape` (H, W, C): colour to gray (the channels' mean, truncated) or
    gray to colour (repeated), then resized (bilinear) when their size differs."""
    from saeh.data import resize_images

    if images.shape[-1] != shape[-1]:
        images = (images.mean(axis=-1, keepdims=True).astype(np.uint8) if shape[-1] == 1
                  else np.repeat(images, shape[-1], axis=-1))
    if tuple(images.shape[1:3]) != tuple(shape[:2]):
        images = resize_images(images, shape[:2])
    return images


def read_images(paths, shape):
    """Decode image files into (N, H, W, C) uint8 of `shape` (H, W, C), each at its own size first, then converted and
    resized as `fit_to` says (so photos of any sizes mix)."""
    from saeh.data.decoding import decode_image

    images = np.empty((len(paths), *shape), np.uint8)
    for row, path in enumerate(paths):
        image, _ = decode_image(os.fspath(path))
        images[row] = fit_to(image.reshape(1, *image.shape[:2], -1), shape)[0]
    return images


def image_array(images, shape):
    """An array of images as the model's uint8 input `shape` (H, W, C): uint8 pixels (N, H, W, C), (N, H, W) for
    gray, or one image (H, W, C); floats are taken as pixels scaled to [0, 1], as the model sees them."""
    array = np.asarray(images)
    if array.ndim == 3 and (tuple(array.shape) == tuple(shape) or array.shape[-1] == 3):
        array = array[None]  # one image
    elif array.ndim == 3:
        array = array[..., None]  # (N, H, W) gray images
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) == 0:
        raise SaehError(f"images must be an array (N, H, W, C) with C = 1 or 3, or (N, H, W); got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any() or array.min() < 0 or array.max() > 1:
            raise SaehError("float images must hold pixels scaled to [0, 1]; pass pixels of 0-255 as uint8")
        array = np.rint(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise SaehError(f"images must be uint8 pixels or floats in [0, 1]; got dtype {array.dtype}")
    return fit_to(array, shape)
