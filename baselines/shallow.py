"""Shared plumbing of the shallow (numpy/scipy) hashing baselines: validation, fit/project/encode, save/load.

A shallow hasher maps a feature matrix ``X`` (N, D) to real outputs ``project(X)`` (N, bits) and to 0/1 codes
``encode(X) = [project(X) > 0]``. The real outputs are what a code dump stores as ``hash_org`` and the 0/1 codes
its ``hash_bin``: ``saeh.codes.make_codes(hasher.project(X), labels, threshold=hasher.threshold)`` gives the same
codes as ``encode``. An output of exactly 0 maps to 0.

Subclasses (`baselines.itq.ITQ`, `baselines.ksh.KSH`, the toolbox methods `baselines.lsh` ... `baselines.sph`) set ``name`` and ``defaults`` (their hyperparameters: an
instance of a `saeh.methods.Hyperparameters` subclass, whose fields declare each one's default, constraint and
meaning), and implement ``_fit`` (given the resolved hyperparameters; it returns the fitted state as a dict of
numpy arrays) and ``_project``. The fitted state and the configuration are all a saved model holds, so ``load`` rebuilds
a hasher that gives identical codes.

Features: raw pixels scaled to [0, 1] (`features_from_images`) are the default choice for images; any (N, D) float
matrix works, e.g. deep features from a trained encoder.
"""

import json
import os

import numpy as np

from saeh import validation
from saeh.atomic import atomic_path
from saeh.codes import binarize, read_npz
from saeh.errors import MissingDataError, SaehError
from saeh.methods import NO_HYPERPARAMETERS, resolve_hyperparameters
from saeh.pairs import share_a_label

# Rows handled at once where a whole (N, D) matrix would otherwise be copied to float64.
CHUNK_ROWS = 8192

CONFIG_KEY = "config"
STATE_PREFIX = "state__"


def check_features(features, name="features"):
    """Return `features` as a 2-D float array (N >= 1 rows, D >= 1 columns, all finite), not copied if possible."""
    array = np.asarray(features)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SaehError(f"{name} must be a numeric array; got dtype {array.dtype}")
    if array.ndim != 2:
        raise SaehError(f"{name} must be 2-D (N samples, D features); got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise SaehError(f"{name} must have at least one row and one column; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    for start in range(0, len(array), CHUNK_ROWS):
        if not np.all(np.isfinite(array[start : start + CHUNK_ROWS])):
            raise SaehError(f"{name} holds NaN or infinite values (first bad rows from index {start})")
    return array


def check_labels(labels, n_samples, name="labels"):
    """Return `labels` as (N,) int64 class ids or (N, C) uint8 multi-hot; N must equal `n_samples`."""
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2):
        raise SaehError(f"{name} must be (N,) class ids or (N, C) multi-hot; got shape {array.shape}")
    if len(array) != n_samples:
        raise SaehError(f"{name} has {len(array)} rows but the features have {n_samples}; they must match")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.number):
        raise SaehError(f"{name} must be integers; got dtype {array.dtype}")
    if not np.all(array == np.round(array)):
        examples = array[array != np.round(array)][:3]
        raise SaehError(f"{name} must hold integers; got non-integer values such as {examples}")
    if array.ndim == 2:
        if not np.all((array == 0) | (array == 1)):
            raise SaehError(f"multi-hot {name} must hold only 0 and 1")
        return array.astype(np.uint8)
    return array.astype(np.int64)


