"""Hash centres: CSQ's fixed centres (Yuan et al., CVPR 2020) and SHC's semantic centres (Chen et al., ACM TOIS 2025).

Codes and centres are +-1 vectors of q = ``bits`` entries; the Hamming distance of two of them is
(q - a . b) / 2. Centre tables are (C, q) int8 arrays, one row per class.

CSQ ("Central Similarity Quantization for Efficient Image and Video Retrieval", Yuan et al., CVPR 2020; official
code: the hash-centre tutorial notebook of yuanli2333/Hadamard-Matrix-for-hashing). `csq_centres`:

* q a power of two and C <= q: the first C rows of the Sylvester Hadamard matrix H_q (`hadamard`). Any two rows
  are exactly q/2 apart.
* q a power of two and C <= 2q: the first C rows of [H_q; -H_q]. Two rows are q/2 apart, or q apart for a row
  and its negation.
* otherwise (C > 2q, or q not a power of two): random balanced centres, each with exactly floor(q/2) entries -1
  (for odd q this is our choice: one more +1 than -1), all C redrawn together until the minimum pairwise distance
  is >= q/4 and the mean is >= q/2. That acceptance rule is the one of a reimplementation (swuxyj/DeepHash-pytorch
  `CSQ.py`, which asks min > q/4 within 20 tries); the official notebook asks min >= 20 and mean >= 32 for its
  64-bit, 100-class example. Our choice when ``max_tries`` draws all fail: keep the best draw (largest minimum
  distance, then largest mean) and emit a RuntimeWarning that says what was reached. Small q with many classes
  cannot meet the rule (24 bits, 100 classes: about 8 pairs per draw fall under q/4 on average).

Multi-label images (CSQ, `Hash_center_multilables`): the centre is the sign of the mean of the image's label
centres; entries where the mean is 0 are taken from one random +-1 vector drawn once (`random_fill`,
`multi_label_centre`).

SHC ("Deep Hashing with Semantic Hash Centers for Image Retrieval", Chen, Liu, Zhou, Ma, Chen & Zhang, arXiv
2507.08404 / ACM TOIS 2025; official code cc752424640/Deep-Hashing-with-Semantic-Hash-Centers-for-Image-Retrieval).

Stage 1, `class_similarity_from_logits`: a classifier's logits over the training set give a class similarity S
(C x C). For each image of class y, the logit of y is set to -inf, the softmax of the rest is added to row y of
S. Then S <- (S + S^T) / 2; each row is rescaled to [-1, 1],

    S_i <- (S_i - mean S_i) / max(|max S_i - mean S_i|, |min S_i - mean S_i|),

(the mean over the whole row, diagonal included), and the diagonal is set to 1. Our choice: a row whose entries
are all equal (zero denominator) becomes 0 before its diagonal is set. The result is not symmetric in general.

Minimum distance, `shc_min_distance`: the smallest d with sum_{j<d} binom(q, j) >= 2^q / C, computed exactly as
C * sum >= 2^q in integers (the official code uses floats). Values: q = 16, 32, 48, 64 give d = 6, 13, 21, 28
for C = 10 and 4, 10, 17, 24 for C = 100, which agree with the official formula.

Stage 2, `semantic_centres`: with H (q x C) holding the centres as columns,

    min_H (1/C^2) ||S - (1/q) H^T H||_F^2   over H in {-1, +1}^(q x C),   h_i^T h_j <= q - 2d for i != j,

the constraint being "Hamming distance >= d". The official solver alternates, per epoch:

* a continuous copy M in closed form, M = ((2/q^2) H H^T + rho I)^(-1) ((2/q) H S + Lambda + rho H), the
  minimiser over M of ||S - (1/q) H^T M||^2 + <Lambda, H - M> + (rho/2) ||H - M||^2;
* ``inner_sweeps`` sweeps over the classes i, each moving column i to h_i <- sign(h_i - g_i / eta) with
  g_i = (2/q^2) M M^T h_i - (2/q) M s_i + Lambda_i + rho (h_i - m_i), the move accepted only if every distance
  from the new h_i to the other centres stays >= d;
* the dual step Lambda <- Lambda + rho (H - M).

Defaults as in the official code: 30 epochs, 3 sweeps, rho = 0.2, eta = 0.5, Lambda starts at 0.1 everywhere.
The H with the lowest fit term (1/C^2) ||S - (1/q) H^T H||^2 (on the S given) is returned. The solver has no
randomness: ``seed`` only affects the start. Where we simplified or chose:

* Symmetric part. The solver uses (S + S^T) / 2, which has the same fit-term minimisers (H^T H is symmetric); the
  official code uses S as given, and its M-step and H-step are consistent with each other only for symmetric S.
* Distance penalty dropped. The official code also carries a slack K = max(0, q - 2d - H^T H + alpha / beta) and
  adds 1e-4 * sum_{j != i} (2 mu h_j - 2 alpha_ij h_j + beta_ij (...)) to g_i (mu = 0.625), with alpha = 0
  (an integer tensor there: its update adds about 1e-6 and is truncated away) and beta = 1e-6, i.e. about
  1.25e-4 * sum_{j != i} h_j. We drop that term: the constraint is enforced by the acceptance test alone.
* sign(0): an entry of h_i - g_i / eta that is exactly 0 keeps its current value (torch.sign would give 0).
* The start counts as a candidate for the best H, so the result never fits worse than the start.
* Start (`shc_start_centres`). The official code starts from the CSQ centres (q a power of two; its own random
  fill for rows past 2q) or from random signs (otherwise), then runs a per-centre lp-box ADMM (rho from 1e-5,
  x1.09 per step up to 1e7, up to 1000 x 10 steps, up to 50 sweeps over the classes, seed 40) until the minimum
  distance is >= d, scoring centres by mean + min - variance of their distances. We replace that ADMM by a greedy
  repair: the rows of the same start (our CSQ table, its random path limited to 20 draws and silent, or uniform
  random signs) are visited in order; a row closer than d to an earlier row is redrawn (uniform random signs)
  until it is >= d from all earlier rows.
  If a row needs more than ``max_tries`` draws, SaehError (d too large for q and C).
"""

