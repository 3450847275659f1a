"""ADSH's discrete step: database codes in closed form (Jiang & Li, "Asymmetric Deep Supervised Hashing", AAAI 2018).

Notation: the database (also the training set) has n points with codes V in {-1, +1}^(n x c), c = ``bits``.
Each outer iteration samples m of them, Omega = ``sampled_index``; U~ (m x c) holds the network's tanh outputs
for the sampled points (row i for Omega_i) and S (m x n) their similarity to the whole database. The objective
(the paper's, and `calcLoss` of the official MATLAB code) is

    L(V) = sum_{i in Omega} sum_j (u~_i^T v_j - c S_ij)^2 + gamma sum_{i in Omega} ||v_{Omega_i} - u~_i||^2.

Soft similarity (`soft_similarity`; both official implementations): S_ij = 1 when sampled point i and database
point j share a label, and -r otherwise, with r = #similar / #dissimilar over the m x n block. Our reading of the
edge cases, which the formula gives directly: with no dissimilar pair, S is all ones (r is never used); with no
similar pair r = 0, so S is all zeros.

V update (`update_database_codes`). With U-bar (n x c) equal to U~ at rows Omega and 0 elsewhere, and v_j of
constant norm c,

    L(V) = tr(V U~^T U~ V^T) + <V, Q> + const,     Q = -2c S^T U~ - 2 gamma U-bar.

As a function of column k alone (the others fixed), L = V_k^T (2 V^_k U~_k^T u~_k + Q_k) + const, where V^_k and
U~_k drop column k and u~_k is column k of U~; so

    V_k = -sign(2 V^_k U~_k^T u~_k + Q_k)

is the exact minimiser over V_k in {-1, +1}^n. The columns are updated in order k = 1..c, each using the columns
already updated (as the official code does, in place). Our choice for a tie (argument exactly 0, where both
values give the same objective): V_jk = +1 (np.sign would leave 0). The input V may contain zeros (the official
PyTorch code starts from V = 0): each column update is still the exact minimiser given the other columns, and
the result holds only +-1. The official MATLAB code uses sign(U~) in the
S^T U~ term; this module follows the PyTorch code and the objective (U~ itself).

`adsh_objective` returns L(V) as written, a plain sum (the official PyTorch log divides it by m * n).
"""

import numpy as np

from saeh import validation
from saeh.errors import SaehError
from saeh.pairs import share_a_label


def _label_block(labels_sampled, labels_all):
    """(m, n) bool: True where sampled point i and database point j share a label."""
    return share_a_label(labels_sampled, labels_all, names=("labels_sampled", "labels_all"))


def soft_similarity(labels_sampled, labels_all):
    """ADSH's soft similarity (m, n) float64: 1 for pairs sharing a label, -r otherwise (r = #similar / #dissimilar).

    labels: (N,) class ids or (N, C) multi-hot, the same kind for both arguments.
    """
    similar = _label_block(labels_sampled, labels_all)
    return np.where(similar, 1.0, -_ratio(similar))


def dissimilar_weight(labels_sampled, labels_all):
    """r of `soft_similarity` alone (0 when no pair is dissimilar), without building the (m, n) float64 block."""
    return _ratio(_label_block(labels_sampled, labels_all))


def _ratio(similar):
    n_similar = int(np.count_nonzero(similar))
    n_dissimilar = similar.size - n_similar
    return n_similar / n_dissimilar if n_dissimilar else 0.0


