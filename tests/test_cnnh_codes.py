"""CNNH stage 1 (baselines.cnnh_codes): approximate codes from the label similarity matrix."""

import re

import numpy as np
import pytest

from baselines.cnnh_codes import (
    _cubic_real_roots,
    approximate_codes,
    minimise_quartic_step,
    relaxed_codes,
    similarity_objective,
)
from saeh.errors import SaehError


def hamming(codes):
    codes = codes.astype(np.int64)
    return (codes.shape[1] - codes @ codes.T) // 2


@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(0).integers(0, 5, size=120)


def test_quartic_step_is_the_exact_constrained_minimiser():
    rng = np.random.default_rng(1)
    grid = np.linspace(-2.0, 2.0, 400001)
    for _ in range(200):
        value = rng.uniform(-1, 1)
        a3, a2, a1 = 4 * value, rng.normal(0, 8), rng.normal(0, 20)
        low, high = -1 - value, 1 - value
        step = minimise_quartic_step(a3, a2, a1, low, high)
        assert low <= step <= high
        inside = grid[(grid >= low) & (grid <= high)]
        quartic = lambda d: (((d + a3) * d + a2) * d + a1) * d
        assert quartic(step) <= quartic(inside).min() + 1e-9
        assert quartic(step) <= 0.0  # never worse than not moving


@pytest.mark.parametrize(
    "coefficients, expected",
    [((0.0, -7.0, 6.0), [-3.0, 1.0, 2.0]), ((-3.0, 3.0, -1.0), [1.0]), ((0.0, 1.0, 0.0), [0.0])],
)
def test_cubic_roots(coefficients, expected):
    np.testing.assert_allclose(sorted(_cubic_real_roots(*coefficients)), expected, atol=1e-7)


def test_objective_decreases_monotonically_and_matches_direct_computation(labels):
    relaxed, history = relaxed_codes(labels, 16, seed=0, n_iter=6, tol=0.0)
    assert len(history) == 7
    # Exact coordinate minimisation: never increases (allowing for float round-off in the running sums).
    assert np.all(np.diff(history) <= 1e-12)
    assert history[-1] < 0.6 * history[0]
    assert history[-1] == pytest.approx(similarity_objective(relaxed, labels), rel=1e-10)
    assert relaxed.min() >= -1.0 and relaxed.max() <= 1.0


def test_codes_separate_classes(labels):
    codes = approximate_codes(labels, 16, seed=0)
    assert codes.shape == (120, 16) and codes.dtype == np.int8
    assert set(np.unique(codes)) <= {-1, 1}
    distances = hamming(codes)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = distances[same & off_diagonal].mean()
    between = distances[~same].mean()
    assert within < 1.0 and between > 6.0, (within, between)
    # Row i codes labels[i]: every within-class distance is below every between-class distance.
    assert np.all(distances[~same] > distances[same & off_diagonal].max())


def test_low_rank_and_dense_paths_agree(labels):
    low_rank, low_rank_history = relaxed_codes(labels, 12, seed=7, n_iter=4, method="low_rank")
    dense, dense_history = relaxed_codes(labels, 12, seed=7, n_iter=4, method="dense")
    np.testing.assert_allclose(low_rank, dense, atol=1e-8)
    np.testing.assert_allclose(low_rank_history, dense_history, rtol=1e-10)
    np.testing.assert_array_equal(
        approximate_codes(labels, 12, seed=7, n_iter=4, method="low_rank"),
        approximate_codes(labels, 12, seed=7, n_iter=4, method="dense"),
    )


def test_one_hot_labels_take_the_low_rank_path_and_match_class_ids(labels):
    one_hot = np.eye(5, dtype=np.uint8)[labels]
    np.testing.assert_array_equal(approximate_codes(one_hot, 8, seed=2), approximate_codes(labels, 8, seed=2))
    # A budget of zero bytes for the dense matrix does not matter on the low-rank path.
    approximate_codes(one_hot, 8, seed=2, max_dense_bytes=0)


def test_deterministic_for_a_seed(labels):
    first = approximate_codes(labels, 8, seed=3)
    np.testing.assert_array_equal(first, approximate_codes(labels, 8, seed=3))
    assert not np.array_equal(first, approximate_codes(labels, 8, seed=4))


def test_multi_label_data_uses_the_dense_path():
    rng = np.random.default_rng(5)
    multi_hot = (rng.random((60, 6)) < 0.3).astype(np.uint8)
    multi_hot[multi_hot.sum(axis=1) == 0, 0] = 1
    relaxed, history = relaxed_codes(multi_hot, 12, seed=0, n_iter=5, tol=0.0)
    assert np.all(np.diff(history) <= 1e-12)
    assert history[-1] == pytest.approx(similarity_objective(relaxed, multi_hot), rel=1e-10)
    codes = np.where(relaxed > 0, 1, -1)
    distances = hamming(codes)
    share = (multi_hot @ multi_hot.T) > 0
    assert distances[share].mean() < distances[~share].mean() - 2.0
    with pytest.raises(SaehError, match="low_rank"):
        relaxed_codes(multi_hot, 12, method="low_rank")


def test_memory_limit_for_multi_label_data_names_the_largest_size():
    """The error names the largest N that fits: N = that size runs, one sample more is refused."""
    multi_hot = (np.random.default_rng(0).random((300, 3)) < 0.5).astype(np.uint8)
    multi_hot[:, 0] |= multi_hot.sum(axis=1) == 0  # at least one label each
    limit = 200 * 200 + 400  # 200^2 <= limit < 201^2 = 40,401 pairs of one byte
    too_many = r"multi-label data needs the N x N similarity matrix; N = 300 samples"
    with pytest.raises(SaehError, match=too_many) as error:
        approximate_codes(multi_hot, 8, max_dense_bytes=limit)
    named = re.search(r"which handles at most ([\d,]+) samples", str(error.value))
    assert named is not None, str(error.value)
    largest = int(named.group(1).replace(",", ""))
    assert largest == 200
    codes = approximate_codes(multi_hot[:largest], 8, n_iter=1, max_dense_bytes=limit)
    assert codes.shape == (largest, 8)
    with pytest.raises(SaehError, match=r"N = 201 samples.*at most 200 samples"):
        approximate_codes(multi_hot[:largest + 1], 8, n_iter=1, max_dense_bytes=limit)


@pytest.mark.parametrize(
    "kwargs, quoted",
    [
        ({"hash_bits": 0}, "hash_bits"),
        ({"hash_bits": -2}, "-2"),
        ({"n_iter": 0}, "n_iter"),
        ({"seed": -1}, "-1"),
        ({"tol": -0.1}, "-0.1"),
        ({"method": "fast"}, "fast"),
    ],
)
def test_bad_arguments(labels, kwargs, quoted):
    arguments = {"hash_bits": 8, **kwargs}
    with pytest.raises(SaehError, match=quoted):
        approximate_codes(labels, **arguments)


def test_bad_labels():
    with pytest.raises(SaehError, match="shape"):
        approximate_codes(np.zeros((2, 2, 2), dtype=int), 8)
    with pytest.raises(SaehError, match="integers"):
        approximate_codes(np.array([0.5, 1.0]), 8)
    with pytest.raises(SaehError, match="0 and 1"):
        approximate_codes(np.array([[0, 2], [1, 0]]), 8)
