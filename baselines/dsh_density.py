"""Density-sensitive hashing (Lin, Jin, Cai, Yan & Li, IEEE T-Cybernetics 2014), as the HABIR toolbox (willard-yuan/
hashing-baseline-for-image-retrieval) runs it: DSH/trainDSH.m (commit 03b2a69; the later Method-DSH/ keeps only
compressDSH.m and litekmeans.m, commit 061bc0f). Named `dsh-density`: `dsh` is deep supervised hashing. Unsupervised.

Fit on the training features X (N, D):

1. k-means with k = round(1.5 bits) clusters (trainDSH.m l.35-38), as litekmeans.m does it: centres start at k
   distinct training points drawn from the run's seed; then at most 3 rounds (l.38, 'MaxIter') of: assign each point
   to its nearest centre (a cluster left empty takes the points farthest from their centres, the farthest to the
   lowest-numbered empty cluster), move each centre to its cluster's mean; stop early when no label changes. A
   cluster's weight is its share of the points by the last assignment (l.44-48).
2. Candidate pairs: each centre with its r = 3 nearest other centres (l.37, 53-60), each pair once, ordered by their
   distance (the toolbox keys pairs by their distance, `unique`, so two pairs at exactly the same distance would
   merge there).
3. Each pair (c1, c2) proposes the hyperplane through its midpoint m with normal w = c1 - c2, c1 the higher-numbered
   centre (where the toolbox's column-major `find` lands, l.64); its score is min(n1, 1 - n1) / max(n1, 1 - n1), n1
   the weight of the clusters whose centres lie strictly on w's side (l.64-74).
4. The `bits` best scores are kept, ties going to the closer pair (l.77-86: the first in the distance order).

Encode (compressDSH.m): project_i(x) = x . w_i - m_i . w_i, the code bit [project > 0], as the toolbox's
[x . w_i > m_i . w_i].

Protocol: the toolbox's data are centred by the mean of training set and queries and scaled (construct_data.m); both
steps move every hyperplane with the data, so we use the features as they come, and fit on the training features
only. Hyperparameters: ``cluster_ratio`` = 1.5, ``n_neighbours`` = 3, ``kmeans_iter`` = 3 (trainDSH.m l.36-38).
"""

import dataclasses
import math

import numpy as np

from baselines.shallow import CHUNK_ROWS, ShallowHasher, in_chunks, squared_distances
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def lite_kmeans(features, n_clusters, max_iter, rng):
    """litekmeans.m with 'sample' starts: (labels (N,) of the last assignment, centres (k, D) after the last move)."""
    n_samples = len(features)
    centres = np.asarray(features[np.sort(rng.choice(n_samples, n_clusters, replace=False))], np.float64)
    previous = None
    for _ in range(max_iter):
        squared = in_chunks(features, lambda chunk: squared_distances(chunk, centres))
        labels = squared.argmin(axis=1)
        missing = np.setdiff1d(np.arange(n_clusters), labels)
        if len(missing):
            farthest = np.argsort(-squared[np.arange(n_samples), labels], kind="stable")[: len(missing)]
            labels[farthest] = missing
        counts = np.bincount(labels, minlength=n_clusters)
        sums = np.zeros_like(centres)
        for start in range(0, n_samples, CHUNK_ROWS):
            np.add.at(sums, labels[start : start + CHUNK_ROWS],
                      np.asarray(features[start : start + CHUNK_ROWS], np.float64))
        centres = sums / counts[:, None]
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
    return labels, centres


def candidate_pairs(centres, n_neighbours):
    """Each centre with its `n_neighbours` nearest other centres, as (higher index, lower index) pairs, each once,
    ordered by distance (ties: by the pair's indices)."""
    squared = squared_distances(centres, centres)
    np.fill_diagonal(squared, np.inf)
    nearest = np.argsort(squared, axis=1, kind="stable")[:, : min(n_neighbours, len(centres) - 1)]
    pairs = sorted({(max(i, int(j)), min(i, int(j))) for i, row in enumerate(nearest) for j in row})
    return sorted(pairs, key=lambda pair: squared[pair])


def balance_score(centres, weights, first, second):
    """min(n1, 1 - n1) / max(...), n1 the weight of the clusters whose centres lie strictly on the normal's side of the
    hyperplane bisecting centres `first` and `second`."""
    normal = centres[first] - centres[second]
    midpoint = (centres[first] + centres[second]) / 2.0
    share = weights[centres @ normal > midpoint @ normal].sum()
    return min(share, 1.0 - share) / max(share, 1.0 - share)


@dataclasses.dataclass(frozen=True)
class DSHDensityHyperparameters(Hyperparameters):
    """Density-sensitive hashing's settings (module docstring; values from the HABIR toolbox)."""

    cluster_ratio: float = hyperparameter(1.5, "positive", "k-means clusters per bit, rounded (trainDSH.m l.36)")
    n_neighbours: int = hyperparameter(3, "positive integer", "nearest centres paired with each (trainDSH.m l.37)")
    kmeans_iter: int = hyperparameter(3, "positive integer", "k-means rounds at most (trainDSH.m l.38)")


class DSHDensity(ShallowHasher):
    """Density-sensitive hashing (labels passed to fit are ignored)."""

    name = "dsh-density"
    supervised = False
    defaults = DSHDensityHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples = len(features)
        n_clusters = max(2, math.floor(hyperparameters.cluster_ratio * self.hash_bits + 0.5))  # MATLAB's round
        if n_clusters > n_samples:
            raise SaehError(f"dsh-density: {n_clusters} clusters for {self.hash_bits} bits need as many training "
                            f"samples; got {n_samples}")
        rng = np.random.default_rng(self.seed)
        assignment, centres = lite_kmeans(features, n_clusters, hyperparameters.kmeans_iter, rng)
        weights = np.bincount(assignment, minlength=n_clusters) / n_samples
        pairs = candidate_pairs(centres, hyperparameters.n_neighbours)
        if len(pairs) < self.hash_bits:
            raise SaehError(f"dsh-density: only {len(pairs)} candidate hyperplanes for hash_bits={self.hash_bits}; "
                            "raise cluster_ratio or n_neighbours")
        scores = np.array([balance_score(centres, weights, first, second) for first, second in pairs])
        chosen = [pairs[index] for index in np.argsort(-scores, kind="stable")[: self.hash_bits]]
        normals = np.stack([centres[first] - centres[second] for first, second in chosen])
        midpoints = np.stack([(centres[first] + centres[second]) / 2.0 for first, second in chosen])
        return {"normals": normals, "intercepts": (midpoints * normals).sum(axis=1)}

    def _project(self, features):
        state = self.state
        return in_chunks(features, lambda chunk: chunk @ state["normals"].T - state["intercepts"])


DSH_DENSITY_METHOD = register(ShallowMethod(
    "dsh-density", "DSH (density-sensitive hashing): hyperplanes bisecting neighbouring k-means centres, the bits "
    "whose sides hold the most balanced shares of the points (unsupervised)", DSHDensity), listing_order=290)
