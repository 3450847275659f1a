"""Hash codes: binarise real outputs, and dump/load them in the original `generate_hash.py` format.

A dump holds three arrays, the original's field names: ``hash_org`` (the real-valued outputs of the hash layer),
``hash_bin`` (the 0/1 codes, ``hash_org > threshold``) and ``label``. It is written as MATLAB ``.mat`` (as the
original did) or numpy ``.npz``, chosen by the file suffix. The types suit each reader:

- ``.mat`` (`save_codes`), for MATLAB/Octave: ``hash_org`` (N, bits) single; ``hash_bin`` (N, bits) logical, so that
  ``2*B-1`` gives -1/1 and ``B*B'`` multiplies (on uint8 the first saturates to 0/1 and the second is an error);
  ``label`` an N x 1 column of class ids, or N x C multi-hot logical (``L*L'`` counts shared labels).
- ``.npz`` (`save_codes`), for numpy, unchanged from earlier versions so that code reading it keeps working:
  ``hash_org`` (N, bits) float32, ``hash_bin`` (N, bits) uint8, ``label`` (N,) class ids or (N, C) multi-hot
  (numpy keeps 1-D arrays 1-D; cast ``hash_bin`` to a signed type before arithmetic such as ``2*B-1``, since uint8
  wraps around).
- ``.mat`` in the original script's exact types (`save_original_dump`): ``hash_org`` (N, bits) double, ``hash_bin``
  (N, bits) int64 0/1 and ``label`` as the dataset loader gave it (Keras: N x 1 for CIFAR-10/SVHN, N for MNIST, which
  MATLAB reads as a 1 x N row), uncompressed.

`load_codes` reads all of these, and dumps of earlier versions (uint8 ``hash_bin``, 1 x N row labels): any 0/1
``hash_bin`` (logical, uint8, int64, double) becomes uint8, a 1 x N row or N x 1 column of class ids becomes (N,).

Two optional fields say which images the codes are of, where known (a dump without them reads as before): ``ids``,
each code's row number in its image set (int64; an N x 1 column in ``.mat``), and ``paths``, each image's file
(a string array in ``.npz``, an N x 1 cell array of strings in ``.mat``).
"""

import dataclasses
import os
import zipfile

import numpy as np

from saeh.atomic import atomic_path
from saeh.errors import MissingDataError, SaehError

DUMP_FIELDS = ("hash_org", "hash_bin", "label")
OPTIONAL_FIELDS = ("ids", "paths")
DUMP_SUFFIXES = (".mat", ".npz")


@dataclasses.dataclass(frozen=True)
class Codes:
    """One set of codes: real outputs, 0/1 codes and labels, row-aligned; where known, each code's image as its row
    number in its set (`ids`, int64) and its file (`paths`, str). `label` is None for images without labels (a
    user's own photos): such codes can be searched, not evaluated or dumped."""

    hash_org: np.ndarray
    hash_bin: np.ndarray
    label: np.ndarray | None
    ids: np.ndarray | None = None
    paths: np.ndarray | None = None

    def __post_init__(self):
        if self.hash_bin.ndim != 2:
            raise SaehError(f"hash_bin must be 2-D (N, bits); got shape {self.hash_bin.shape}")
        if self.hash_org.shape != self.hash_bin.shape:
            raise SaehError(
                f"hash_org {self.hash_org.shape} and hash_bin {self.hash_bin.shape} must have the same shape"
            )
        if self.label is not None and (self.label.ndim not in (1, 2) or len(self.label) != len(self.hash_bin)):
            raise SaehError(
                f"label must be (N,) or (N, C) with N = {len(self.hash_bin)} rows; got shape {self.label.shape}"
            )
        for name, kind in (("ids", np.int64), ("paths", str)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value).astype(kind)
                if value.shape != (len(self.hash_bin),):
                    raise SaehError(f"{name} must be (N,) with N = {len(self.hash_bin)}, one per code; got shape "
                                    f"{value.shape}")
                object.__setattr__(self, name, value)

    @property
    def bits(self):
        return self.hash_bin.shape[1]

    def __len__(self):
        return len(self.hash_bin)


def binarize(hash_org, threshold=0.5):
    """0/1 codes: 1 where ``hash_org > threshold``. Exactly equal to the threshold maps to 0, deterministically."""
    return (np.asarray(hash_org) > threshold).astype(np.uint8)


def make_codes(hash_org, label, threshold=0.5, ids=None, paths=None):
    """Build `Codes` from real outputs and labels (None: unknown), binarising at `threshold`."""
    hash_org = np.asarray(hash_org, dtype=np.float32)
    return Codes(hash_org=hash_org, hash_bin=binarize(hash_org, threshold),
                 label=None if label is None else _normalize_labels(label), ids=ids, paths=paths)


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


def _check_zero_one(hash_bin, path):
    if hash_bin.size and not np.all((hash_bin == 0) | (hash_bin == 1)):
        raise SaehError(f"code dump {path}: hash_bin must hold only 0 and 1")


