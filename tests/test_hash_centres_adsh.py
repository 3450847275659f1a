"""CSQ / SHC hash centres (baselines.hash_centres) and ADSH's discrete V step (baselines.adsh_solver)."""

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from baselines.adsh_solver import adsh_objective, dissimilar_weight, soft_similarity, update_database_codes
from baselines.hash_centres import (
    centre_fit,
    class_similarity_from_logits,
    csq_centres,
    hadamard,
    multi_label_centre,
    pairwise_hamming,
    random_fill,
    semantic_centres,
    shc_min_distance,
    shc_start_centres,
)
from saeh.errors import SaehError


def off_diagonal_distances(codes):
    codes = np.asarray(codes, dtype=np.int64)
    distances = np.array([[np.sum(a != b) for b in codes] for a in codes])
    return distances[~np.eye(len(codes), dtype=bool)]


# ---------------------------------------------------------------- Hadamard and CSQ centres


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16, 32, 64])
def test_hadamard_rows_are_orthogonal_pm1(bits):
    matrix = hadamard(bits)
    assert matrix.shape == (bits, bits) and matrix.dtype == np.int8
    assert np.all(np.abs(matrix) == 1)
    assert np.array_equal(matrix.astype(np.int64) @ matrix.T.astype(np.int64), bits * np.eye(bits, dtype=np.int64))


def test_hadamard_is_sylvesters():
    # Sylvester's H_q has entry (-1)^popcount(i & j): H_2 = [[1, 1], [1, -1]], H_2q = [[H_q, H_q], [H_q, -H_q]].
    matrix = hadamard(16)
    expected = [[(-1) ** bin(i & j).count("1") for j in range(16)] for i in range(16)]
    assert np.array_equal(matrix, expected)


@pytest.mark.parametrize("bits", [0, 3, 12, 48, -4, 2.0, True])
def test_hadamard_refuses_non_powers_of_two(bits):
    with pytest.raises(SaehError, match="bits"):
        hadamard(bits)


@pytest.mark.parametrize("num_classes, bits", [(10, 16), (10, 32), (10, 64)])
def test_csq_hadamard_rows_are_exactly_half_apart(num_classes, bits):
    centres = csq_centres(num_classes, bits)
    assert centres.shape == (num_classes, bits) and centres.dtype == np.int8
    assert np.all(off_diagonal_distances(centres) == bits // 2)
    assert np.array_equal(centres, hadamard(bits)[:num_classes])


def test_csq_uses_negated_hadamard_rows_beyond_bits():
    centres = csq_centres(100, 64)
    distances = off_diagonal_distances(centres)
    assert distances.min() == 32
    assert set(np.unique(distances)) == {32, 64}  # a row and its negation are 64 apart
    assert np.array_equal(centres[64:], -hadamard(64)[:36])


@pytest.mark.parametrize("num_classes, bits", [(10, 12), (10, 24), (10, 48), (100, 48), (40, 16)])
def test_csq_random_path_meets_its_acceptance_rule(num_classes, bits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        centres = csq_centres(num_classes, bits, seed=3)
    distances = off_diagonal_distances(centres)
    assert distances.min() >= bits / 4 and distances.mean() >= bits / 2
    assert np.all(np.sum(centres == -1, axis=1) == bits // 2)  # balanced rows
    assert np.array_equal(centres, csq_centres(num_classes, bits, seed=3))
    assert not np.array_equal(centres, csq_centres(num_classes, bits, seed=4))


def test_csq_random_path_keeps_the_best_draw_and_warns_when_the_rule_is_out_of_reach():
    with pytest.warns(RuntimeWarning, match="keeping the best"):
        centres = csq_centres(100, 24, seed=0, max_tries=5)
    assert centres.shape == (100, 24)
    assert np.all(np.sum(centres == -1, axis=1) == 12)


def test_csq_odd_bits_have_floor_half_minus_ones():
    centres = csq_centres(5, 7, seed=1)
    assert np.all(np.sum(centres == -1, axis=1) == 3)
    assert np.all(np.abs(centres) == 1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_classes=1, bits=16), "num_classes"),
    (dict(num_classes=10, bits=0), "bits"),
    (dict(num_classes=10, bits=16, seed=-1), "seed"),
    (dict(num_classes=10, bits=12, max_tries=0), "max_tries"),
])
def test_csq_bad_arguments_raise(kwargs, name):
    with pytest.raises(SaehError, match=name):
        csq_centres(**kwargs)


