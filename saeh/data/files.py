"""Images left in their files: `ImageFiles`, a uint8 image array (N, H, W, C) decoded on demand, for datasets larger
than memory, scanned from the files' headers; and the memory budget that decides between the two paths.

An `ImageFiles` behaves like the in-memory array where the protocols and pipelines touch it: `len`, `shape`,
`images[rows]` (another `ImageFiles`), `images[i]` (one decoded image). `saeh.data.pipeline` decodes its batches
in tf.data; nothing here imports TensorFlow.
"""

import dataclasses
import os
import re

import numpy as np

from saeh import validation
from saeh.data.decoding import (
    channels_of,
    check_image_size,
    decode_image,
    image_header,
    is_gray_mode,
    warn_alpha_dropped,
)
from saeh.errors import SaehError

MEMORY_BUDGET_ENV = "SAEH_MEMORY_BUDGET"
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclasses.dataclass(frozen=True, eq=False)
class ImageFiles:
    """A uint8 image array (N, H, W, C) whose rows are decoded from `paths` when read.

    `resize`: decode with resizing to (height, width), as the in-memory loaders do when given an image size;
    otherwise every file must already be height x width. `channels` 1 keeps grayscale files gray; 3 turns
    grayscale files into RGB (the in-memory loaders' rule when some images are in colour).

    `cache_file`, `cache_rows`: the images already decoded, rows `cache_rows` of a raw uint8 file of (H, W, C)
    images (`saeh.data.cache`): read from there instead of decoding the files.
    """

    paths: np.ndarray
    height: int
    width: int
    channels: int
    resize: bool = False
    cache_file: str = None
    cache_rows: np.ndarray = None

    def __post_init__(self):
        paths = np.asarray(self.paths, dtype=str)
        if paths.ndim != 1:
            raise SaehError(f"paths must be a 1-D list of file names; got shape {paths.shape}")
        if self.channels not in (1, 3):
            raise SaehError(f"channels must be 1 or 3; got {self.channels!r}")
        for name in ("height", "width"):
            validation.positive_int(getattr(self, name), name)
        object.__setattr__(self, "paths", paths)
        if (self.cache_file is None) != (self.cache_rows is None):
            raise SaehError("cache_file and cache_rows go together: give both or neither")
        if self.cache_rows is not None:
            cache_rows = np.asarray(self.cache_rows, dtype=np.int64)
            if cache_rows.shape != paths.shape:
                raise SaehError(f"cache_rows must have one row per path ({len(paths)}); got shape {cache_rows.shape}")
            object.__setattr__(self, "cache_rows", cache_rows)

    @property
    def shape(self):
        return (len(self.paths), int(self.height), int(self.width), int(self.channels))

    @property
    def dtype(self):
        return np.dtype(np.uint8)

    @property
    def ndim(self):
        return 4

    @property
    def nbytes(self):
        """Bytes the decoded array would take."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, rows):
        """An int gives one decoded image (H, W, C); a slice, an integer array or a boolean mask gives the
        `ImageFiles` of those rows."""
        if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
            if self.cache_file is not None:
                return self._cached(self.cache_rows[[rows]])[0]
            return self._decode_path(self.paths[rows])
        if not isinstance(rows, slice):
            rows = np.asarray(rows)
            if rows.dtype != np.bool_ and not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
                raise SaehError(f"ImageFiles rows must be an int, a slice, integers or a boolean mask; got "
                                f"{describe_array(rows)}")
            if rows.size == 0:
                rows = rows.astype(np.int64)
        cache_rows = None if self.cache_rows is None else self.cache_rows[rows]
        return dataclasses.replace(self, paths=self.paths[rows], cache_rows=cache_rows)

    def decode(self, rows=None):
        """The decoded images (uint8 (len(rows), H, W, C)) of `rows` (default: all), in that order."""
        if self.cache_file is not None:
            return self._cached(self.cache_rows if rows is None else self.cache_rows[np.asarray(rows)])
        paths = self.paths if rows is None else self.paths[np.asarray(rows)]
        images = np.empty((len(paths), *self.shape[1:]), np.uint8)
        for index, path in enumerate(paths):
            images[index] = self._decode_path(path)
        return images

    def _cached(self, cache_rows):
        """Rows `cache_rows` of the cache file; the memory map lasts only this call (no open file is kept)."""
        image_bytes = int(np.prod(self.shape[1:]))
        size = os.path.getsize(self.cache_file)
        if size % image_bytes or (len(cache_rows) and cache_rows.max() >= size // image_bytes):
            raise SaehError(f"cache file {self.cache_file} ({size} bytes) does not hold these {self.shape[1:]} "
                            "images (was it changed since it was written?); delete it to rebuild it")
        if not len(cache_rows):
            return np.empty((0, *self.shape[1:]), np.uint8)
        stored = np.memmap(self.cache_file, np.uint8, "r", shape=(size // image_bytes, *self.shape[1:]))
        return np.array(stored[cache_rows])

    def __array__(self, dtype=None, copy=None):
        images = self.decode()
        return images if dtype is None else images.astype(dtype)

    def _decode_path(self, path):
        path = str(path)
        array, _ = decode_image(path, (self.height, self.width) if self.resize else None)
        if array.shape[:2] != (self.height, self.width):
            raise SaehError(f"image {path} is {array.shape[0]}x{array.shape[1]}, but this set's images are "
                            f"{self.height}x{self.width} (did the file change since it was scanned?)")
        if array.ndim == 2:
            array = array[..., None]  # broadcasts into 3 channels below, which is PIL's L → RGB conversion
        elif self.channels == 1:
            raise SaehError(f"image {path} is in colour, but this set was scanned as grayscale")
        image = np.empty((self.height, self.width, self.channels), np.uint8)
        image[...] = array
        return image


def concatenate_images(first, second):
    """Rows of `first` then `second`: two uint8 arrays, or two `ImageFiles` of the same (H, W, C)."""
    if isinstance(first, ImageFiles) and isinstance(second, ImageFiles):
        if first.shape[1:] != second.shape[1:] or first.resize != second.resize:
            raise SaehError(f"cannot concatenate image files of shape {first.shape[1:]} and {second.shape[1:]}")
        paths = np.concatenate([first.paths, second.paths])
        if first.cache_file is not None and first.cache_file == second.cache_file:
            return dataclasses.replace(first, paths=paths, cache_rows=np.concatenate([first.cache_rows,
                                                                                     second.cache_rows]))
        return dataclasses.replace(first, paths=paths, cache_file=None, cache_rows=None)  # decoded from the files
    if isinstance(first, ImageFiles) or isinstance(second, ImageFiles):
        raise SaehError("cannot concatenate images in files with images in memory; load both the same way")
    return np.concatenate([first, second])


def scan_image_files(paths, image_size=None, source=None):
    """`ImageFiles` over `paths` from their headers alone (no pixels decoded), with the in-memory loaders' rules.

    Every file must open as an image (else SaehError naming it). Without `image_size` all must share one size;
    with it, every image is resized to it when decoded. Channels: 1 when every image is grayscale, else 3 (with
    one warning naming how many grayscale images become RGB); one warning when alpha channels will be dropped.
    """
    image_size = check_image_size(image_size)
    paths = [os.fspath(path) for path in paths]
    if not paths:
        raise SaehError(f"no images to scan under {source}")
    sizes, gray, with_alpha = {}, [], []
    for index, path in enumerate(paths):
        size, mode, had_alpha = image_header(path)
        sizes.setdefault(size, index)
        if is_gray_mode(mode):
            gray.append(index)
        if had_alpha:
            with_alpha.append(index)
    if image_size is None and len(sizes) > 1:
        (first_size, _), (other_size, other) = list(sizes.items())[:2]
        raise SaehError(
            f"images under {source} have {len(sizes)} different sizes ({paths[0]} is {first_size[1]}x"
            f"{first_size[0]}, {paths[other]} is {other_size[1]}x{other_size[0]}); "
            "pass image_size=(H, W) (--image-size) to resize them all"
        )
    warn_alpha_dropped(with_alpha, paths, source)
    channels = channels_of(gray, paths, source)
    if image_size is None:
        width, height = next(iter(sizes))
        return ImageFiles(np.asarray(paths), height, width, channels)
    return ImageFiles(np.asarray(paths), image_size[0], image_size[1], channels, resize=True)


def decoded_bytes(count, path, image_size=None):
    """The bytes `count` images like the one at `path` take decoded (uint8), resized to `image_size` if given."""
    (width, height), mode, _ = image_header(path)
    if image_size is not None:
        height, width = check_image_size(image_size)
    channels = 1 if is_gray_mode(mode) else 3
    return count * height * width * channels


def parse_size(text, what="a memory size"):
    """Bytes from an int or text like "8G", "512M", "1K", "1048576" (binary units; a trailing B is allowed)."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = int(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), flags=re.IGNORECASE)
        if not match:
            raise SaehError(f"{what} must be a number of bytes or like 8G, 512M, 64K; got {text!r}")
        value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
    if value <= 0:
        raise SaehError(f"{what} must be positive; got {text!r}")
    return value


def format_bytes(count):
    """A byte count for people: 1.5 GiB, 12.0 MiB, 3.2 KiB, 100 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def memory_budget(budget=None):
    """Bytes a decoded dataset may take in memory: `budget` (bytes or text like "8G") if given, else
    $SAEH_MEMORY_BUDGET, else half of the machine's physical memory."""
    if budget is not None:
        return parse_size(budget, "memory_budget (--memory-budget)")
    if os.environ.get(MEMORY_BUDGET_ENV):
        return parse_size(os.environ[MEMORY_BUDGET_ENV], f"${MEMORY_BUDGET_ENV}")
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume 8 GiB
        return 4 << 30


def describe_array(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