def _checked_suffix(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in DUMP_SUFFIXES:
        raise SaehError(f"code dump {path}: unknown format {suffix!r}; expected one of {', '.join(DUMP_SUFFIXES)}")
    return suffix


def save_codes(path, codes, overwrite=True):
    """Write `codes` to `path` (``.mat`` or ``.npz``, by suffix) atomically, in the types the module docstring lists:
    for ``.mat`` a logical ``hash_bin`` and a column of class ids, for ``.npz`` uint8 and (N,)."""
    path = os.fspath(path)
    suffix = _checked_suffix(path)
    _check_zero_one(codes.hash_bin, path)
    if codes.label is None:
        raise SaehError(f"code dump {path}: the codes have no labels, which a dump holds; save images without "
                        "labels as a search index (saeh.CodeIndex) instead")
    if suffix == ".mat":
        # MATLAB would read (N,) as a row; multi-hot 0/1 as logical, so that L*L' (shared labels) multiplies.
        label = codes.label[:, None] if codes.label.ndim == 1 else codes.label.astype(bool)
        arrays = {"hash_org": codes.hash_org, "hash_bin": codes.hash_bin.astype(bool), "label": label}
    else:
        arrays = {"hash_org": codes.hash_org, "hash_bin": codes.hash_bin.astype(np.uint8), "label": codes.label}
    if codes.ids is not None:
        arrays["ids"] = codes.ids[:, None] if suffix == ".mat" else codes.ids
    if codes.paths is not None:
        arrays["paths"] = np.array(list(codes.paths), dtype=object)[:, None] if suffix == ".mat" else codes.paths
    with atomic_path(path, overwrite=overwrite) as temporary:
        if suffix == ".mat":
            import scipy.io

            scipy.io.savemat(temporary, arrays, do_compression=True)
        else:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays)


def save_original_dump(path, codes, label=None, overwrite=True):
    """Write `codes` to the ``.mat`` file `path` atomically, in the exact types of the original `generate_hash.py`.

    The original wrote ``{"hash_org": outputs, "hash_bin": np.where(outputs > 0.5, 1, 0), "label": y_test}``
    uncompressed: ``hash_org`` double (N, bits), ``hash_bin`` int64 0/1 (N, bits), and the labels exactly as its
    dataset loader gave them.

    Args:
        path: the ``.mat`` file to write.
        codes: `Codes`; ``hash_bin`` is written as it is (binarised at the model's threshold).
        label: the labels to write, in the shape and type to write them, e.g. Keras's (N, 1) uint8 for CIFAR-10 and
            SVHN or (N,) for MNIST (MATLAB reads (N,) as a 1 x N row); (N,) or (N, C) with N = ``len(codes)``.
            None writes ``codes.label`` as it is.
        overwrite: replace an existing file.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".mat":
        raise SaehError(f"original-format code dump {path}: expected a .mat file (the original wrote MATLAB files)")
    _check_zero_one(codes.hash_bin, path)
    label = codes.label if label is None else np.asarray(label)
    if label.ndim not in (1, 2) or len(label) != len(codes):
        raise SaehError(f"original-format code dump {path}: label must be (N,) or (N, C) with N = {len(codes)} rows, "
                        f"one per code; got shape {label.shape}")
    arrays = {
        "hash_org": codes.hash_org.astype(np.float64),
        "hash_bin": codes.hash_bin.astype(np.int64),
        "label": label,
    }
    with atomic_path(path, overwrite=overwrite) as temporary:
        import scipy.io

        scipy.io.savemat(temporary, arrays)


def read_npz(path, what):
    """All arrays of an `.npz` file, read with ``allow_pickle=False``: a file holding pickled objects (which could
    run code when loaded) is refused. `what` names the file in error messages ("code dump", "saved hasher")."""
    if not zipfile.is_zipfile(path):  # np.load takes any other file for a pickle, and says so
        raise SaehError(f"{what} {path} is not an .npz file: not a zip archive (an .npz is a zip of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        raise SaehError(f"{what} {path} holds pickled objects, which are refused for safety") from error
    except (OSError, zipfile.BadZipFile) as error:
        raise SaehError(f"{what} {path} is not a readable .npz file: {error}") from error


def load_codes(path):
    """Read a dump written by `save_codes`, `save_original_dump`, the original `generate_hash.py` or an earlier
    version of this module into `Codes` (uint8 ``hash_bin``, float32 ``hash_org``, (N,) or (N, C) labels).

    `.npz` files are read with ``allow_pickle=False``: a dump holding pickled objects is refused.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingDataError(f"code dump {path} does not exist")
    is_mat = _checked_suffix(path) == ".mat"
    if is_mat:
        import scipy.io

        try:
            raw = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises several unrelated types for a bad file
            raise SaehError(f"code dump {path} is not a readable MATLAB file: {error}") from error
    else:
        raw = read_npz(path, "code dump")
    missing = [name for name in ("hash_bin", "label") if name not in raw]
    if missing:
        raise SaehError(f"code dump {path} lacks the field(s) {', '.join(missing)}; expected {', '.join(DUMP_FIELDS)}")
    hash_bin = np.asarray(raw["hash_bin"])
    _check_zero_one(hash_bin, path)
    hash_bin = hash_bin.astype(np.uint8)
    hash_org = np.asarray(raw.get("hash_org", hash_bin), dtype=np.float32)
    label = np.asarray(raw["label"])
    if is_mat and label.ndim == 2 and label.shape[0] == 1 and label.shape[1] == len(hash_bin):
        label = label[0]  # MATLAB stores 1-D arrays as row vectors
    ids, paths = raw.get("ids"), raw.get("paths")
    if is_mat:  # a column, and a cell column of 1-element string arrays
        ids = None if ids is None else np.asarray(ids).reshape(-1)
        paths = None if paths is None else np.array([str(np.ravel(cell)[0]) for cell in np.ravel(paths)])
    try:
        return Codes(hash_org=hash_org, hash_bin=hash_bin, label=_normalize_labels(label), ids=ids, paths=paths)
    except SaehError as error:
        raise SaehError(f"code dump {path}: {error}") from error