def pairwise_similarity(labels):
    """S = 2 * [share at least one label] - 1, an (N, N) float64 matrix of +-1 (diagonal +1)."""
    similarity = np.where(share_a_label(labels, labels), 1.0, -1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def features_from_images(images):
    """Raw-pixel features: (N, H, W) or (N, H, W, C) images -> (N, H*W*C) float32 in [0, 1].

    Integer images are divided by 255 (so they must lie in 0..255); float images must already lie in [0, 1].
    """
    array = np.asarray(images)
    if array.ndim not in (3, 4) or len(array) == 0:
        raise SaehError(f"images must be (N, H, W) or (N, H, W, C) with N >= 1; got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise SaehError(f"integer images must lie in 0..255; got values from {low} to {high}")
        return (array.reshape(len(array), -1).astype(np.float32) / np.float32(255.0)).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
            raise SaehError(
                f"float images must already be scaled to [0, 1]; got values from {low} to {high} "
                "(pass uint8 images to have them divided by 255)"
            )
        return array.reshape(len(array), -1).astype(np.float32)
    raise SaehError(f"images must be integer or float arrays; got dtype {array.dtype}")


def feature_mean(features):
    """The mean row (D,) float64 of `features`, summed in chunks."""
    mean = np.zeros(features.shape[1])
    for start in range(0, len(features), CHUNK_ROWS):
        mean += np.asarray(features[start : start + CHUNK_ROWS], dtype=np.float64).sum(axis=0)
    return mean / len(features)


def principal_directions(features, mean, n_components):
    """Top `n_components` eigenvectors (D, n_components) of the covariance of `features`, sign-normalised
    (largest-magnitude entry positive, so the result does not depend on the LAPACK build)."""
    dim = features.shape[1]
    scatter = np.zeros((dim, dim))
    for start in range(0, len(features), CHUNK_ROWS):
        centred = np.asarray(features[start : start + CHUNK_ROWS], dtype=np.float64) - mean
        scatter += centred.T @ centred
    scatter /= len(features)
    _, vectors = np.linalg.eigh(scatter)  # ascending eigenvalues
    top = vectors[:, ::-1][:, :n_components]
    signs = np.sign(top[np.argmax(np.abs(top), axis=0), np.arange(n_components)])
    signs[signs == 0] = 1.0
    return top * signs


def check_sample_count(method_name, n_samples):
    """Refuse a fit on fewer than 2 samples, naming `method_name`."""
    if n_samples < 2:
        raise SaehError(f"{method_name}: fit needs at least 2 samples; got {n_samples}")


def fit_principal_directions(method_name, features, n_components):
    """(mean (D,), top `n_components` principal directions (D, n_components)) of the training `features`; refuses
    more components than dimensions and fewer than 2 samples, naming `method_name`."""
    n_samples, dim = features.shape
    if n_components > dim:
        raise SaehError(f"{method_name}: hash_bits={n_components} exceeds the feature dimension {dim}; PCA gives at "
                        f"most {dim} bits")
    check_sample_count(method_name, n_samples)
    mean = feature_mean(features)
    return mean, principal_directions(features, mean, n_components)


def random_rotation(size, rng):
    """A random orthogonal matrix: QR of a Gaussian matrix, column signs fixed so it is Haar-distributed."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def squared_distances(features, anchors):
    """||x_i - z_j||^2 for rows of `features` (n, D) and `anchors` (m, D), clipped at 0 against round-off."""
    squared = (features**2).sum(axis=1)[:, None] + (anchors**2).sum(axis=1)[None, :] - 2.0 * features @ anchors.T
    return np.maximum(squared, 0.0)


def in_chunks(features, function, chunk_rows=CHUNK_ROWS):
    """Apply `function` to float64 row chunks of `features` and stack the results (bounds the float64 copies)."""
    parts = [
        function(np.asarray(features[start : start + chunk_rows], dtype=np.float64))
        for start in range(0, len(features), chunk_rows)
    ]
    return np.concatenate(parts, axis=0)


class ShallowHasher:
    """Base class: a hasher with numpy-array state, fitted on features (and labels for supervised methods).

    ``hash_bits`` is the code length, ``seed`` drives every random choice (same seed, same data -> same codes),
    other keyword arguments override the method's hyperparameters (see the subclass's ``defaults``), as numbers or
    their text (``--set n_iter=20``); ``hyperparameters`` holds them resolved and checked.
    """

    name = "shallow"
    threshold = 0.0
    supervised = False
    defaults = NO_HYPERPARAMETERS

    def __init__(self, hash_bits=32, seed=0, **hyperparameters):
        self.hash_bits = validation.positive_int(hash_bits, "hash_bits")
        self.seed = validation.non_negative_int(seed, "seed")
        self.hyperparameters = resolve_hyperparameters(self.name, self.defaults, hyperparameters)
        self.state = None
        self.input_dim = None

    # ---- subclass hooks -------------------------------------------------------------------------------------
    def _fit(self, features, labels, hyperparameters):
        raise NotImplementedError

    def _project(self, features):
        raise NotImplementedError

    # ---- public API -----------------------------------------------------------------------------------------
    @property
    def is_fitted(self):
        return self.state is not None

    def fit(self, features, labels=None):
        """Learn the hash functions from `features` (N, D) and, for supervised methods, `labels` (N,) or (N, C)."""
        features = check_features(features)
        if labels is not None:
            labels = check_labels(labels, len(features))
        elif self.supervised:
            raise SaehError(f"{self.name} is supervised: fit needs labels, (N,) class ids or (N, C) multi-hot")
        self.state = self._fit(features, labels, self.hyperparameters)
        self.input_dim = int(features.shape[1])
        return self

    def project(self, features):
        """Real-valued outputs (N, bits) float32; the code is 1 where the output is > 0 (the dump's hash_org)."""
        if not self.is_fitted:
            raise SaehError(f"{self.name}: call fit (or load a saved model) before project/encode")
        features = check_features(features)
        if features.shape[1] != self.input_dim:
            raise SaehError(
                f"{self.name} was fitted on {self.input_dim}-dimensional features; got {features.shape[1]} dimensions"
            )
        return np.asarray(self._project(features), dtype=np.float32)

    def encode(self, features):
        """0/1 codes (N, bits) uint8: 1 where `project` > 0, 0 otherwise (0 itself maps to 0)."""
        return binarize(self.project(features), self.threshold)

    def get_config(self):
        """Everything needed to rebuild an unfitted hasher: name, hash_bits, seed and hyperparameters."""
        return {"name": self.name, "hash_bits": self.hash_bits, "seed": self.seed, **self.hyperparameters}

    def save(self, path, overwrite=True):
        """Write the configuration and fitted state to an `.npz` atomically (no pickled objects)."""
        if not self.is_fitted:
            raise SaehError(f"{self.name}: nothing to save; fit the hasher first")
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise SaehError(f"a shallow hasher is saved as .npz; got {path!r}")
        config = dict(self.get_config(), input_dim=self.input_dim)
        arrays = {CONFIG_KEY: np.array(json.dumps(config, sort_keys=True))}
        arrays.update({STATE_PREFIX + key: np.asarray(value) for key, value in self.state.items()})
        with atomic_path(path, overwrite=overwrite) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)

    @classmethod
    def load(cls, path):
        """Rebuild a fitted hasher saved by `save`; the file must hold this class's method."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MissingDataError(f"saved hasher {path} does not exist")
        arrays = read_npz(path, "saved hasher")
        if CONFIG_KEY not in arrays:
            raise SaehError(f"{path} is not a saved shallow hasher (no {CONFIG_KEY!r} entry)")
        try:
            config = json.loads(str(arrays.pop(CONFIG_KEY)))
            name = config.pop("name")
            input_dim = config.pop("input_dim")
        except (ValueError, KeyError, TypeError) as error:
            raise SaehError(f"saved hasher {path} has a corrupt configuration: {error}") from error
        if name != cls.name:
            raise SaehError(f"{path} holds a {name!r} hasher; load it with that method's class, not {cls.name!r}")
        hasher = cls(**config)
        hasher.state = {key[len(STATE_PREFIX):]: value for key, value in arrays.items()
                        if key.startswith(STATE_PREFIX)}
        hasher.input_dim = int(input_dim)
        return hasher


class CentredLinearHasher(ShallowHasher):
    """A hasher whose fitted state holds ``mean`` (D,) and ``projection`` (D, bits): project(x) = (x - mean) W.
    Subclasses implement ``_fit`` only."""

    def _project(self, features):
        mean, projection = self.state["mean"], self.state["projection"]
        return in_chunks(features, lambda chunk: (chunk - mean) @ projection)
