"""The HABIR toolbox's CBE-opt (baselines.cbe_opt) and SELVE (baselines.selve): each step checked on fixed inputs
against the formula of METHODS.md section 20 written out here in plain numpy (an explicit circulant matrix; loops;
the constrained least squares by projected gradient), their codes, seeds, save/load, and a run of the training
script for each on the bundled MNIST sample."""

import numpy as np
import pytest

from baselines.cbe_opt import CBEOpt, learn_circulant, optimise_frequencies
from baselines.selve import SELVE, anchor_weights, learn_basis, least_variance_directions, ridge_codes
from saeh.errors import SaehError

from test_baselines_shallow import blobs, reference_map_at_k

HASHERS = {"cbe-opt": CBEOpt, "selve": SELVE}


def circulant_matrix(vector):
    """R with first column `vector`: R[i, j] = vector[(i - j) mod d]."""
    dim = len(vector)
    return np.array([[vector[(i - j) % dim] for j in range(dim)] for i in range(dim)])


def cbe_reference_objective(codes, rows, vector, weight):
    """||B - X R^T||^2 + lambda ||R^T R - I||^2 (METHODS.md section 20, CBE-opt), in the time domain."""
    matrix = circulant_matrix(vector)
    return (np.linalg.norm(codes - rows @ matrix.T) ** 2
            + weight * np.linalg.norm(matrix.T @ matrix - np.eye(len(vector))) ** 2)


@pytest.mark.parametrize("dim", [7, 8])  # odd, and even with its real Nyquist frequency
def test_the_cbe_r_step_is_the_best_real_circulant_for_the_codes(dim):
    rng = np.random.default_rng(dim)
    rows = rng.normal(size=(12, dim))
    codes = np.where(rng.normal(size=(12, dim)) > 0, 1.0, -1.0)
    best = np.fft.irfft(optimise_frequencies(np.fft.rfft(rows, axis=1), np.fft.rfft(codes, axis=1), dim, 1.0), n=dim)
    value = cbe_reference_objective(codes, rows, best, 1.0)
    for scale in (1e-3, 1e-1, 1.0):  # nearby and far circulants are all worse
        for _ in range(20):
            assert cbe_reference_objective(codes, rows, best + scale * rng.normal(size=dim), 1.0) > value - 1e-9
    import scipy.optimize

    for _ in range(5):  # the time-domain objective minimised from random starts reaches no lower value
        found = scipy.optimize.minimize(lambda r: cbe_reference_objective(codes, rows, r, 1.0),
                                        rng.normal(size=dim), method="BFGS")
        assert found.fun >= value - 1e-6 * value


def test_cbe_alternation_lowers_the_objective_and_codes_are_its_first_outputs():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 16))
    import dataclasses

    settings = dataclasses.replace(CBEOpt.defaults, max_iter=6, min_decrease=-1.0)  # no early stop
    vector, history = learn_circulant(rows, rng.normal(size=16), settings)
    assert len(history) == 8 and np.all(np.diff(history) <= 1e-9 * history[0]), history
    codes = np.where(rows @ circulant_matrix(vector).T >= 0, 1.0, -1.0)  # the B-step of the last iteration
    assert history[-1] == pytest.approx(cbe_reference_objective(codes, rows, vector, 1.0), rel=1e-9)
    features = rng.normal(size=(40, 16))
    hasher = CBEOpt(hash_bits=5, max_iter=3).fit(features)
    state = hasher.state
    expected = ((features - features.mean(axis=0)) * state["flips"]) @ circulant_matrix(state["circulant"]).T
    np.testing.assert_allclose(hasher.project(features), expected[:, :5], rtol=1e-5, atol=1e-5)
    with pytest.raises(SaehError, match="cbe-opt: hash_bits=17 exceeds the feature dimension 16"):
        CBEOpt(hash_bits=17).fit(features)


def test_selve_embedding_codes_and_projection_follow_the_formulas():
    rng = np.random.default_rng(1)
    points, anchors = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    embedding, sigma = anchor_weights(points, anchors, 2)
    distances = [sorted((np.sum((p - a) ** 2), j) for j, a in enumerate(anchors)) for p in points]
    assert sigma == pytest.approx(np.mean([np.sqrt(row[1][0]) for row in distances]))
    for i, row in enumerate(distances):
        expected = np.zeros(5)
        for squared, j in row[:2]:
            expected[j] = np.exp(-squared / sigma**2)
        np.testing.assert_allclose(embedding[i], expected / expected.sum(), rtol=1e-12)
    # Ridge codes: argmin ||z - D s||^2 + lambda ||s - u||^2, as the least squares of [D; sqrt(lambda) I].
    dictionary, u, z = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)
    transform, offset = ridge_codes(dictionary, z, u, 0.1)
    stacked = np.vstack([dictionary, np.sqrt(0.1) * np.eye(3)])
    expected = np.linalg.lstsq(stacked, np.concatenate([z, np.sqrt(0.1) * u]), rcond=None)[0]
    np.testing.assert_allclose(transform @ z + offset, expected, rtol=1e-10)
    # Projection: eigenvectors of beta Gamma^T Gamma - X^T X of the largest |eigenvalue|.
    x = rng.normal(size=(20, 4))
    labels, centres = rng.integers(0, 3, 20), rng.normal(size=(3, 4))
    mean = x.mean(axis=0)
    gamma = (x - mean) - centres[labels]
    values, vectors = np.linalg.eigh(0.5 * gamma.T @ gamma - (x - mean).T @ (x - mean))
    order = np.argsort(-np.abs(values))[:2]
    found = least_variance_directions(x, mean, labels, centres, 0.5, 2)
    np.testing.assert_allclose(np.abs(found.T @ vectors[:, order]), np.eye(2), atol=1e-10)