def test_multi_label_centre_is_sign_of_mean_with_fill_on_ties():
    centres = np.array([[1, 1, -1, -1], [1, -1, 1, -1], [-1, -1, -1, 1]], dtype=np.int8)
    fill = np.array([1, -1, 1, 1], dtype=np.int8)
    labels = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]])
    result = multi_label_centre(centres, labels, fill)
    # Row 0: sums (2, 0, 0, -2) -> (1, fill, fill, -1); row 1: sums (1, -1, -1, -1); row 2: the centre itself.
    assert np.array_equal(result, [[1, -1, 1, -1], [1, -1, -1, -1], [-1, -1, -1, 1]])
    assert np.array_equal(multi_label_centre(centres, labels[0], fill), result[0])
    assert result.dtype == np.int8


def test_random_fill_is_seeded_pm1():
    assert np.array_equal(random_fill(64, seed=5), random_fill(64, seed=5))
    assert set(np.unique(random_fill(64, seed=5))) == {-1, 1}


@pytest.mark.parametrize("labels, fill, name", [
    (np.array([[0, 0, 0]]), np.ones(4), "labels_multi_hot"),
    (np.array([[2, 0, 0]]), np.ones(4), "labels_multi_hot"),
    (np.array([[1, 0]]), np.ones(4), "labels_multi_hot"),
    (np.array([[1, 0, 0]]), np.ones(3), "fill"),
    (np.array([[1, 0, 0]]), np.zeros(4), "fill"),
])
def test_multi_label_centre_bad_inputs_raise(labels, fill, name):
    centres = np.array([[1, 1, -1, -1], [1, -1, 1, -1], [-1, -1, -1, 1]])
    with pytest.raises(SaehError, match=name):
        multi_label_centre(centres, labels, fill)


# ---------------------------------------------------------------- SHC minimum distance


@pytest.mark.parametrize("bits, expected", [(16, (6, 4)), (32, (13, 10)), (48, (21, 17)), (64, (28, 24))])
def test_shc_min_distance_matches_the_methods_table(bits, expected):
    assert (shc_min_distance(bits, 10), shc_min_distance(bits, 100)) == expected


@pytest.mark.parametrize("bits", [1, 2, 5, 8, 12, 16, 24, 31, 32, 48, 64, 128])
@pytest.mark.parametrize("num_classes", [2, 3, 10, 21, 100, 1000])
def test_shc_min_distance_is_the_smallest_d_of_the_definition(bits, num_classes):
    threshold = Fraction(2**bits, num_classes)

    def ball(d):
        return sum(math.comb(bits, j) for j in range(d))

    d = shc_min_distance(bits, num_classes)
    assert ball(d) >= threshold
    assert ball(d - 1) < threshold


@pytest.mark.parametrize("bits", [4, 8, 11])
@pytest.mark.parametrize("num_classes", [2, 10, 100])
def test_shc_min_distance_by_enumerating_all_codes(bits, num_classes):
    weights = np.array([bin(word).count("1") for word in range(2**bits)])
    d = 0
    while np.sum(weights < d) * num_classes < 2**bits:  # number of codes within distance d - 1 of a code
        d += 1
    assert shc_min_distance(bits, num_classes) == d


def test_shc_min_distance_bad_arguments_raise():
    with pytest.raises(SaehError, match="num_classes"):
        shc_min_distance(16, 1)
    with pytest.raises(SaehError, match="bits"):
        shc_min_distance(0, 10)


# ---------------------------------------------------------------- SHC stage 1: class similarity


def loop_similarity(logits, labels, num_classes):
    """Reference written step by step with plain loops."""
    similarity = np.zeros((num_classes, num_classes))
    for row, label in zip(logits, labels):
        others = [c for c in range(num_classes) if c != label]
        peak = max(row[c] for c in others)
        weights = {c: math.exp(row[c] - peak) for c in others}
        total = sum(weights.values())
        for c in others:
            similarity[label, c] += weights[c] / total
    symmetric = np.zeros_like(similarity)
    for i in range(num_classes):
        for j in range(num_classes):
            symmetric[i, j] = (similarity[i, j] + similarity[j, i]) / 2
    result = np.zeros_like(symmetric)
    for i in range(num_classes):
        row = list(symmetric[i])
        mean = sum(row) / num_classes
        scale = max(abs(max(row) - mean), abs(min(row) - mean))
        for j in range(num_classes):
            result[i, j] = 1.0 if i == j else (row[j] - mean) / scale
    return result


