"""CNNH stage 1 (Xia, Pan, Lai, Liu & Yan, AAAI 2014): approximate hash codes learned from labels alone.

Our reading of the paper: with S_ij = +1 when images i and j are similar (here: share at least one label) and -1
otherwise, stage 1 looks for codes H in {-1, 1}^(N x q) whose scaled inner products reproduce S,

    min_H ||S - H H^T / q||_F^2.

(For +-1 codes H_i . H_j / q = 1 - 2 * hamming(i, j) / q, so the ideal gives identical codes to similar images and
complementary codes to dissimilar ones.) The paper relaxes H to [-1, 1]^(N x q) and solves the relaxed problem by
randomized coordinate descent: one entry H_ij changes at a time, all others fixed. With D = H H^T - q S and the
entry moved by d, the objective ||D||_F^2 changes by a quartic in d,

    g(d) = d^4 + a3 d^3 + a2 d^2 + a1 d,   a3 = 4 H_ij,   a2 = 2 (H_.j^T H_.j + H_ij^2 + D_ii),   a1 = 4 H_.j^T D_i.,

and d is restricted to keep H_ij + d in [-1, 1]. Our choice of step: the exact minimiser of g over that interval
(candidates: the real roots of g', the interval ends and d = 0), so every update lowers the objective or leaves
it unchanged, and the relaxed objective never increases (up to floating-point round-off, of order 1e-12
relative). The approximate codes are sign(H) with 0 -> -1.

Our choice of order: one "iteration" is a sweep visiting every entry of H once, in a fresh seeded random
permutation. H starts uniform in [-1, 1] (seeded). Sweeps stop after ``n_iter`` (default 10) or as soon as a
sweep lowers the objective by less than ``tol`` (default 1e-4, relative). On single-label data the result is one
code per class in practice (MNIST, 32 bits: all 60,000 codes of a digit identical after 5 sweeps, digits 15 to 20
bits apart, objective 1.003 -> 0.717).

Two ways to compute a1, with the same results up to round-off (same seed -> same visiting order and start):

* low rank (single-label data): S = 2 Y Y^T - 1 1^T with Y one-hot (N x c), so the column S_.i^T H_.j needed by
  a1 is 2 (Y^T H)[class(i), j] - (1^T H)_j. Keeping G = H^T H (q x q), C = Y^T H (c x q) and s = 1^T H up to date
  makes each update O(q) and the memory O(N q); the N x N matrix (29 GB in float64 for 60,000 samples) is never
  formed. The update loop is plain Python: MNIST's 60,000 x 32 entries take about 10-20 s per sweep on a CPU core,
  about 70 s in all.
* dense (multi-label data, or on request): S is stored as an N x N int8 matrix and S H is kept up to date, O(N)
  per update and O(N^2 q) per sweep. The memory limit ``max_dense_bytes`` (2 GiB by default) caps N at about
  46,000 samples; above it a clear error says how many samples fit.

The codes come back in the row order of ``labels``: the training pipeline must carry each code with its image
(index the codes with the same permutation as the images when shuffling), or stage 2 regresses the wrong targets.
"""

import math

import numpy as np

from baselines.shallow import check_labels
from saeh import validation
from saeh.errors import SaehError
from saeh.pairs import share_a_label

METHODS = ("auto", "low_rank", "dense")
DEFAULT_MAX_DENSE_BYTES = 2 * 1024**3


def _cubic_real_roots(b, c, d):
    """Real roots of x^3 + b x^2 + c x + d (Cardano / trigonometric form), each polished by two Newton steps."""
    shift = b / 3.0
    p = c - b * shift
    q = 2.0 * shift**3 - c * shift + d
    half_q = 0.5 * q
    discriminant = half_q * half_q + (p / 3.0) ** 3
    if discriminant >= 0.0:
        root = math.sqrt(discriminant)
        u = -half_q + root
        v = -half_q - root
        roots = [math.copysign(abs(u) ** (1.0 / 3.0), u) + math.copysign(abs(v) ** (1.0 / 3.0), v) - shift]
    else:
        radius = 2.0 * math.sqrt(-p / 3.0)
        cosine = max(-1.0, min(1.0, 3.0 * q / (p * radius)))
        angle = math.acos(cosine) / 3.0
        roots = [radius * math.cos(angle - 2.0 * math.pi * k / 3.0) - shift for k in range(3)]
    polished = []
    for x in roots:
        for _ in range(2):
            slope = (3.0 * x + 2.0 * b) * x + c
            if slope == 0.0:
                break
            x -= (((x + b) * x + c) * x + d) / slope
        polished.append(x)
    return polished


