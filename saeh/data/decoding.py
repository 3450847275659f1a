"""Image files to uint8 pixels: one file (`decode_image`, the decoder both the in-memory loaders and
`saeh.data.files.ImageFiles` use, so streamed and in-memory images are the same pixels), many files into one array
(`decode_images`, threaded for large images), a header read without decoding (`image_header`), the rules that pick
the channels of a set of images, and resizing (`resize_images`).
"""

import concurrent.futures
import contextlib
import os
import warnings

import numpy as np

from saeh.errors import SaehError
from saeh.progress import ProgressLine

_GRAY_MODES = ("1", "L", "LA", "La", "I")  # modes `_to_eight_bit` turns into "L" (and "I;16*")

# Below this mean file size, decoding is dominated by Python overhead under the GIL and threads slow it down
# (measured: 10,000 CIFAR JPEGs of ~1 KB take 1.4 s in one thread, 2.3 s in two); bigger images spend their time in
# libjpeg/zlib, which release the GIL, so a thread pool pays off (256x256 JPEGs: 0.33 s → 0.23 s with two threads).
_THREADED_DECODE_MIN_BYTES = 16 * 1024
_DECODE_CHUNK = 256


def check_image_size(image_size):
    """None, an int n (→ (n, n)) or (H, W) of positive ints → None or a tuple (H, W)."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise SaehError(f"image_size must be (height, width) or one integer; got {image_size!r}") from None
    sides = (height, width)
    if not all(isinstance(side, (int, np.integer)) and not isinstance(side, bool) and side > 0 for side in sides):
        raise SaehError(f"image_size must be two positive integers (height, width); got {image_size!r}")
    return int(height), int(width)


def decode_image(path, image_size=None):
    """One file → ((H, W) uint8 for grayscale or (H, W, 3) uint8 for colour, whether an alpha channel was dropped).

    `image_size` (H, W) resizes (bilinear) an image of another size. Both the in-memory loaders and `ImageFiles`
    decode with this function, so streamed and in-memory images are the same pixels.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as handle:
            try:
                # Naming the two expected formats skips probing every plugin (about 30% faster on small files).
                picture = Image.open(handle, formats=("JPEG", "PNG"))
            except UnidentifiedImageError:
                handle.seek(0)
                picture = Image.open(handle)
            if image_size is not None and picture.format == "JPEG":
                # Let libjpeg decode at a reduced scale when shrinking large photos (never below the target size).
                picture.draft(picture.mode, (image_size[1], image_size[0]))
            picture.load()
            had_alpha = "A" in picture.mode or "transparency" in picture.info
            picture = _to_eight_bit(picture, path)
            if image_size is not None and picture.size != (image_size[1], image_size[0]):
                picture = picture.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            width, height = picture.size
            channels = 3 if picture.mode == "RGB" else 1
            array = np.frombuffer(picture.tobytes(), dtype=np.uint8)
    except SaehError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise SaehError(f"cannot decode image {path}: {error}") from error
    image = array.reshape(height, width, channels) if channels == 3 else array.reshape(height, width)
    return image, had_alpha