import math
import warnings

import numpy as np

from saeh import validation
from saeh.errors import SaehError
from saeh.pairs import off_diagonal

# Official SHC solver settings (GenerateSemanticHashCenters.py).
SHC_RHO = 0.2
SHC_ETA = 0.5
SHC_DUAL_INIT = 0.1
SHC_INNER_SWEEPS = 3


def is_power_of_two(value):
    return value >= 1 and value & (value - 1) == 0


def hadamard(bits):
    """Sylvester Hadamard matrix H_bits, (bits, bits) int8 of +-1; rows pairwise orthogonal, row 0 all ones."""
    bits = validation.positive_int(bits, "bits")
    if not is_power_of_two(bits):
        raise SaehError(f"bits must be a power of 2 for a Sylvester Hadamard matrix; got {bits!r}")
    matrix = np.ones((1, 1), dtype=np.int8)
    while len(matrix) < bits:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def pairwise_hamming(codes):
    """(C, C) int64 Hamming distances between the +-1 rows of `codes` (diagonal 0)."""
    codes = np.asarray(codes).astype(np.int64)
    return (codes.shape[1] - codes @ codes.T) // 2


def _check_classes(num_classes, name="num_classes"):
    num_classes = validation.positive_int(num_classes, name)
    if num_classes < 2:
        raise SaehError(f"{name} must be at least 2; got {num_classes!r}")
    return num_classes