def minimise_quartic_step(a3, a2, a1, low, high):
    """argmin over d in [low, high] (low <= 0 <= high) of g(d) = d^4 + a3 d^3 + a2 d^2 + a1 d; ties prefer d = 0."""
    best_step, best_value = 0.0, 0.0
    candidates = [low, high]
    # g'(d) = 4 d^3 + 3 a3 d^2 + 2 a2 d + a1; its real roots are the interior stationary points.
    for root in _cubic_real_roots(0.75 * a3, 0.5 * a2, 0.25 * a1):
        if low < root < high:
            candidates.append(root)
    for step in candidates:
        value = (((step + a3) * step + a2) * step + a1) * step
        if value < best_value:
            best_step, best_value = step, value
    return best_step


def _class_structure(labels):
    """(class index per sample, number of classes) if every sample has exactly one label, else None."""
    if labels.ndim == 1:
        _, class_index = np.unique(labels, return_inverse=True)
        return class_index.astype(np.int64), int(class_index.max()) + 1
    if np.all(labels.sum(axis=1) == 1):
        return np.argmax(labels, axis=1).astype(np.int64), labels.shape[1]
    return None


def dense_similarity(labels):
    """S (N, N) int8: +1 where two samples share a label (and on the diagonal), -1 elsewhere."""
    similarity = np.where(share_a_label(labels, labels), np.int8(1), np.int8(-1))
    np.fill_diagonal(similarity, 1)
    return similarity


def similarity_objective(relaxed, labels):
    """||S - H H^T / q||_F^2 / N^2 computed directly from the dense S (small N only; for checks and tests)."""
    relaxed = np.asarray(relaxed, dtype=np.float64)
    similarity = dense_similarity(check_labels(labels, len(relaxed))).astype(np.float64)
    residual = similarity - relaxed @ relaxed.T / relaxed.shape[1]
    return float(np.sum(residual**2)) / len(relaxed) ** 2


def _normalised_objective(gram, trace_hsh, n_samples, n_bits):
    """||S - H H^T/q||^2 / N^2 = (||H^T H||^2 - 2 q tr(H^T S H) + q^2 N^2) / (q^2 N^2), S having +-1 entries."""
    total = float(np.sum(gram * gram)) - 2.0 * n_bits * trace_hsh + float(n_bits * n_samples) ** 2
    return total / float(n_bits * n_samples) ** 2


class _LowRankState:
    """Running sums for single-label data: G = H^T H, C = Y^T H (per-class column sums), s = 1^T H."""

    def __init__(self, relaxed, class_index, n_classes):
        self.class_index = class_index
        self.gram = relaxed.T @ relaxed
        self.class_sums = np.zeros((n_classes, relaxed.shape[1]))
        np.add.at(self.class_sums, class_index, relaxed)
        self.column_sums = relaxed.sum(axis=0)

    def s_times_h(self, row, column):
        """(S H)[row, column] = 2 C[class(row), column] - s[column]."""
        return 2.0 * self.class_sums[self.class_index[row], column] - self.column_sums[column]

    def update(self, row, column, step):
        self.class_sums[self.class_index[row], column] += step
        self.column_sums[column] += step

    def trace_hsh(self, relaxed):
        return 2.0 * float(np.sum(self.class_sums**2)) - float(self.column_sums @ self.column_sums)


class _DenseState:
    """Running products for any S: G = H^T H and (S H)^T kept as a (q, N) array for contiguous updates."""

    def __init__(self, relaxed, similarity):
        self.similarity = similarity
        self.gram = relaxed.T @ relaxed
        s_times_h = np.empty((relaxed.shape[1], len(relaxed)))
        for start in range(0, len(relaxed), 4096):
            s_times_h[:, start : start + 4096] = (similarity[start : start + 4096].astype(np.float64) @ relaxed).T
        self.s_times_h_t = s_times_h

    def s_times_h(self, row, column):
        return self.s_times_h_t[column, row]

    def update(self, row, column, step):
        # S is symmetric: column `row` of S equals its row `row`.
        self.s_times_h_t[column] += step * self.similarity[row]

    def trace_hsh(self, relaxed):
        return float(np.sum(self.s_times_h_t.T * relaxed))


