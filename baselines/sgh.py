"""SGH, scalable graph hashing (Jiang & Li, IJCAI 2015), as the HABIR toolbox (willard-yuan/hashing-baseline-for-
image-retrieval, commit 061bc0f) runs it: Method-SGH/trainSGH.m, trainSGH_seq.m and demo.m's case 'SGH' (which
also encodes the queries). Unsupervised.

On the training features, scaled and centred as the toolbox's data are (z = (x - mu) / s, below):

1. Kernel features to m = 300 bases drawn at random from the training points (demo.m, case 'SGH'):
   K_ij = exp(-||z_i - a_j||^2 / (2 delta)), delta = the mean of those squared distances over the training set,
   then centred by its training column means, K~ = K - bias (trainSGH.m l.26-33).
2. The feature transform of the similarity 2 exp(-||x - y||^2 / rho) - 1 ~ P(x)^T Q(y), rho = 2: with
   f = exp(-||z||^2 / rho) and alpha = sqrt(2 (e - 1/e) / rho), P = [alpha z f, sqrt(e + 1/e) f, 1] and
   Q = [alpha z f, sqrt(e + 1/e) f, -1] (trainSGH.m l.16-23).
3. Bit by bit (trainSGH_seq.m l.4-16): A = bits (K~^T P)(K~^T Q)^T, C = K~^T K~ + 1e-6 I; w_t = the eigenvector of
   the largest eigenvalue of A w = lambda C w; then A -= v v^T with v = K~^T sgn(K~ w_t) (sgn(0) = 0).
4. One refinement pass over the bits in a random order (l.17-28): A += v v^T for the bit's current w, its w
   recomputed as in 3, A -= v v^T for the new one.

Encode (demo.m, case 'SGH'): project(x) = (K(z) - bias) W, code bit [project > 0]. An eigenvector's sign is
arbitrary (the whole bit flips, for queries and database alike); we fix it so that its largest-magnitude entry is
positive, so the codes do not depend on the LAPACK build.

Protocol: the toolbox's construct_data.m divides the features by s, the mean distance from 100 random training
points to their 50th nearest training point, and centres them by the mean of the training set and the queries
together (as `baselines.sklsh`, whose scale we reuse); SGH's readme insists the data be scaled and centred, as the
transform in 2 assumes ||z|| of order 1. We centre by mu, the training mean. The toolbox draws the bases with a fixed
mt19937ar seed 0; we draw them (after the scale's sample) from the run's seed.

Hyperparameters: ``n_bases`` = 300 (demo.m, case 'SGH'), ``rho`` = 2 (trainSGH.m l.17), ``ridge`` = 1e-6
(trainSGH_seq.m l.4), ``n_refine`` = 1 (l.19); the scale uses SKLSH's defaults (50th neighbour, 100 samples).
"""

import dataclasses

import numpy as np
import scipy.linalg

from baselines.shallow import ShallowHasher, check_sample_count, feature_mean, in_chunks, squared_distances
from baselines.shallow_methods import ShallowMethod
from baselines.sklsh import SKLSH, neighbour_distance_scale
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def transformed_features(scaled, rho):
    """(P, Q) (N, D + 2) of `scaled` features: P(x)^T Q(y) approximates 2 exp(-||x - y||^2 / rho) - 1."""
    decay = np.exp(-(scaled**2).sum(axis=1, keepdims=True) / rho)
    alpha = np.sqrt(2.0 * (np.e - 1.0 / np.e) / rho)
    shared = np.hstack([alpha * scaled * decay, np.sqrt(np.e + 1.0 / np.e) * decay])
    ones = np.ones((len(scaled), 1))
    return np.hstack([shared, ones]), np.hstack([shared, -ones])


def top_generalised_eigenvector(matrix, metric):
    """The eigenvector of the largest eigenvalue of matrix w = lambda metric w (both symmetric, metric positive
    definite), its largest-magnitude entry made positive."""
    size = len(matrix)
    _, vectors = scipy.linalg.eigh((matrix + matrix.T) / 2.0, metric, subset_by_index=[size - 1, size - 1])
    vector = vectors[:, 0]
    return vector * (1.0 if vector[np.argmax(np.abs(vector))] >= 0 else -1.0)


