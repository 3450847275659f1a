"""ITQ, iterative quantization (Gong & Lazebnik, CVPR 2011; TPAMI 2013), the PCA-ITQ variant. Unsupervised.

Fit on features X (N, D) with mean mu:

1. PCA: W (D, bits) = the top-`bits` eigenvectors of the covariance of X - mu (needs bits <= D);
   V = (X - mu) W.
2. R (bits, bits) starts as a random orthogonal matrix (QR of a Gaussian matrix drawn from the seed).
3. `n_iter` times (50 in the paper and its code): B = sgn(V R), then R solves the orthogonal Procrustes problem
   min_R ||B - V R||_F: with B^T V = U S Z^T (SVD), R = Z U^T.

Each step can only lower the quantization loss ||B - V R||_F^2 (kept in ``quantization_loss_`` after fit).
Encode: project(x) = (x - mu) W R, code bit = [project > 0]. sgn(0) is taken as -1 here, the same rule as
encode (the paper's code sends 0 to +1; exact zeros are vanishingly rare with real features).

Eigenvector signs are fixed (largest-magnitude entry positive) so the result does not depend on the LAPACK build.
Hyperparameters: ``n_iter`` = 50 (the paper's setting).
"""

import dataclasses

import numpy as np

from baselines.shallow import ShallowHasher, in_chunks
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter


def _principal_directions(features, mean, n_components):
    """Top `n_components` eigenvectors (D, n_components) of the covariance of `features`, sign-normalised."""
    dim = features.shape[1]
    scatter = np.zeros((dim, dim))
    for start in range(0, len(features), 8192):
        centred = np.asarray(features[start : start + 8192], dtype=np.float64) - mean
        scatter += centred.T @ centred
    scatter /= len(features)
    _, vectors = np.linalg.eigh(scatter)  # ascending eigenvalues
    top = vectors[:, ::-1][:, :n_components]
    signs = np.sign(top[np.argmax(np.abs(top), axis=0), np.arange(n_components)])
    signs[signs == 0] = 1.0
    return top * signs


def _random_rotation(size, rng):
    """A random orthogonal matrix: QR of a Gaussian matrix, column signs fixed so it is Haar-distributed."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def _sign(values):
    """+1 where values > 0, -1 elsewhere (the encode rule: 0 maps to the 0 bit, i.e. -1)."""
    return np.where(values > 0, 1.0, -1.0)


def iterative_quantization(projected, n_iter, rng):
    """Alternate B = sgn(V R) and the Procrustes update of R; return (R, loss per iteration)."""
    rotation = _random_rotation(projected.shape[1], rng)
    losses = []
    for _ in range(n_iter):
        binary = _sign(projected @ rotation)
        left, _, right_t = np.linalg.svd(binary.T @ projected)
        rotation = right_t.T @ left.T
        losses.append(float(np.sum((binary - projected @ rotation) ** 2)))
    return rotation, losses


@dataclasses.dataclass(frozen=True)
class ITQHyperparameters(Hyperparameters):
    """ITQ's settings (module docstring)."""

    n_iter: int = hyperparameter(50, "positive integer", "updates of the rotation R (the paper's 50)")


class ITQ(ShallowHasher):
    """PCA-ITQ hashing (unsupervised; labels passed to fit are ignored)."""

    name = "itq"
    supervised = False
    defaults = ITQHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples, dim = features.shape
        if self.hash_bits > dim:
            raise SaehError(
                f"itq: hash_bits={self.hash_bits} exceeds the feature dimension {dim}; PCA gives at most {dim} bits"
            )
        if n_samples < 2:
            raise SaehError(f"itq: fit needs at least 2 samples; got {n_samples}")
        rng = np.random.default_rng(self.seed)
        mean = np.zeros(dim)
        for start in range(0, n_samples, 8192):
            mean += np.asarray(features[start : start + 8192], dtype=np.float64).sum(axis=0)
        mean /= n_samples
        directions = _principal_directions(features, mean, self.hash_bits)
        projected = in_chunks(features, lambda chunk: (chunk - mean) @ directions)
        rotation, losses = iterative_quantization(projected, hyperparameters.n_iter, rng)
        self.quantization_loss_ = losses
        return {"mean": mean, "projection": directions @ rotation}

    def _project(self, features):
        mean, projection = self.state["mean"], self.state["projection"]
        return in_chunks(features, lambda chunk: (chunk - mean) @ projection)
