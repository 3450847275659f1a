"""A decoded copy of streamed images on disk: a folder or list dataset decoded once into one raw uint8 file, whose
rows later batches read directly (no image decoding; random access, so the seeded order, each worker's own rows and
the exact pixels are kept).

    python -m saeh.cli.cache --which-data folder --data-dir DATA [--image-size H W] --cache-dir CACHE

writes it ahead of training; `--cache-dir CACHE` (or $SAEH_CACHE_DIR) on the training, encoding and search scripts
reads it, and writes it first when it is missing. The file is named by a digest of every image file's path, size and
modification time and of the decoded shape: a changed dataset gets a new file, never stale pixels.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os

import numpy as np

from saeh.data.decoding import usable_cpus
from saeh.data.files import format_bytes
from saeh.errors import SaehError
from saeh.progress import ProgressLine

CACHE_DIR_ENV = "SAEH_CACHE_DIR"
CACHE_SUFFIX = ".u8"
_CHUNK = 256  # images decoded per task


def cache_key(files):
    """sha256 (hex) of what the decoded pixels of `files` (an `ImageFiles`) depend on."""
    digest = hashlib.sha256(json.dumps([files.height, files.width, files.channels, bool(files.resize)]).encode())
    for path in files.paths:
        try:
            info = os.stat(path)
        except OSError as error:
            raise SaehError(f"cannot read image {path}: {error.strerror}") from error
        digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_path(files, cache_dir):
    """Where the decoded copy of `files` lives under `cache_dir`."""
    return os.path.join(os.fspath(cache_dir), cache_key(files)[:32] + CACHE_SUFFIX)


def cached_images(files, cache_dir, log=None):
    """`files` read from their decoded copy under `cache_dir`, which is written first when missing (to a temporary
    file renamed when complete: an interrupted write leaves nothing under the final name)."""
    if files.cache_file is not None:
        return files
    path = cache_path(files, cache_dir)
    log = log or (lambda line: None)
    if os.path.isfile(path) and os.path.getsize(path) == files.nbytes:
        log(f"reading the decoded images from the cache {path}")
    else:
        log(f"decoding {len(files)} images once into the cache {path} ({format_bytes(files.nbytes)})")
        write_cache(files, path)
    return dataclasses.replace(files, cache_file=path, cache_rows=np.arange(len(files)))


def write_cache(files, path, progress="auto"):
    """Decode every image of `files` into the raw uint8 file `path` (N x H x W x C, C order), in parallel chunks;
    `progress` as for `saeh.data.decoding.decode_images`."""
    from saeh.atomic import atomic_path

    starts = range(0, len(files), _CHUNK)
    workers = min(8, usable_cpus())
    with atomic_path(path) as temporary:
        stored = np.memmap(temporary, np.uint8, "w+", shape=files.shape)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
            chunks = executor.map(lambda start: files.decode(np.arange(start, min(start + _CHUNK, len(files)))),
                                  starts)
            line = ProgressLine(len(files), f"decoding the images into the cache {path}", enabled=progress)
            for start, chunk in zip(starts, chunks):
                stored[start:start + len(chunk)] = chunk
                line.update(start + len(chunk))
            line.close()
        stored.flush()
        del stored  # closes the map before the rename
