"""Arrays a method keeps beside the network's weights: a memory bank of every training image's latest output (DPSH),
learned database codes (ADSH). They live in TensorFlow variables, so the loss can read and update them inside the
compiled training step, and they are saved with every checkpoint and beside the final model (`to_bytes` /
`from_bytes`, an `.npz` without pickles), so that a resumed run continues with exactly the state it stopped with.
"""

import io
import os

import numpy as np

from saeh.errors import SaehError


class MethodState:
    """Named arrays as non-trainable TensorFlow variables. Create it inside the distribution strategy's scope."""

    def __init__(self, **arrays):
        import tensorflow as tf

        if not arrays:
            raise SaehError("a method state needs at least one array")
        self.variables = {name: tf.Variable(np.asarray(value), trainable=False, name=name)
                          for name, value in arrays.items()}

    def __getitem__(self, name):
        return self.variables[name]

    def numpy(self):
        """{name: numpy array} of the current values."""
        return {name: variable.numpy() for name, variable in self.variables.items()}

    def assign(self, arrays, source="the saved state"):
        """Set every variable from `arrays` ({name: array}), which must hold exactly these names and shapes."""
        if set(arrays) != set(self.variables):
            raise SaehError(f"{source} holds the arrays {sorted(arrays)}; this method keeps {sorted(self.variables)}")
        for name, variable in self.variables.items():
            value = np.asarray(arrays[name])
            if tuple(value.shape) != tuple(variable.shape):
                raise SaehError(f"{source} holds {name} of shape {value.shape}; this run needs {tuple(variable.shape)} "
                                "(another training set or code length?)")
            variable.assign(value.astype(variable.dtype.as_numpy_dtype))

    def to_bytes(self):
        buffer = io.BytesIO()
        np.savez(buffer, **self.numpy())
        return buffer.getvalue()

    def from_bytes(self, data, source="the saved state"):
        self.assign(arrays_from_bytes(data, source), source)


def arrays_from_bytes(data, source):
    """{name: array} of an `.npz` held in `data` (pickles refused)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as error:
        raise SaehError(f"{source} is not a readable method state: {error}") from error


def save_arrays(path, state):
    """Write `state` to `path` (.npz), atomically."""
    from saeh.atomic import atomic_path

    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(state.to_bytes())


def load_arrays(path):
    """{name: array} of a state file written by `save_arrays`."""
    if not os.path.isfile(path):
        raise SaehError(f"method state file {path} does not exist")
    with open(path, "rb") as handle:
        return arrays_from_bytes(handle.read(), path)