def test_class_similarity_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    num_classes = 5
    labels = rng.integers(0, num_classes, size=40)
    # Make classes 0/1 and 2/3 confusable, so the matrix has structure (and is asymmetric before symmetrising).
    logits = rng.normal(size=(40, num_classes)) * 2.0
    logits[labels == 0, 1] += 4.0
    logits[labels == 2, 3] += 4.0
    expected = loop_similarity(logits, labels, num_classes)
    result = class_similarity_from_logits(logits, labels, num_classes)
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.diag(result), 1.0)
    assert result.min() >= -1.0 - 1e-12 and result.max() <= 1.0 + 1e-12
    one_hot = np.eye(num_classes)[labels]
    np.testing.assert_allclose(class_similarity_from_logits(logits, one_hot, num_classes), result)
    # The confusable pairs come out most similar in their rows.
    assert np.argmax(result[0] - np.eye(num_classes)[0] * 9) == 1
    assert np.argmax(result[2] - np.eye(num_classes)[2] * 9) == 3


@pytest.mark.parametrize("logits, labels, name", [
    (np.zeros((4, 3)), np.array([0, 1, 2, 0]), "logits"),
    (np.zeros((4, 5)), np.array([0, 1, 5, 0]), "labels"),
    (np.zeros((4, 5)), np.array([0, 1, 2]), "labels"),
    (np.full((4, 5), np.nan), np.array([0, 1, 2, 0]), "logits"),
])
def test_class_similarity_bad_inputs_raise(logits, labels, name):
    with pytest.raises(SaehError, match=name):
        class_similarity_from_logits(logits, labels, 5)


# ---------------------------------------------------------------- SHC stage 2: semantic centres


def two_group_similarity(num_classes):
    group = np.arange(num_classes) % 2
    similarity = np.where(group[:, None] == group[None, :], 0.8, -0.5)
    np.fill_diagonal(similarity, 1.0)
    return similarity


@pytest.mark.parametrize("num_classes, bits", [(10, 16), (10, 24), (12, 32)])
def test_semantic_centres_keep_the_distance_and_fit_better_than_the_start(num_classes, bits):
    similarity = two_group_similarity(num_classes)
    d = shc_min_distance(bits, num_classes)
    start = shc_start_centres(num_classes, bits, d, seed=1)
    assert off_diagonal_distances(start).min() >= d
    centres = semantic_centres(similarity, bits, d, seed=1)
    assert centres.shape == (num_classes, bits) and centres.dtype == np.int8
    assert np.all(np.abs(centres) == 1)
    assert off_diagonal_distances(centres).min() >= d
    assert centre_fit(similarity, centres) < centre_fit(similarity, start) - 0.02
    # Centres of the same group end up closer than centres of different groups.
    distances = pairwise_hamming(centres)
    group = np.arange(num_classes) % 2
    same = (group[:, None] == group[None, :]) & ~np.eye(num_classes, dtype=bool)
    assert distances[same].mean() < distances[group[:, None] != group[None, :]].mean()
    assert np.array_equal(centres, semantic_centres(similarity, bits, d, seed=1))


def reference_semantic_centres(similarity, bits, d, seed, epochs=30, rho=0.2, eta=0.5, dual_init=0.1):
    """The stage-2 solver spelt out with explicit inverses and full Gram recomputation (same documented choices)."""
    q, num_classes = bits, len(similarity)
    codes = shc_start_centres(num_classes, bits, d, seed=seed).T.astype(np.float64)
    symmetric = (similarity + similarity.T) / 2
    dual = np.full((q, num_classes), dual_init)
    best, best_fit = codes.T.copy(), centre_fit(similarity, codes.T)
    for _ in range(epochs):
        inverse = np.linalg.inv(2 / q**2 * codes @ codes.T + rho * np.eye(q))
        copy = inverse @ (2 / q * codes @ symmetric + dual + rho * codes)
        for _ in range(3):
            for i in range(num_classes):
                gradient = (2 / q**2 * copy @ copy.T @ codes[:, i] - 2 / q * copy @ symmetric[:, i] + dual[:, i]
                            + rho * (codes[:, i] - copy[:, i]))
                target = codes[:, i] - gradient / eta
                trial = codes.copy()
                trial[:, i] = np.where(target == 0, codes[:, i], np.sign(target))
                if ((q - trial.T @ trial) / 2 + q * np.eye(num_classes)).min() >= d:
                    codes = trial
        dual = dual + rho * (codes - copy)
        fit = centre_fit(similarity, codes.T)
        if fit < best_fit:
            best, best_fit = codes.T.copy(), fit
    return best.astype(np.int8)


