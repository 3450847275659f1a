"""Write files so that a crash or a full disk never leaves a half-written file under the final name."""

import contextlib
import json
import os
import re
import uuid

from saeh.errors import SaehError

# Temporary names are ".tmp-<8 hex digits>-<final name>"; only files matching this are ever cleaned up.
_TEMPORARY_NAME = re.compile(r"\.tmp-[0-9a-f]{8}-.")


def check_writable(path, overwrite):
    """Raise SaehError if `path` exists and `overwrite` is false."""
    if os.path.exists(path) and not overwrite:
        raise SaehError(f"{path} already exists; pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yield a temporary path beside `path`; on success rename it to `path`, on failure delete it.

    The temporary name ends with the final file name, so writers that insist on a suffix (`.keras`, `.npz`,
    `.weights.h5`) accept it. `os.replace` is atomic on POSIX when both names are in one directory.
    """
    path = os.fspath(path)
    check_writable(path, overwrite)
    with scratch_path(os.path.dirname(os.path.abspath(path)), os.path.basename(path)) as temporary:
        try:
            yield temporary
            os.replace(temporary, path)
        except OSError as error:
            raise SaehError(f"could not write {path}: {error.strerror or error}") from error


@contextlib.contextmanager
def scratch_path(directory, name):
    """Yield a temporary path in `directory` for a file needed only while the block runs (e.g. outputs written
    chunk by chunk before being converted, or a file `atomic_path` renames); it is deleted afterwards if still
    there, and by `remove_temporaries` after a crash."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise SaehError(f"cannot create the output directory {directory}: {error.strerror}") from error
    temporary = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}-{name}")
    try:
        yield temporary
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def remove_temporaries(directory):
    """Delete the temporary files `atomic_path` left in `directory` (not below it); return their paths.

    Only a process killed mid-write (SIGKILL, power loss) leaves one, since the clean-up above never ran. Call this
    only where no other process is writing, e.g. when a run directory is taken over to resume it.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if _TEMPORARY_NAME.match(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def write_json(path, obj, overwrite=True):
    """Write `obj` as indented JSON to `path` atomically."""
    with atomic_path(path, overwrite=overwrite) as temporary:
        with open(temporary, "w") as handle:
            json.dump(obj, handle, indent=2, sort_keys=True)
            handle.write("\n")