def _check_inputs(U_sampled, V, S, sampled_index, bits, gamma):
    """Validated float64 copies (U~ (m, c), V (n, c), S (m, n)), the index array, c and gamma."""
    bits = validation.positive_int(bits, "bits")
    gamma = validation.non_negative_number(gamma, "gamma")
    U = np.asarray(U_sampled)
    if U.ndim != 2 or U.shape[1] != bits or len(U) == 0:
        raise SaehError(f"U_sampled must be (m, bits = {bits}) with m >= 1; got shape {U.shape}")
    if not np.issubdtype(U.dtype, np.number) or not np.all(np.isfinite(U)):
        raise SaehError("U_sampled must hold finite numbers")
    codes = np.asarray(V)
    if codes.ndim != 2 or codes.shape[1] != bits or len(codes) == 0:
        raise SaehError(f"V must be (n, bits = {bits}) with n >= 1; got shape {codes.shape}")
    if not np.issubdtype(codes.dtype, np.number) or not np.all(np.isin(codes, (-1, 0, 1))):
        raise SaehError(
            f"V must hold only -1, +1 (or 0 for a code not set yet); got values such as {np.unique(codes)[:4]}"
        )
    m, n = len(U), len(codes)
    similarity = np.asarray(S)
    if similarity.shape != (m, n):
        raise SaehError(f"S must be (m = {m}, n = {n}) (sampled points x database); got shape {similarity.shape}")
    if not np.issubdtype(similarity.dtype, np.number) or not np.all(np.isfinite(similarity)):
        raise SaehError("S must hold finite numbers")
    index = np.asarray(sampled_index)
    if index.shape != (m,) or not np.issubdtype(index.dtype, np.integer):
        raise SaehError(f"sampled_index must be ({m},) integers (one database row per row of U_sampled); "
                        f"got shape {index.shape}, dtype {index.dtype}")
    if index.min() < 0 or index.max() >= n:
        raise SaehError(f"sampled_index must lie in [0, {n}); got values from {index.min()} to {index.max()}")
    if len(np.unique(index)) != m:
        raise SaehError("sampled_index must not repeat a database row (ADSH samples without replacement)")
    return (U.astype(np.float64), codes.astype(np.float64), similarity.astype(np.float64), index.astype(np.int64),
            bits, gamma)


def _check_prior(prior, prior_weight, shape):
    """The prior as float64 (n, c) and its weight, or (None, 0.0) without one."""
    prior_weight = validation.non_negative_number(prior_weight, "prior_weight")
    if prior is None:
        return None, 0.0
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != shape or not np.all(np.isfinite(prior)):
        raise SaehError(f"prior must be finite numbers of shape {shape} (one row per database code); got shape "
                        f"{prior.shape}")
    return prior, prior_weight


def update_database_codes(V, U_sampled, sampled_index, S, bits, gamma, prior=None, prior_weight=0.0):
    """One ADSH V step: the new database codes (n, bits) int8 of +-1, columns updated in order (module docstring).

    V: (n, bits) current codes (+-1, or 0 for "not set yet"); U_sampled: (m, bits) network outputs of the sampled
    points; sampled_index: (m,) distinct database rows of those points; S: (m, n) similarity; gamma >= 0.
    prior, prior_weight: an optional (n, bits) target P of the codes and its weight mu >= 0, adding
    mu sum_j ||v_j - p_j||^2 to the objective (DSAH's label codes). With ||v_j||^2 = c constant that adds -2 mu P to
    Q, so each column update stays the exact minimiser.
    """
    U, codes, similarity, index, bits, gamma = _check_inputs(U_sampled, V, S, sampled_index, bits, gamma)
    prior, prior_weight = _check_prior(prior, prior_weight, codes.shape)
    placed = np.zeros_like(codes)
    placed[index] = U
    linear = -2.0 * bits * similarity.T @ U - 2.0 * gamma * placed  # Q, (n, c)
    if prior is not None:
        linear -= 2.0 * prior_weight * prior
    gram = U.T @ U  # U~^T U~; its row k without entry k is U~_k^T u~_k
    for k in range(bits):
        others = np.arange(bits) != k
        score = 2.0 * codes[:, others] @ gram[others, k] + linear[:, k]
        codes[:, k] = np.where(score > 0, -1.0, 1.0)
    return codes.astype(np.int8)


def adsh_objective(U_sampled, V, S, sampled_index, bits, gamma, prior=None, prior_weight=0.0):
    """ADSH objective sum_{i, j} (u~_i^T v_j - c S_ij)^2 + gamma sum_i ||v_{Omega_i} - u~_i||^2, plus
    prior_weight * sum_j ||v_j - p_j||^2 with a prior (a float)."""
    U, codes, similarity, index, bits, gamma = _check_inputs(U_sampled, V, S, sampled_index, bits, gamma)
    prior, prior_weight = _check_prior(prior, prior_weight, codes.shape)
    fit = U @ codes.T - bits * similarity
    quantisation = codes[index] - U
    extra = 0.0 if prior is None else prior_weight * np.sum((codes - prior) ** 2)
    return float(np.sum(fit**2) + gamma * np.sum(quantisation**2) + extra)
