"""SpH, spherical hashing (Heo, Lee, He, Chang & Yoon, CVPR 2012), as the HABIR toolbox (willard-yuan/hashing-
baseline-for-image-retrieval, commit 8228378) runs it: Method-SpH/trainSpH.m and compressSpH.m. Unsupervised.

Bit i is 1 inside the hypersphere (c_i, r_i). Fit on the N training features:

1. Each centre c_i starts as the mean of 5 training points drawn at random (without repeats) from the run's seed
   (trainSpH.m l.55-64).
2. Each radius r_i puts half the points inside: the toolbox takes the (N/2)-th smallest distance to c_i and counts
   a point inside when its distance is <= r_i (l.71-76); we take the midpoint between the (N/2)-th and the next
   distance (N/2 rounded down), which puts the same N/2 points inside (ties aside) whether the boundary counts or
   not, so that encoding the training points by [r_i - ||x - c_i|| > 0] (our 0-maps-to-0 rule) agrees with fit.
3. With o_ij the number of points inside both spheres i and j, a repulsion or attraction moves the centres towards
   o_ij = N/4 (l.24-34): f_ij = 1/2 (o_ij - N/4) / (N/4) (c_i - c_j), and c_i += sum_j f_ij / bits, c_j -= the same;
   the radii are then set again (step 2).
4. Stop when the mean of |o_ij - N/4| over the pairs i < j is <= 0.1 N/4 and their standard deviation (of o_ij,
   population) is <= 0.15 N/4 (l.39-41). The toolbox has no iteration cap (it warns after 100); we stop after
   ``max_iter`` updates at most and record whether it converged in ``fit_info_``.

Encode: project_i(x) = r_i - ||x - c_i||, code bit = [project > 0] (compressSpH.m l.19-24). The paper ranks by its
spherical Hamming distance |b1 xor b2| / |b1 and b2|; the toolbox's demo, like our evaluator, ranks by plain Hamming
distance. Protocol: the toolbox fits on its training set only (demo.m l.147), as we do.

Hyperparameters: ``n_mean_points`` = 5 (trainSpH.m l.60), ``mean_tolerance`` = 0.1 and ``std_tolerance`` = 0.15
(l.39), ``max_iter`` = 500 (ours; the toolbox warns after 100 iterations and goes on).
"""

import dataclasses

import numpy as np

from baselines.shallow import ShallowHasher, check_sample_count, in_chunks, squared_distances
from baselines.shallow_methods import ShallowMethod
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def centre_distances(features, centres):
    """Euclidean distances (N, bits) from each row of `features` to each centre."""
    return in_chunks(features, lambda chunk: np.sqrt(squared_distances(chunk, centres)))


def balanced_radii(distances):
    """Radii (bits,) midway between the (N/2)-th and the next smallest distance of each column: N // 2 points inside."""
    half = len(distances) // 2
    ordered = np.partition(distances, [half - 1, half], axis=0)
    return 0.5 * (ordered[half - 1] + ordered[half])


def overlap_statistics(inside):
    """o_ij = points inside spheres i and j (bits, bits), and over the pairs i < j the mean of |o_ij - N/4| and the
    (population) standard deviation of o_ij."""
    inside = inside.astype(np.float64)
    overlaps = inside.T @ inside
    pairs = overlaps[np.triu_indices(len(overlaps), k=1)]
    if len(pairs) == 0:  # one sphere: nothing to balance
        return overlaps, 0.0, 0.0
    quarter = len(inside) / 4.0
    return overlaps, float(np.abs(pairs - quarter).mean()), float(pairs.std())


def centre_forces(centres, overlaps, n_samples):
    """Each centre's move sum_j f_ij / bits with f_ij = 1/2 (o_ij - N/4) / (N/4) (c_i - c_j) (f_ji = -f_ij)."""
    quarter = n_samples / 4.0
    weights = 0.5 * (overlaps - quarter) / quarter
    np.fill_diagonal(weights, 0.0)
    # sum_j w_ij (c_i - c_j) = c_i sum_j w_ij - sum_j w_ij c_j
    return (weights.sum(axis=1)[:, None] * centres - weights @ centres) / len(centres)


@dataclasses.dataclass(frozen=True)
class SpHHyperparameters(Hyperparameters):
    """SpH's settings (module docstring; values from the HABIR toolbox but max_iter)."""

    n_mean_points: int = hyperparameter(5, "positive integer", "training points averaged into each initial centre "
                                                               "(trainSpH.m l.60)")
    mean_tolerance: float = hyperparameter(0.1, "positive", "stop when mean |o_ij - N/4| <= this times N/4 (l.39)")
    std_tolerance: float = hyperparameter(0.15, "positive", "... and the std of o_ij <= this times N/4 (l.39)")
    max_iter: int = hyperparameter(500, "positive integer", "most centre updates (ours: the toolbox has no cap)")


class SpH(ShallowHasher):
    """Spherical hashing (labels passed to fit are ignored)."""

    name = "sph"
    supervised = False
    defaults = SpHHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples = len(features)
        check_sample_count("sph", n_samples)
        rng = np.random.default_rng(self.seed)
        drawn = min(hyperparameters.n_mean_points, n_samples)
        centres = np.stack([np.asarray(features[rng.choice(n_samples, drawn, replace=False)], np.float64).mean(axis=0)
                            for _ in range(self.hash_bits)])
        quarter = n_samples / 4.0
        distances = centre_distances(features, centres)
        radii = balanced_radii(distances)
        overlaps, _, _ = overlap_statistics(distances < radii)
        iterations, converged = 0, False
        # As the toolbox: update, set the radii again, then test; so at least one update.
        while not converged and iterations < hyperparameters.max_iter:
            centres = centres + centre_forces(centres, overlaps, n_samples)
            iterations += 1
            distances = centre_distances(features, centres)
            radii = balanced_radii(distances)
            overlaps, mean_gap, spread = overlap_statistics(distances < radii)
            converged = (mean_gap <= hyperparameters.mean_tolerance * quarter
                         and spread <= hyperparameters.std_tolerance * quarter)
        self.fit_info_ = {"iterations": iterations, "converged": converged}
        return {"centres": centres, "radii": radii}

    def _project(self, features):
        return self.state["radii"] - centre_distances(features, self.state["centres"])


SPH_METHOD = register(ShallowMethod(
    "sph", "SpH: spherical hashing, one balanced hypersphere a bit, centres moved until pairs overlap by a "
    "quarter (unsupervised)", SpH), listing_order=250)
