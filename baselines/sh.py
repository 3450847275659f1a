"""SH, spectral hashing (Weiss, Torralba & Fergus, NIPS 2008), as the HABIR toolbox (willard-yuan/hashing-baseline-
for-image-retrieval, commit 8228378) runs it: Method-SH/trainSH.m and compressSH.m, which are Weiss's released code.
Unsupervised.

Fit on the training features X (N, D):

1. PCA: V = (X - mu) W with W the top p = min(bits, D) principal directions (trainSH.m l.23-26).
2. A box around V: mn = min(V) - eps and mx = max(V) + eps per dimension, eps = 2.2e-16, MATLAB's `eps`
   (l.31-32: the 5th/95th percentile bounds there are overwritten on the same lines); R = mx - mn.
   A direction along which the training features do not vary gets a box of width 2 eps, whose modes are never
   among the lowest.
3. The 1-D eigenfunctions of a uniform density on [mn_d, mx_d] are cos(k pi (v_d - mn_d) / R_d) with eigenvalue
   falling as omega^2 = (k pi / R_d)^2. Candidates: the constant mode and, for each dimension d, k = 1 ..
   ceil((bits + 1) R_d / max R) - 1 (l.36-46). They are sorted by omega^2, ascending and stable (MATLAB's `sort`
   keeps ties in order: dimension by dimension, the lower k first); the constant mode is dropped and the next
   `bits` kept (l.47-51). A mode is stored as the row of its k per dimension (zero elsewhere).

Encode (compressSH.m l.21-31): project_i(x) = prod_d sin(pi/2 + omega_id (v_d - mn_d)), with omega_id = k_id pi /
R_d and v = (x - mu) W: the cosine of the selected mode (the other dimensions' factors are sin(pi/2) = 1); the code
bit is [project > 0] (0 maps to 0; MATLAB's `U > 0` too). Points outside the training box are encoded by the same
formula.

Protocol: the toolbox takes W from the training set and the queries together (demo.m l.135) and centres by their
joint mean (utils/construct_data.m l.82-83); we take W and mu from the training features only. No hyperparameters.
"""

import numpy as np

from baselines.shallow import ShallowHasher, check_sample_count, feature_mean, in_chunks, principal_directions
from baselines.shallow_methods import ShallowMethod
from saeh.registry import register

MATLAB_EPS = np.finfo(np.float64).eps  # 2^-52, MATLAB's `eps`


def select_modes(low, high, hash_bits):
    """The `hash_bits` lowest non-constant 1-D modes of the box [low, high] (p,): (hash_bits, p) integer k per
    dimension, one non-zero entry a row, ordered by omega^2 = (k pi / (high - low))^2 (ties: dimension, then k)."""
    extent = high - low
    n_modes = np.ceil((hash_bits + 1) * extent / extent.max()).astype(int)  # the largest k per dimension, plus one
    candidates = [np.zeros(len(extent), dtype=int)]  # the constant mode first
    for dim, count in enumerate(n_modes):
        for k in range(1, count):
            mode = np.zeros(len(extent), dtype=int)
            mode[dim] = k
            candidates.append(mode)
    candidates = np.array(candidates)
    omega_squared = ((candidates * (np.pi / extent)) ** 2).sum(axis=1)
    order = np.argsort(omega_squared, kind="stable")
    return candidates[order[1 : hash_bits + 1]]


def eigenfunction_values(projected, low, high, modes):
    """prod_d sin(pi/2 + k_id pi (v_d - low_d) / (high_d - low_d)) for each row v of `projected` and mode i."""
    omegas = modes * (np.pi / (high - low))
    shifted = projected - low
    return np.stack([np.prod(np.sin(shifted * omega + np.pi / 2), axis=1) for omega in omegas], axis=1)


class SH(ShallowHasher):
    """Spectral hashing (labels passed to fit are ignored)."""

    name = "sh"
    supervised = False

    def _fit(self, features, labels, hyperparameters):
        n_samples, dim = features.shape
        check_sample_count("sh", n_samples)
        mean = feature_mean(features)
        directions = principal_directions(features, mean, min(self.hash_bits, dim))
        projected = in_chunks(features, lambda chunk: (chunk - mean) @ directions)
        low, high = projected.min(axis=0) - MATLAB_EPS, projected.max(axis=0) + MATLAB_EPS
        modes = select_modes(low, high, self.hash_bits)
        return {"mean": mean, "directions": directions, "low": low, "high": high, "modes": modes}

    def _project(self, features):
        state = self.state
        return in_chunks(features, lambda chunk: eigenfunction_values(
            (chunk - state["mean"]) @ state["directions"], state["low"], state["high"], state["modes"]))


SH_METHOD = register(ShallowMethod(
    "sh", "SH: spectral hashing, signs of the lowest 1-D eigenfunctions along the principal directions "
    "(unsupervised)", SH), listing_order=230)