def _to_eight_bit(picture, path):
    """PIL image → mode "L" (grayscale) or "RGB"."""
    mode = picture.mode
    if mode in ("L", "RGB"):
        return picture
    if mode in ("1", "LA", "La"):
        return picture.convert("L")
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale PNG: keep the top 8 bits of the 0..65535 range.
        from PIL import Image

        wide = np.asarray(picture, dtype=np.int64)
        return Image.fromarray((np.clip(wide, 0, 65535) // 257).astype(np.uint8), mode="L")
    if mode == "F":
        raise SaehError(f"image {path} has floating-point pixels (mode F); expected 8-bit grayscale or colour")
    return picture.convert("RGB")  # RGBA (alpha dropped), P, PA, CMYK, YCbCr, ...


def decode_images(paths, image_size=None, source=None, progress="auto"):
    """Decode image files into one (N, H, W, C) uint8 array, in the order given.

    C = 1 when every image is grayscale, else 3 (grayscale ones are converted to RGB with one warning naming how
    many). `image_size` (H, W) resizes (bilinear) every image of another size; without it all images must share
    one size. Any unreadable file raises SaehError naming it. Large images are decoded in a thread pool.
    `progress`: a counter of the images decoded (`saeh.progress.ProgressLine`): "auto" on a terminal only.
    """
    image_size = check_image_size(image_size)
    if not paths:
        raise SaehError(f"no images to decode under {source}")
    chunks = [paths[start : start + _DECODE_CHUNK] for start in range(0, len(paths), _DECODE_CHUNK)]
    workers = _decode_workers(paths)
    line = ProgressLine(len(paths), f"decoding the images under {source}", enabled=progress)
    decoded_with_alpha = []
    with contextlib.ExitStack() as stack:
        if workers > 1:
            executor = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
            results = executor.map(lambda chunk: _decode_chunk(chunk, image_size), chunks)
        else:
            results = (_decode_chunk(chunk, image_size) for chunk in chunks)
        stack.callback(line.close)
        for chunk in results:
            decoded_with_alpha.extend(chunk)
            line.update(len(decoded_with_alpha))
    decoded = [array for array, _ in decoded_with_alpha]
    warn_alpha_dropped([index for index, (_, had_alpha) in enumerate(decoded_with_alpha) if had_alpha], paths,
                       source)
    sizes = {array.shape[:2] for array in decoded}
    if len(sizes) > 1:
        first_shape = decoded[0].shape[:2]
        other = next(index for index, array in enumerate(decoded) if array.shape[:2] != first_shape)
        raise SaehError(
            f"images under {source} have {len(sizes)} different sizes ({paths[0]} is {first_shape[0]}x"
            f"{first_shape[1]}, {paths[other]} is {decoded[other].shape[0]}x{decoded[other].shape[1]}); "
            "pass image_size=(H, W) (--image-size) to resize them all"
        )
    height, width = sizes.pop()
    channels = channels_of([index for index, array in enumerate(decoded) if array.ndim == 2], paths, source)
    images = np.empty((len(decoded), height, width, channels), dtype=np.uint8)
    for index, array in enumerate(decoded):
        # A 2-D grayscale array broadcasts into every channel, which is exactly PIL's L → RGB conversion.
        images[index] = array[..., None] if array.ndim == 2 else array
    return images


def _decode_workers(paths):
    if len(paths) < 2 * _DECODE_CHUNK:
        return 1
    cpus = usable_cpus()
    if cpus < 2:
        return 1
    sample = paths[:: max(1, len(paths) // 32)][:32]
    mean_bytes = sum(os.path.getsize(path) for path in sample) / len(sample)
    return min(8, cpus) if mean_bytes >= _THREADED_DECODE_MIN_BYTES else 1


def _decode_chunk(paths, image_size):
    return [decode_image(path, image_size) for path in paths]


def resize_images(images, image_size):
    """Resize (N, H, W, C) uint8 images to `image_size` (H, W) with PIL's bilinear filter."""
    from PIL import Image

    height, width = check_image_size(image_size)
    resized = np.empty((len(images), height, width, images.shape[-1]), dtype=np.uint8)
    for index, image in enumerate(images):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        result = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
        resized[index] = result[..., None] if result.ndim == 2 else result
    return resized


def image_header(path):
    """((width, height), PIL mode, whether it has an alpha channel) of an image file, without decoding its pixels;
    SaehError naming the file when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            mode = picture.mode
            if mode == "F":
                raise SaehError(f"image {path} has floating-point pixels (mode F); expected 8-bit grayscale or colour")
            return picture.size, mode, "A" in mode or "transparency" in picture.info
    except SaehError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise SaehError(f"cannot decode image {path}: {error}") from error


def is_gray_mode(mode):
    """Whether images of PIL `mode` decode to grayscale ((H, W) arrays), as `decode_image` converts them."""
    return mode in _GRAY_MODES or mode.startswith("I;16")


def channels_of(gray, paths, source):
    """The loaders' channel rule: 1 when every image of `paths` is grayscale (`gray`: their rows), else 3, with
    one warning naming how many grayscale images become RGB."""
    channels = 1 if len(gray) == len(paths) else 3
    if gray and channels == 3:
        warnings.warn(
            f"{len(gray)} of {len(paths)} images under {source} are grayscale; converted them to RGB to match "
            f"the others (first: {paths[gray[0]]})",
            stacklevel=3,
        )
    return channels


def warn_alpha_dropped(with_alpha, paths, source):
    """One warning when the images at rows `with_alpha` of `paths` lose an alpha channel (their colours are kept)."""
    if with_alpha:
        warnings.warn(
            f"{len(with_alpha)} of {len(paths)} images under {source} have an alpha (transparency) channel; "
            f"dropped it and kept their colour values (first: {paths[with_alpha[0]]})",
            stacklevel=3,
        )


def usable_cpus():
    """The CPUs this process may run on (its affinity where the system says, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