def _sweep(relaxed, state, order, n_bits):
    """Visit the entries in `order` (flat indices row * q + column), each moved to its exact 1-D minimiser."""
    gram = state.gram
    q = float(n_bits)
    row_norms = np.einsum("ij,ij->i", relaxed, relaxed).tolist()  # ||H_i||^2, kept up to date below
    for flat in order:
        row, column = divmod(flat, n_bits)
        code = relaxed[row]
        value = float(code[column])
        gram_column = gram[column]
        a1 = 4.0 * (float(code @ gram_column) - q * state.s_times_h(row, column))
        a2 = 2.0 * (float(gram_column[column]) + value * value + row_norms[row] - q)
        # Shortcut, exact: for a2 > 6, g'' = 12 d^2 + 6 a3 d + 2 a2 > 0 on |d| <= 2, so g is convex there and an
        # entry at a bound whose slope a1 = g'(0) points outwards stays put.
        if a2 > 6.0 and ((value == 1.0 and a1 <= 0.0) or (value == -1.0 and a1 >= 0.0)):
            continue
        low, high = -1.0 - value, 1.0 - value
        step = minimise_quartic_step(4.0 * value, a2, a1, low, high)
        if step == 0.0:
            continue
        # Land exactly on a bound when the step goes there, so the shortcut above recognises it.
        new_value = 1.0 if step == high else -1.0 if step == low else value + step
        # G = H^T H: row and column `column` gain step * H_row (old values); the diagonal also gains step^2.
        change = step * code
        gram[column] += change
        gram[:, column] += change
        gram[column, column] += step * step
        state.update(row, column, step)
        code[column] = new_value
        row_norms[row] += new_value * new_value - value * value


def relaxed_codes(labels, hash_bits, seed=0, n_iter=10, tol=1e-4, method="auto",
                  max_dense_bytes=DEFAULT_MAX_DENSE_BYTES):
    """Solve the relaxed stage-1 problem; return (H (N, q) float64 in [-1, 1], objective after each sweep).

    The objective is ||S - H H^T / q||_F^2 / N^2 (mean squared error per pair); the first entry is the start's.
    `method`: "auto" (low rank for single-label data, dense otherwise), "low_rank" or "dense".
    """
    hash_bits = validation.positive_int(hash_bits, "hash_bits")
    n_iter = validation.positive_int(n_iter, "n_iter")
    seed = validation.non_negative_int(seed, "seed")
    validation.non_negative_number(tol, "tol")
    validation.one_of(method, "method", METHODS)
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2) or len(labels) == 0:
        raise SaehError(f"labels must be (N,) class ids or (N, C) multi-hot with N >= 1; got shape {labels.shape}")
    labels = check_labels(labels, len(labels))
    n_samples = len(labels)

    structure = _class_structure(labels)
    if method == "auto":
        method = "low_rank" if structure is not None else "dense"
    if method == "low_rank" and structure is None:
        raise SaehError("method='low_rank' needs single-label data (one label per sample); use 'dense' or 'auto'")
    if method == "dense":
        needed = n_samples * n_samples
        if needed > max_dense_bytes:
            largest = math.isqrt(int(max_dense_bytes))
            kind = "multi-label data needs" if structure is None else "the dense path needs"
            raise SaehError(
                f"CNNH stage 1: {kind} the N x N similarity matrix; N = {n_samples:,} samples take "
                f"{needed / 1024**3:.1f} GiB (1 byte per pair), over max_dense_bytes = "
                f"{max_dense_bytes / 1024**3:.1f} GiB, "
                f"which handles at most {largest:,} samples. Use a subset of the training set or raise max_dense_bytes."
            )

    rng = np.random.default_rng(seed)
    relaxed = rng.uniform(-1.0, 1.0, size=(n_samples, hash_bits))
    similarity = dense_similarity(labels) if method == "dense" else None
    history = []
    for sweep in range(n_iter + 1):
        # Rebuild the running sums from H each sweep, so round-off cannot accumulate across sweeps.
        if method == "low_rank":
            state = _LowRankState(relaxed, *structure)
        else:
            state = _DenseState(relaxed, similarity)
        history.append(_normalised_objective(state.gram, state.trace_hsh(relaxed), n_samples, hash_bits))
        if sweep == n_iter:
            break
        if sweep > 0 and history[-2] - history[-1] <= tol * abs(history[-2]):
            break
        _sweep(relaxed, state, rng.permutation(n_samples * hash_bits).tolist(), hash_bits)
    return relaxed, history


def approximate_codes(labels, hash_bits, seed=0, n_iter=10, tol=1e-4, method="auto",
                      max_dense_bytes=DEFAULT_MAX_DENSE_BYTES):
    """CNNH stage-1 approximate codes: (N, hash_bits) int8 in {-1, +1}, row i for labels[i].

    labels: (N,) class ids or (N, C) multi-hot. The relaxed solution of `relaxed_codes` is binarised with
    sign, 0 -> -1. Same labels, bits and seed give the same codes.
    """
    relaxed, _ = relaxed_codes(
        labels, hash_bits, seed=seed, n_iter=n_iter, tol=tol, method=method, max_dense_bytes=max_dense_bytes
    )
    return np.where(relaxed > 0, 1, -1).astype(np.int8)
