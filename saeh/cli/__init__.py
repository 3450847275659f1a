"""Command-line entry points behind the thin top-level scripts (`hash_su_ae_train.py`, `generate_hash.py`,
`evaluate.py`). Each module has `main(argv=None) -> int`."""

import contextlib
import importlib.abc
import importlib.util
import os
import shutil
import sys
import tempfile

from saeh.errors import SaehError

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


def run(main, argv=None, **kwargs):
    """Call `main(argv, **kwargs)`; print a user's mistake (`SaehError`) as one line on stderr and return 2 (or the
    error's own `exit_status`: 143 for a worker stopped by SIGTERM).

    Bugs keep their traceback: only errors we raise on purpose are shortened. TensorFlow's start-up log is kept off
    stderr (see `quiet_tensorflow_start`).
    """
    try:
        with quiet_tensorflow_start():
            return main(argv, **kwargs) or 0
    except SaehError as error:
        program = os.path.basename(sys.argv[0]) or "saeh"
        print(f"{program}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def quiet_tensorflow_start():
    """Within the block, TensorFlow (if something imports it) starts without writing its C++ log to stderr.

    TF_CPP_MIN_LOG_LEVEL alone cannot do it: TensorFlow's libraries write their first lines (oneDNN, CUDA stubs, CPU
    features) before they read it, and the failed CUDA probe of a machine without a GPU is an error-level line. So
    the import and the first device probe run with file descriptor 2 held back, and what it got is written out only
    if they fail. After start-up the level is 2: TensorFlow's own errors still show. A user who sets
    TF_CPP_MIN_LOG_LEVEL keeps that level and sees the whole start-up log.
    """
    if TF_LOG_LEVEL in os.environ or "tensorflow" in sys.modules:
        yield
        return
    os.environ[TF_LOG_LEVEL] = "2"
    hook = HeldBackImport("tensorflow", then=_first_notices)
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
        os.environ.pop(TF_LOG_LEVEL, None)  # read once by a started TensorFlow; later processes start clean


def _first_notices(tensorflow):
    """Provoke, while stderr is held back, the notices TensorFlow prints once per process at their first occasion:
    the device probe (a failed CUDA call, on a machine without a GPU), and oneDNN's error-level "supports DT_INT32
    only on platforms with AVX-512" at the first int32 transpose, which would otherwise land mid-training."""
    tensorflow.config.list_physical_devices()
    tensorflow.transpose(tensorflow.zeros((1, 1), tensorflow.int32))


class HeldBackImport(importlib.abc.MetaPathFinder):
    """A one-shot import hook: the first import of module `name`, and `then(module)` after it, run with file
    descriptor 2 held back (`stderr_held_back`)."""

    def __init__(self, name, then=None):
        self.name = name
        self.then = then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _HeldBackLoader(spec.loader, self.then)
        return spec


class _HeldBackLoader(importlib.abc.Loader):
    def __init__(self, loader, then):
        self.loader = loader
        self.then = then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module sees its real loader, as if imported without the hook.
        module.__loader__ = module.__spec__.loader = self.loader
        with stderr_held_back():
            self.loader.exec_module(module)
            if self.then is not None:
                self.then(module)


@contextlib.contextmanager
def stderr_held_back():
    """Send what is written to file descriptor 2 (C++ logging as well as Python's stderr) to a temporary file for
    the block, and write it to stderr after all if the block raises, so that a failure keeps its explanation."""
    sys.stderr.flush()
    original = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            except BaseException:
                sys.stderr.flush()
                os.dup2(original, 2)
                held.seek(0)
                with open(2, "wb", closefd=False) as stderr:
                    shutil.copyfileobj(held, stderr)
                raise
            finally:
                sys.stderr.flush()
                os.dup2(original, 2)
    finally:
        os.close(original)