@pytest.mark.parametrize("noisy", [False, True])
def test_semantic_centres_match_a_plain_reference_of_the_solver(noisy):
    similarity = two_group_similarity(10)
    if noisy:
        similarity = np.clip(similarity + np.random.default_rng(0).normal(scale=0.3, size=(10, 10)), -1, 1)
        np.fill_diagonal(similarity, 1.0)
    d = shc_min_distance(16, 10)
    expected = reference_semantic_centres(similarity, 16, d, seed=1)
    assert np.array_equal(semantic_centres(similarity, 16, d, seed=1), expected)


def test_centre_fit_is_the_normalised_frobenius_residual():
    rng = np.random.default_rng(2)
    centres = np.where(rng.random((4, 8)) < 0.5, -1, 1)
    similarity = rng.uniform(-1, 1, size=(4, 4))
    expected = sum((similarity[i, j] - centres[i] @ centres[j] / 8) ** 2 for i in range(4) for j in range(4)) / 16
    assert centre_fit(similarity, centres) == pytest.approx(expected)


def test_shc_start_raises_when_the_distance_cannot_be_reached():
    # Three 8-bit codes cannot all be 8 apart (only a code and its negation are).
    with pytest.raises(SaehError, match="min_distance"):
        shc_start_centres(3, 8, 8, max_tries=200)


@pytest.mark.parametrize("kwargs, name", [
    (dict(similarity=np.zeros((3, 4)), bits=16, min_distance=4), "similarity"),
    (dict(similarity=np.zeros((1, 1)), bits=16, min_distance=4), "similarity"),
    (dict(similarity=np.zeros((4, 4)), bits=16, min_distance=17), "min_distance"),
    (dict(similarity=np.zeros((4, 4)), bits=16, min_distance=4.0), "min_distance"),
    (dict(similarity=np.zeros((4, 4)), bits=16, min_distance=4, epochs=0), "epochs"),
    (dict(similarity=np.zeros((4, 4)), bits=16, min_distance=4, eta=0), "eta"),
    (dict(similarity=np.zeros((4, 4)), bits=16, min_distance=4, rho=-1.0), "rho"),
])
def test_semantic_centres_bad_arguments_raise(kwargs, name):
    with pytest.raises(SaehError, match=name):
        semantic_centres(**kwargs)


# ---------------------------------------------------------------- ADSH


def test_soft_similarity_weights_dissimilar_pairs_by_the_ratio():
    sampled = np.array([0, 1])
    database = np.array([0, 0, 1, 2, 2])
    result = soft_similarity(sampled, database)
    # Similar pairs: (0, 0), (0, 1), (1, 2) -> 3; dissimilar: 7; r = 3 / 7.
    expected = np.array([[1, 1, -3 / 7, -3 / 7, -3 / 7], [-3 / 7, -3 / 7, 1, -3 / 7, -3 / 7]])
    np.testing.assert_allclose(result, expected)
    multi_sampled = np.array([[1, 0, 1], [0, 1, 0]])
    multi_database = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 0]])
    # Overlaps: row 0 -> (1, 1, 1); row 1 -> (0, 1, 0): 4 similar, 2 dissimilar, r = 2.
    np.testing.assert_allclose(soft_similarity(multi_sampled, multi_database), [[1, 1, 1], [-2, 1, -2]])
    assert np.array_equal(soft_similarity(np.array([1, 1]), np.array([1, 1, 1])), np.ones((2, 3)))
    assert dissimilar_weight(sampled, database) == 3 / 7 and dissimilar_weight(multi_sampled, multi_database) == 2
    assert dissimilar_weight(np.array([1, 1]), np.array([1, 1, 1])) == 0.0


@pytest.mark.parametrize("sampled, database, name", [
    (np.array([0, 1]), np.array([[1, 0], [0, 1]]), "labels_sampled and labels_all"),
    (np.array([[1, 0]]), np.array([[1, 0, 0]]), "labels_sampled"),
    (np.array([[2, 0]]), np.array([[1, 0]]), "labels_sampled"),
    (np.zeros((0,)), np.array([1]), "labels_sampled"),
])
def test_soft_similarity_bad_inputs_raise(sampled, database, name):
    with pytest.raises(SaehError, match=name):
        soft_similarity(sampled, database)


