"""Hash codes: binarise real outputs, and dump/load them in the original `generate_hash.py` format.

A dump holds three arrays, the original's field names:

- ``hash_org``: (N, bits) float32, the real-valued outputs of the hash layer;
- ``hash_bin``: (N, bits) uint8, the 0/1 codes (``hash_org > threshold``);
- ``label``: (N,) integer class ids, or (N, C) multi-hot uint8.

It is written as MATLAB ``.mat`` (as the original did) or numpy ``.npz``, chosen by the file suffix.
"""

import dataclasses
import os
import zipfile

import numpy as np

from saeh.atomic import atomic_path
from saeh.errors import MissingDataError, SaehError

DUMP_FIELDS = ("hash_org", "hash_bin", "label")
DUMP_SUFFIXES = (".mat", ".npz")


@dataclasses.dataclass(frozen=True)
class Codes:
    """One set of codes: real outputs, 0/1 codes and labels, row-aligned."""

    hash_org: np.ndarray
    hash_bin: np.ndarray
    label: np.ndarray

    def __post_init__(self):
        if self.hash_bin.ndim != 2:
            raise SaehError(f"hash_bin must be 2-D (N, bits); got shape {self.hash_bin.shape}")
        if self.hash_org.shape != self.hash_bin.shape:
            raise SaehError(
                f"hash_org {self.hash_org.shape} and hash_bin {self.hash_bin.shape} must have the same shape"
            )
        if self.label.ndim not in (1, 2) or len(self.label) != len(self.hash_bin):
            raise SaehError(
                f"label must be (N,) or (N, C) with N = {len(self.hash_bin)} rows; got shape {self.label.shape}"
            )

    @property
    def bits(self):
        return self.hash_bin.shape[1]

    def __len__(self):
        return len(self.hash_bin)


def binarize(hash_org, threshold=0.5):
    """0/1 codes: 1 where ``hash_org > threshold``. Exactly equal to the threshold maps to 0, deterministically."""
    return (np.asarray(hash_org) > threshold).astype(np.uint8)


def make_codes(hash_org, label, threshold=0.5):
    """Build `Codes` from real outputs and labels, binarising at `threshold`."""
    hash_org = np.asarray(hash_org, dtype=np.float32)
    return Codes(hash_org=hash_org, hash_bin=binarize(hash_org, threshold), label=_normalize_labels(label))


def _normalize_labels(label):
    label = np.asarray(label)
    if label.ndim == 2 and 1 in label.shape and label.shape[1] == 1:
        label = label[:, 0]
    if not np.issubdtype(label.dtype, np.integer) and not np.issubdtype(label.dtype, np.bool_):
        if np.issubdtype(label.dtype, np.floating) and np.all(label == np.round(label)):
            label = label.astype(np.int64)
        else:
            raise SaehError(f"labels must be integers or multi-hot 0/1; got dtype {label.dtype}")
    return label


def save_codes(path, codes, overwrite=True):
    """Write `codes` to `path` (``.mat`` or ``.npz``) atomically."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in DUMP_SUFFIXES:
        raise SaehError(f"code dump {path}: unknown format {suffix!r}; expected one of {', '.join(DUMP_SUFFIXES)}")
    arrays = {"hash_org": codes.hash_org, "hash_bin": codes.hash_bin, "label": codes.label}
    with atomic_path(path, overwrite=overwrite) as temporary:
        if suffix == ".mat":
            import scipy.io

            scipy.io.savemat(temporary, arrays, do_compression=True)
        else:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays)


def read_npz(path, what):
    """All arrays of an `.npz` file, read with ``allow_pickle=False``: a file holding pickled objects (which could
    run code when loaded) is refused. `what` names the file in error messages ("code dump", "saved hasher")."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        raise SaehError(f"{what} {path} holds pickled objects, which are refused for safety") from error
    except (OSError, zipfile.BadZipFile) as error:
        raise SaehError(f"{what} {path} is not a readable .npz file: {error}") from error


def load_codes(path):
    """Read a dump written by `save_codes` (or by the original `generate_hash.py`) into `Codes`.

    `.npz` files are read with ``allow_pickle=False``: a dump holding pickled objects is refused.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingDataError(f"code dump {path} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".mat":
        import scipy.io

        try:
            raw = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises several unrelated types for a bad file
            raise SaehError(f"code dump {path} is not a readable MATLAB file: {error}") from error
    elif suffix == ".npz":
        raw = read_npz(path, "code dump")
    else:
        raise SaehError(f"code dump {path}: unknown format {suffix!r}; expected one of {', '.join(DUMP_SUFFIXES)}")
    missing = [name for name in ("hash_bin", "label") if name not in raw]
    if missing:
        raise SaehError(f"code dump {path} lacks the field(s) {', '.join(missing)}; expected {', '.join(DUMP_FIELDS)}")
    hash_bin = np.asarray(raw["hash_bin"])
    if hash_bin.size and not np.all((hash_bin == 0) | (hash_bin == 1)):
        raise SaehError(f"code dump {path}: hash_bin must hold only 0 and 1")
    hash_bin = hash_bin.astype(np.uint8)
    hash_org = np.asarray(raw.get("hash_org", hash_bin), dtype=np.float32)
    label = np.asarray(raw["label"])
    if suffix == ".mat" and label.ndim == 2 and label.shape[0] == 1 and label.shape[1] == len(hash_bin):
        label = label[0]  # MATLAB stores 1-D arrays as row vectors
    try:
        return Codes(hash_org=hash_org, hash_bin=hash_bin, label=_normalize_labels(label))
    except SaehError as error:
        raise SaehError(f"code dump {path}: {error}") from error
