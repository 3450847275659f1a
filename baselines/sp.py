"""SP, sparse projections (Xia, He, Kohli & Sun, CVPR 2015), as the HABIR toolbox (willard-yuan/hashing-baseline-
for-image-retrieval, the toolbox's PR #17) runs it: Method-SP/SP.m (line numbers below are the stored copy SP.m~,
commit da787f8) and demo.m's case 'SP'. Unsupervised.

SP solves min ||X R2^T - B||^2 + beta ||X R2^T - X R^T||^2 over an orthogonal R2 (bits, D), a sparse R (bits, D)
and codes B in {-1, +1}, on the centred training features X (N, D):

1. R starts as a (bits, D) matrix of N(0, 1) draws from the run's seed (SP.m l.19), B = sgn(X R^T) (l.20-23;
   0 maps to -1, as every sgn in SP.m).
2. If bits < D, P (D, bits) = the top-`bits` principal directions of X (l.27; ours from `principal_directions`).
3. `n_iter` + 1 passes (l.33: for iter = 0:n_iter), each:
   a. Y = (B + beta X R^T) / (1 + beta) (l.36);
   b. R2 = the orthogonal Procrustes solution of min ||X R2^T - Y||: with U S V^T = svd(X^T Y) (thin),
      R2 = V U^T (l.58-68); when bits < D it is solved on X P instead of X and R2 = R' P^T (l.40-41);
   c. R = R2 with all but its ceil((1 - sparsity) bits D) largest-magnitude entries set to 0: entries below the
      magnitude of the ceil(...)-th largest are zeroed (l.45, 70-78), so ties at the threshold are kept;
   d. B = sgn(X R2^T) (l.48-51).

Encode with the sparse R (demo.m, case 'SP': B = [x R^T >= 0]): project(x) = (x - mu) R^T and the code bit is
[project > 0] (our 0-maps-to-0 rule; the toolbox's >= differs only for an output of exactly 0).

Protocol: the toolbox fits on its training set, which its construct_data.m centres by the mean of the training set
and the queries together and scales (mean distance to the 50th neighbour = 1); we centre by mu, the training mean,
and do not scale (the solution's sparsity pattern does not depend on a common scale; beta's balance between the two
terms does, mildly). Hyperparameters: ``sparsity`` = 0.9, ``n_iter`` = 50 (demo.m, case 'SP': SPparam.sparsity,
SPparam.iter), ``beta`` = 1 (SP.m l.32).
"""

import dataclasses
import math

import numpy as np

from baselines.shallow import CHUNK_ROWS, CentredLinearHasher, check_sample_count, feature_mean, in_chunks, principal_directions
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def signs(values):
    """+1 where `values` > 0, -1 elsewhere (SP.m's sgn: 0 maps to -1)."""
    return np.where(values > 0, 1.0, -1.0)


def orthogonal_fit(inputs_t_targets):
    """The orthogonal (bits, D) R minimising ||X R^T - Y|| given X^T Y (D, bits): V U^T with U S V^T = svd(X^T Y)."""
    left, _, right_t = np.linalg.svd(inputs_t_targets, full_matrices=False)
    return right_t.T @ left.T


def sparsify(matrix, sparsity):
    """`matrix` with the entries smaller in magnitude than its ceil((1 - sparsity) size)-th largest set to 0."""
    n_nonzero = max(1, math.ceil(matrix.size * (1.0 - sparsity)))
    threshold = np.sort(np.abs(matrix), axis=None)[::-1][n_nonzero - 1]
    return np.where(np.abs(matrix) < threshold, 0.0, matrix)


@dataclasses.dataclass(frozen=True)
class SPHyperparameters(Hyperparameters):
    """SP's settings (module docstring; values from the HABIR toolbox)."""

    sparsity: float = hyperparameter(0.9, "non-negative", "fraction of the projection's entries set to 0, below 1 "
                                                          "(demo.m, case 'SP': SPparam.sparsity)")
    n_iter: int = hyperparameter(50, "positive integer", "the loop runs iter = 0..n_iter: n_iter + 1 passes "
                                                         "(demo.m: SPparam.iter; SP.m l.33)")
    beta: float = hyperparameter(1.0, "non-negative", "weight of ||X R2^T - X R^T||^2 (SP.m l.32)")


class SP(CentredLinearHasher):
    """Sparse projections (labels passed to fit are ignored)."""

    name = "sp"
    supervised = False
    defaults = SPHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples, dim = features.shape
        check_sample_count("sp", n_samples)
        if hyperparameters.sparsity >= 1:
            raise SaehError(f"sp: sparsity must be below 1 (the fraction of zeros); got {hyperparameters.sparsity}")
        rng = np.random.default_rng(self.seed)
        mean = feature_mean(features)
        bits, beta = self.hash_bits, hyperparameters.beta

        def centred_times(matrix):  # (X - mu) M, in chunks
            return in_chunks(features, lambda chunk: (chunk - mean) @ matrix)

        def centred_transposed_times(rows):  # (X - mu)^T M for M (N, k), in chunks
            return sum((np.asarray(features[start : start + CHUNK_ROWS], np.float64) - mean).T
                       @ rows[start : start + CHUNK_ROWS] for start in range(0, n_samples, CHUNK_ROWS))

        sparse = rng.standard_normal((bits, dim))
        codes = signs(centred_times(sparse.T))
        directions = principal_directions(features, mean, bits) if bits < dim else None
        for _ in range(hyperparameters.n_iter + 1):
            targets = (codes + beta * centred_times(sparse.T)) / (1.0 + beta)
            if directions is None:
                orthogonal = orthogonal_fit(centred_transposed_times(targets))
            else:
                orthogonal = orthogonal_fit(directions.T @ centred_transposed_times(targets)) @ directions.T
            sparse = sparsify(orthogonal, hyperparameters.sparsity)
            codes = signs(centred_times(orthogonal.T))
        return {"mean": mean, "projection": sparse.T}


SP_METHOD = register(ShallowMethod(
    "sp", "SP: sparse projections, a 90%-sparse R close to an orthogonal R2 that ITQ-style quantises the centred "
    "features, signs of x R^T (unsupervised)", SP), listing_order=270)