def tiny_adsh_problem(seed, n=6, m=3, bits=4, gamma=2.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    index = rng.choice(n, size=m, replace=False)
    U = np.tanh(rng.normal(size=(m, bits)) * 1.5)
    S = soft_similarity(labels[index], labels)
    V = np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)
    return V, U, index, S, bits, gamma


def loop_objective(U, V, S, index, bits, gamma):
    total = 0.0
    for i in range(len(U)):
        for j in range(len(V)):
            total += (float(U[i] @ V[j]) - bits * S[i, j]) ** 2
        total += gamma * float(np.sum((V[index[i]] - U[i]) ** 2))
    return total


def test_adsh_objective_matches_a_loop_reference():
    V, U, index, S, bits, gamma = tiny_adsh_problem(0)
    assert adsh_objective(U, V, S, index, bits, gamma) == pytest.approx(loop_objective(U, V, S, index, bits, gamma))


@pytest.mark.parametrize("seed", range(6))
def test_each_column_update_is_the_exact_minimiser_over_that_column(seed):
    V, U, index, S, bits, gamma = tiny_adsh_problem(seed, gamma=[0.0, 2.0, 200.0][seed % 3])
    new = update_database_codes(V, U, index, S, bits, gamma)
    assert new.shape == V.shape and new.dtype == np.int8 and np.all(np.abs(new) == 1)
    n = len(V)
    columns = np.array(list(itertools.product([-1, 1], repeat=n)))
    for k in range(bits):
        # Column k is updated after columns 0..k-1 (already new) with columns k+1.. still old.
        state = np.concatenate([new[:, :k], V[:, k:]], axis=1).astype(np.float64)
        values = []
        for column in columns:
            state[:, k] = column
            values.append(loop_objective(U, state, S, index, bits, gamma))
        values = np.array(values)
        best = int(np.argmin(values))
        assert np.sort(values)[1] - values[best] > 1e-9  # a unique minimiser, so the check is sharp
        assert np.array_equal(new[:, k], columns[best]), f"column {k}"


def test_full_update_does_not_increase_the_objective():
    rng = np.random.default_rng(7)
    n, m, bits, gamma = 60, 12, 12, 200.0
    labels = rng.integers(0, 5, size=n)
    index = rng.choice(n, size=m, replace=False)
    U = np.tanh(rng.normal(size=(m, bits)))
    S = soft_similarity(labels[index], labels)
    V = np.where(rng.random((n, bits)) < 0.5, -1, 1)
    before = adsh_objective(U, V, S, index, bits, gamma)
    once = update_database_codes(V, U, index, S, bits, gamma)
    after = adsh_objective(U, once, S, index, bits, gamma)
    assert after < before
    twice = update_database_codes(once, U, index, S, bits, gamma)
    assert adsh_objective(U, twice, S, index, bits, gamma) <= after + 1e-9 * abs(after)


def test_update_from_zero_codes_gives_pm1():
    V, U, index, S, bits, gamma = tiny_adsh_problem(1)
    new = update_database_codes(np.zeros_like(V), U, index, S, bits, gamma)
    assert np.all(np.abs(new) == 1)


def test_update_breaks_ties_towards_plus_one():
    V, U, index, S, bits, gamma = tiny_adsh_problem(2)
    # With U~ = 0 every column's argument is exactly 0: both values tie, and the documented choice is +1.
    new = update_database_codes(V, np.zeros_like(U), index, S, bits, gamma)
    assert np.all(new == 1)


@pytest.mark.parametrize("change, name", [
    (dict(bits=5), "U_sampled"),
    (dict(gamma=-1.0), "gamma"),
    (dict(index=np.array([0, 0, 1])), "sampled_index"),
    (dict(index=np.array([0, 1, 6])), "sampled_index"),
    (dict(S=np.zeros((3, 5))), "S"),
    (dict(V=np.full((6, 4), 2)), "V"),
])
def test_adsh_bad_inputs_raise(change, name):
    V, U, index, S, bits, gamma = tiny_adsh_problem(0)
    args = dict(V=V, U=U, index=index, S=S, bits=bits, gamma=gamma)
    args.update(change)
    with pytest.raises(SaehError, match=name):
        update_database_codes(args["V"], args["U"], args["index"], args["S"], args["bits"], args["gamma"])
    with pytest.raises(SaehError, match=name):
        adsh_objective(args["U"], args["V"], args["S"], args["index"], args["bits"], args["gamma"])