def _balanced_draw(rng, num_classes, bits):
    """C random +-1 rows, each with exactly floor(bits / 2) entries -1 (placed uniformly at random)."""
    ranks = rng.random((num_classes, bits)).argsort(axis=1)
    return np.where(ranks < bits // 2, -1, 1).astype(np.int8)


def _random_balanced_centres(rng, num_classes, bits, max_tries):
    """(best draw, whether it met min >= bits/4 and mean >= bits/2, its min distance, its mean distance)."""
    best, best_key = None, None
    for _ in range(max_tries):
        centres = _balanced_draw(rng, num_classes, bits)
        distances = off_diagonal(pairwise_hamming(centres))
        minimum, mean = int(distances.min()), float(distances.mean())
        if minimum >= bits / 4 and mean >= bits / 2:
            return centres, True, minimum, mean
        if best_key is None or (minimum, mean) > best_key:
            best, best_key = centres, (minimum, mean)
    return best, False, best_key[0], best_key[1]


def _csq_table(num_classes, bits, rng, max_tries):
    """CSQ centres and whether the random path (if taken) met its acceptance rule."""
    if is_power_of_two(bits) and num_classes <= 2 * bits:
        table = hadamard(bits)
        if num_classes > bits:
            table = np.concatenate([table, -table])
        return table[:num_classes].copy(), True, None
    centres, reached, minimum, mean = _random_balanced_centres(rng, num_classes, bits, max_tries)
    return centres, reached, (minimum, mean)


def csq_centres(num_classes, bits, seed=0, max_tries=1000):
    """CSQ hash centres, (num_classes, bits) int8 of +-1 (see the module docstring for the three cases).

    The random path (C > 2 bits or bits not a power of two) redraws up to `max_tries` times; when no draw meets
    min distance >= bits/4 and mean >= bits/2 it keeps the best one and warns (RuntimeWarning).
    """
    num_classes = _check_classes(num_classes)
    bits = validation.positive_int(bits, "bits")
    max_tries = validation.positive_int(max_tries, "max_tries")
    rng = np.random.default_rng(validation.non_negative_int(seed, "seed"))
    centres, reached, reached_values = _csq_table(num_classes, bits, rng, max_tries)
    if not reached:
        minimum, mean = reached_values
        warnings.warn(
            f"CSQ centres: no draw in {max_tries} met min distance >= {bits / 4:g} and mean >= {bits / 2:g} "
            f"({num_classes} classes, {bits} bits); keeping the best (min {minimum}, mean {mean:.2f})",
            RuntimeWarning,
            stacklevel=2,
        )
    return centres


def random_fill(bits, seed=0):
    """The fixed random +-1 vector (bits,) int8 that fills ties of multi-label centres."""
    bits = validation.positive_int(bits, "bits")
    rng = np.random.default_rng(validation.non_negative_int(seed, "seed"))
    return np.where(rng.random(bits) < 0.5, -1, 1).astype(np.int8)


def _check_pm1(array, name, ndim=None):
    array = np.asarray(array)
    if ndim is not None and array.ndim != ndim:
        raise SaehError(f"{name} must be a {ndim}-D array of +-1; got shape {array.shape}")
    if array.size == 0 or not np.issubdtype(array.dtype, np.number) or not np.all(np.abs(array) == 1):
        raise SaehError(f"{name} must hold only -1 and +1; got values such as {np.unique(array)[:4]}")
    return array


def multi_label_centre(centres, labels_multi_hot, fill):
    """Centre of a multi-label image: sign of the mean of its label centres, zeros taken from `fill`.

    centres: (C, bits) +-1; labels_multi_hot: (C,) or (N, C) 0/1, every row with at least one label;
    fill: (bits,) +-1 (`random_fill`). Returns (bits,) or (N, bits) int8.
    """
    centres = _check_pm1(centres, "centres", ndim=2)
    fill = _check_pm1(fill, "fill", ndim=1)
    if fill.shape[0] != centres.shape[1]:
        raise SaehError(f"fill must have {centres.shape[1]} entries (one per bit); got shape {fill.shape}")
    labels = np.asarray(labels_multi_hot)
    single = labels.ndim == 1
    labels = labels[None] if single else labels
    if labels.ndim != 2 or labels.shape[1] != len(centres):
        raise SaehError(
            f"labels_multi_hot must be ({len(centres)},) or (N, {len(centres)}) 0/1; "
            f"got shape {np.shape(labels_multi_hot)}"
        )
    if not np.all((labels == 0) | (labels == 1)):
        raise SaehError("labels_multi_hot must hold only 0 and 1")
    labels = labels.astype(np.int64)
    counts = labels.sum(axis=1)
    if np.any(counts == 0):
        raise SaehError(f"labels_multi_hot row {int(np.argmin(counts))} has no label; a centre needs at least one")
    # The sign of the mean equals the sign of the sum.
    sums = labels @ centres.astype(np.int64)
    result = np.where(sums > 0, 1, np.where(sums < 0, -1, fill.astype(np.int64)[None, :])).astype(np.int8)
    return result[0] if single else result


def shc_min_distance(bits, num_classes):
    """SHC's minimum centre distance: the smallest d with sum_{j<d} binom(bits, j) >= 2^bits / num_classes."""
    bits = validation.positive_int(bits, "bits")
    num_classes = _check_classes(num_classes)
    target = 2**bits
    total, distance = 0, 0
    while num_classes * total < target:
        total += math.comb(bits, distance)
        distance += 1
    return distance


def class_similarity_from_logits(logits, labels, num_classes):
    """SHC stage 1: the (C, C) float64 class similarity from classifier logits (N, C) and class ids (N,).

    `labels` may also be (N, C) one-hot. Rows lie in [-1, 1], the diagonal is 1 (see the module docstring).
    """
    num_classes = _check_classes(num_classes)
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != num_classes or len(logits) == 0:
        raise SaehError(f"logits must be (N, {num_classes}) with N >= 1; got shape {logits.shape}")
    if not np.issubdtype(logits.dtype, np.number) or not np.all(np.isfinite(logits)):
        raise SaehError("logits must be finite numbers")
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape != logits.shape or not np.all((labels == 0) | (labels == 1)) or np.any(labels.sum(1) != 1):
            raise SaehError(f"labels given as a matrix must be one-hot {logits.shape}; got shape {labels.shape}")
        labels = np.argmax(labels, axis=1)
    if labels.shape != (len(logits),) or not np.issubdtype(labels.dtype, np.number):
        raise SaehError(f"labels must be ({len(logits)},) class ids; got shape {labels.shape}")
    if np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() >= num_classes:
        raise SaehError(
            f"labels must be integers in [0, {num_classes}); got values from {labels.min()} to {labels.max()}"
        )
    labels = labels.astype(np.int64)

    masked = logits.astype(np.float64)
    rows = np.arange(len(masked))
    masked[rows, labels] = -np.inf
    exponentials = np.exp(masked - masked.max(axis=1, keepdims=True))
    probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
    similarity = np.zeros((num_classes, num_classes))
    np.add.at(similarity, labels, probabilities)

    similarity = (similarity + similarity.T) / 2.0
    mean = similarity.mean(axis=1, keepdims=True)
    spread = np.maximum(np.abs(similarity.max(axis=1, keepdims=True) - mean),
                        np.abs(similarity.min(axis=1, keepdims=True) - mean))
    safe = np.where(spread > 0, spread, 1.0)
    similarity = np.where(spread > 0, (similarity - mean) / safe, 0.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def centre_fit(similarity, centres):
    """SHC fit term (1/C^2) ||S - (1/q) H^T H||_F^2 for centres (C, q) of +-1 and S (C, C)."""
    centres = np.asarray(centres, dtype=np.float64)
    similarity = np.asarray(similarity, dtype=np.float64)
    residual = similarity - centres @ centres.T / centres.shape[1]
    return float(np.sum(residual**2)) / len(centres) ** 2


def _check_min_distance(min_distance, bits):
    integer = isinstance(min_distance, (int, np.integer)) and not isinstance(min_distance, bool)
    if not integer or not 0 <= min_distance <= bits:
        raise SaehError(f"min_distance must be an integer in [0, bits = {bits}]; got {min_distance!r}")
    return int(min_distance)


def shc_start_centres(num_classes, bits, min_distance, seed=0, max_tries=10000):
    """A start for `semantic_centres`: (C, bits) int8 +-1 with every pairwise distance >= min_distance.

    CSQ centres (bits a power of two) or uniform random signs, then greedy repair (module docstring).
    """
    num_classes = _check_classes(num_classes)
    bits = validation.positive_int(bits, "bits")
    min_distance = _check_min_distance(min_distance, bits)
    max_tries = validation.positive_int(max_tries, "max_tries")
    rng = np.random.default_rng(validation.non_negative_int(seed, "seed"))
    if is_power_of_two(bits):
        centres, _, _ = _csq_table(num_classes, bits, rng, 20)
    else:
        centres = np.where(rng.random((num_classes, bits)) < 0.5, -1, 1).astype(np.int8)
    centres = centres.astype(np.int64)
    for row in range(1, num_classes):
        earlier = centres[:row]
        candidate = centres[row]
        for _ in range(max_tries):
            if np.all((bits - earlier @ candidate) // 2 >= min_distance):
                break
            candidate = np.where(rng.random(bits) < 0.5, -1, 1)
        else:
            raise SaehError(
                f"min_distance = {min_distance} not reached for centre {row} in {max_tries} random draws "
                f"({num_classes} classes, {bits} bits); it is probably too large (shc_min_distance gives "
                f"{shc_min_distance(bits, num_classes)})"
            )
        centres[row] = candidate
    return centres.astype(np.int8)


def semantic_centres(similarity, bits, min_distance, seed=0, epochs=30, rho=SHC_RHO, eta=SHC_ETA,
                     inner_sweeps=SHC_INNER_SWEEPS, dual_init=SHC_DUAL_INIT):
    """SHC stage 2: (C, bits) int8 +-1 centres fitting `similarity` (C, C), pairwise distances >= min_distance.

    Starts from `shc_start_centres(C, bits, min_distance, seed)`; alternating solver as in the module docstring.
    Deterministic given the inputs and the seed.
    """
    similarity = np.asarray(similarity)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or len(similarity) < 2:
        raise SaehError(f"similarity must be a square (C, C) matrix with C >= 2; got shape {similarity.shape}")
    if not np.issubdtype(similarity.dtype, np.number) or not np.all(np.isfinite(similarity)):
        raise SaehError("similarity must hold finite numbers")
    bits = validation.positive_int(bits, "bits")
    min_distance = _check_min_distance(min_distance, bits)
    epochs = validation.positive_int(epochs, "epochs")
    inner_sweeps = validation.positive_int(inner_sweeps, "inner_sweeps")
    validation.positive_number(rho, "rho")
    validation.positive_number(eta, "eta")
    validation.finite_number(dual_init, "dual_init")

    num_classes = len(similarity)
    start = shc_start_centres(num_classes, bits, min_distance, seed=seed)
    target = similarity.astype(np.float64)
    symmetric = (target + target.T) / 2.0
    q = float(bits)
    codes = start.T.astype(np.float64)  # H, (q, C): one centre per column
    dual = np.full((bits, num_classes), float(dual_init))
    identity = np.eye(bits)
    best, best_fit = start.copy(), centre_fit(target, start)
    for _ in range(epochs):
        copy = np.linalg.solve(2.0 / q**2 * codes @ codes.T + rho * identity,
                               2.0 / q * codes @ symmetric + dual + rho * codes)
        quadratic = 2.0 / q**2 * copy @ copy.T
        linear = 2.0 / q * copy @ symmetric
        for _ in range(inner_sweeps):
            for column in range(num_classes):
                current = codes[:, column]
                gradient = (quadratic @ current - linear[:, column] + dual[:, column]
                            + rho * (current - copy[:, column]))
                step = current - gradient / eta
                proposal = np.where(step > 0, 1.0, np.where(step < 0, -1.0, current))
                if np.array_equal(proposal, current):
                    continue
                distances = (q - codes.T @ proposal) / 2.0
                distances[column] = q
                if distances.min() >= min_distance:
                    codes[:, column] = proposal
        dual += rho * (codes - copy)
        fit = centre_fit(target, codes.T)
        if fit < best_fit:
            best, best_fit = codes.T.astype(np.int8), fit
    return best