def test_selve_dictionary_step_solves_the_constrained_least_squares():
    """1/2 ||X - D S||^2 subject to ||d_j|| <= 1, solved here by projected gradient descent from many steps."""
    rng = np.random.default_rng(2)
    targets, codes = rng.normal(size=(6, 40)), rng.normal(size=(3, 40)) * 0.3  # small codes: the constraints bind
    start = rng.normal(size=(6, 3))
    found = learn_basis(targets, codes, start / np.linalg.norm(start, axis=0))
    assert np.all(np.linalg.norm(found, axis=0) <= 1 + 1e-6)

    def objective(dictionary):
        return 0.5 * np.linalg.norm(targets - dictionary @ codes) ** 2

    reference = np.zeros((6, 3))
    step = 1.0 / np.linalg.eigvalsh(codes @ codes.T).max()
    for _ in range(20000):
        reference -= step * (reference @ codes - targets) @ codes.T
        reference /= np.maximum(np.linalg.norm(reference, axis=0), 1.0)
    assert objective(found) == pytest.approx(objective(reference), rel=1e-6)
    np.testing.assert_allclose(found, reference, atol=1e-4)


@pytest.fixture(scope="module")
def data():
    train_x, train_y = blobs(400, seed=1, dim=32)
    query_x, query_y = blobs(100, seed=2, dim=32)
    return train_x, train_y, query_x, query_y


SMALL = {"cbe-opt": {"max_iter": 10}, "selve": {"n_anchors": 40}}


@pytest.mark.parametrize("name", HASHERS)
def test_codes_are_seeded_reload_identically_and_beat_random_codes(name, data, tmp_path):
    train_x, train_y, query_x, query_y = data
    hasher = HASHERS[name](hash_bits=12, seed=3, **SMALL[name]).fit(train_x)
    projected = hasher.project(query_x)
    assert projected.shape == (100, 12) and projected.dtype == np.float32
    np.testing.assert_array_equal(hasher.encode(query_x), (projected > 0).astype(np.uint8))
    np.testing.assert_array_equal(HASHERS[name](hash_bits=12, seed=3, **SMALL[name]).fit(train_x).project(query_x),
                                  projected)
    assert not np.array_equal(HASHERS[name](hash_bits=12, seed=4, **SMALL[name]).fit(train_x).project(query_x),
                              projected)
    hasher.save(tmp_path / "model.npz")
    loaded = HASHERS[name].load(tmp_path / "model.npz")
    assert loaded.get_config() == hasher.get_config()
    np.testing.assert_array_equal(loaded.project(query_x), projected)
    learned = reference_map_at_k(hasher.encode(query_x), query_y, hasher.encode(train_x), train_y, k=100)
    rng = np.random.default_rng(0)
    chance = reference_map_at_k(rng.integers(0, 2, (100, 12)), query_y, rng.integers(0, 2, (400, 12)), train_y, k=100)
    assert learned > chance + 0.3, (learned, chance)


def test_selve_codes_do_not_depend_on_the_batch(data):
    train_x, _, query_x, _ = data
    hasher = SELVE(hash_bits=8, n_anchors=40).fit(train_x)
    np.testing.assert_array_equal(hasher.project(query_x[:7]), hasher.project(query_x)[:7])
    # More anchors than training samples: every sample is one (as SDH's anchors); more neighbours than anchors: refused.
    assert SELVE(hash_bits=8, n_anchors=500, kmeans_iter=1).fit(train_x).project(query_x).shape == (len(query_x), 8)
    with pytest.raises(SaehError, match="selve: needs n_nearest <= the 400 anchors; got n_nearest=401"):
        SELVE(n_anchors=500, n_nearest=401).fit(train_x)


def test_hyperparameters_are_the_toolboxs():
    from saeh import registry

    assert dict(registry.get("cbe-opt").hyperparameters) == {"orthogonality_weight": 1.0, "max_iter": 500,
                                                             "min_decrease": 0.1, "n_train": 5000}
    assert dict(registry.get("selve").hyperparameters) == {"n_anchors": 300, "n_nearest": 2, "ridge": 0.1,
                                                           "residual_weight": 0.5, "reduced_dim": 300,
                                                           "kmeans_iter": 10, "n_iter": 10}
    names = registry.names()
    assert names.index("cbe-opt") == names.index("cbe-rand") + 1 and names.index("selve") == names.index("sgh") + 1


@pytest.mark.slow
@pytest.mark.parametrize("name, extra, floor", [("cbe-opt", ["--set", "max_iter=20"], 0.30), ("selve", [], 0.50)])
def test_trains_through_the_script_on_mnist_and_beats_random_codes(name, extra, floor, monkeypatch, capsys,
                                                                   tmp_path):
    """Measured (32 bits, seed 0): mAP@1000 cbe-opt 0.368 (20 iterations), selve 0.607; random codes 0.105."""
    from script_helpers import trained_map_and_chance

    learned, chance = trained_map_and_chance(["--method", name, "--which-data", "mnist-sample", *extra],
                                             monkeypatch, capsys, str(tmp_path / name))
    assert learned > floor and learned > chance + 0.2, (learned, chance)