def sequential_projections(kernel, similarity_factor, metric, hash_bits, n_refine, rng):
    """trainSGH_seq.m: W (m, bits), each column the top generalised eigenvector of the residual A (module docstring,
    steps 3-4), `similarity_factor` being bits (K~^T P)(K~^T Q)^T."""
    residual = similarity_factor.copy()
    projections = np.zeros((kernel.shape[1], hash_bits))

    def code_direction(vector):
        return kernel.T @ np.sign(kernel @ vector)

    for bit in range(hash_bits):
        projections[:, bit] = top_generalised_eigenvector(residual, metric)
        direction = code_direction(projections[:, bit])
        residual -= np.outer(direction, direction)
    order = rng.permutation(hash_bits)
    for _ in range(n_refine):
        for bit in order:
            direction = code_direction(projections[:, bit])
            residual += np.outer(direction, direction)
            projections[:, bit] = top_generalised_eigenvector(residual, metric)
            direction = code_direction(projections[:, bit])
            residual -= np.outer(direction, direction)
    return projections


@dataclasses.dataclass(frozen=True)
class SGHHyperparameters(Hyperparameters):
    """SGH's settings (module docstring; values from the HABIR toolbox)."""

    n_bases: int = hyperparameter(300, "positive integer", "training points the kernel is taken to (demo.m, 'SGH')")
    rho: float = hyperparameter(2.0, "positive", "width of the approximated similarity (trainSGH.m l.17)")
    ridge: float = hyperparameter(1e-6, "positive", "added to K~^T K~'s diagonal (trainSGH_seq.m l.4)")
    n_refine: int = hyperparameter(1, "non-negative", "refinement passes over the bits (trainSGH_seq.m l.19)")


class SGH(ShallowHasher):
    """Scalable graph hashing (labels passed to fit are ignored)."""

    name = "sgh"
    supervised = False
    defaults = SGHHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples = len(features)
        check_sample_count("sgh", n_samples)
        rng = np.random.default_rng(self.seed)
        scaling = SKLSH.defaults  # the toolbox's shared scaling, as SKLSH declares it
        scale = neighbour_distance_scale(features, scaling.n_neighbours, scaling.n_scale_samples, rng)
        if scale <= 0:
            raise SaehError("sgh: the training features' neighbour distance is 0 (duplicated samples?); they cannot "
                            "be scaled")
        mean = feature_mean(features)
        chosen = rng.choice(n_samples, min(hyperparameters.n_bases, n_samples), replace=False)
        bases = (np.asarray(features[chosen], np.float64) - mean) / scale
        scaled = in_chunks(features, lambda chunk: (chunk - mean) / scale)
        squared = squared_distances(scaled, bases)
        delta = squared.mean()
        if delta <= 0:
            raise SaehError("sgh: every training point coincides with every basis; the kernel's width would be 0")
        kernel = np.exp(-squared / (2.0 * delta))
        bias = kernel.mean(axis=0)
        kernel -= bias
        p, q = transformed_features(scaled, hyperparameters.rho)
        similarity_factor = self.hash_bits * (kernel.T @ p) @ (kernel.T @ q).T
        metric = kernel.T @ kernel + hyperparameters.ridge * np.eye(kernel.shape[1])
        projections = sequential_projections(kernel, similarity_factor, metric, self.hash_bits,
                                             hyperparameters.n_refine, rng)
        return {"mean": mean, "scale": np.float64(scale), "bases": bases, "delta": np.float64(delta), "bias": bias,
                "projection": projections}

    def _project(self, features):
        state = self.state

        def outputs(chunk):
            squared = squared_distances((chunk - state["mean"]) / state["scale"], state["bases"])
            return (np.exp(-squared / (2.0 * state["delta"])) - state["bias"]) @ state["projection"]

        return in_chunks(features, outputs)


SGH_METHOD = register(ShallowMethod(
    "sgh", "SGH: scalable graph hashing, kernel features to 300 bases, bit by bit the top generalised eigenvectors "
    "of a feature-transformed Gaussian similarity (unsupervised)", SGH), listing_order=280)
