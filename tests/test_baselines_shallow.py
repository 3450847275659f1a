"""ITQ and KSH (baselines.itq, baselines.ksh) and their shared base (baselines.shallow)."""

import json

import numpy as np
import pytest

from baselines.itq import ITQ
from baselines.ksh import KSH
from baselines.shallow import features_from_images
from saeh.codes import make_codes
from saeh.errors import SaehError

SMALL_KSH = {"n_anchors": 60, "n_labelled": 300, "n_opt_iter": 100}


def reference_map_at_k(query_codes, query_labels, database_codes, database_labels, k):
    """Exact mAP@k: rank by Hamming distance, ties by database index; AP normalised by relevant items in the top k."""
    precisions = []
    for code, label in zip(query_codes, query_labels):
        distances = np.count_nonzero(database_codes != code, axis=1)
        ranking = np.argsort(distances, kind="stable")[:k]
        relevant = (database_labels[ranking] == label).astype(float)
        if relevant.sum() == 0:
            precisions.append(0.0)
            continue
        hits = np.cumsum(relevant)
        precisions.append(float(np.sum(relevant * hits / np.arange(1, len(ranking) + 1)) / relevant.sum()))
    return float(np.mean(precisions))


def blobs(n_samples, seed, dim=64, n_classes=10, spread=1.0):
    """Gaussian blobs: class centres N(0, spread^2 I), unit-variance noise; classes overlap a little at spread=1."""
    rng = np.random.default_rng(1234)  # the same centres for every split
    centres = rng.normal(0.0, spread, size=(n_classes, dim))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n_samples)
    return centres[labels] + rng.normal(size=(n_samples, dim)), labels


@pytest.fixture(scope="module")
def data():
    train_x, train_y = blobs(800, seed=1)
    query_x, query_y = blobs(200, seed=2)
    return train_x, train_y, query_x, query_y


def make(name, **kwargs):
    if name == "itq":
        return ITQ(**kwargs)
    return KSH(**{**SMALL_KSH, **kwargs})


@pytest.mark.parametrize("name", ["itq", "ksh"])
def test_shapes_dtypes_and_threshold_agree(name, data):
    train_x, train_y, query_x, _ = data
    hasher = make(name, hash_bits=12).fit(train_x, train_y)
    projected = hasher.project(query_x)
    codes = hasher.encode(query_x)
    assert projected.shape == (200, 12) and projected.dtype == np.float32
    assert codes.shape == (200, 12) and codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    np.testing.assert_array_equal(codes, (projected > 0).astype(np.uint8))
    dump = make_codes(projected, np.zeros(200, dtype=int), threshold=hasher.threshold)
    np.testing.assert_array_equal(dump.hash_bin, codes)
    # Every bit is used: no constant column on the training data.
    train_codes = hasher.encode(train_x)
    assert np.all(train_codes.min(axis=0) == 0) and np.all(train_codes.max(axis=0) == 1)


@pytest.mark.parametrize("name", ["itq", "ksh"])
def test_same_seed_same_codes_other_seed_other_codes(name, data):
    train_x, train_y, query_x, _ = data
    first = make(name, hash_bits=12, seed=3).fit(train_x, train_y).project(query_x)
    second = make(name, hash_bits=12, seed=3).fit(train_x, train_y).project(query_x)
    other = make(name, hash_bits=12, seed=4).fit(train_x, train_y).project(query_x)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first > 0, other > 0)


@pytest.mark.parametrize("name", ["itq", "ksh"])
def test_save_load_round_trip(name, data, tmp_path):
    train_x, train_y, query_x, _ = data
    hasher = make(name, hash_bits=8, seed=5).fit(train_x, train_y)
    path = tmp_path / f"{name}.npz"
    hasher.save(path)
    cls = type(hasher)
    loaded = cls.load(path)
    assert loaded.get_config() == hasher.get_config()
    np.testing.assert_array_equal(loaded.project(query_x), hasher.project(query_x))
    np.testing.assert_array_equal(loaded.encode(query_x), hasher.encode(query_x))
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        assert json.loads(str(archive["config"]))["name"] == name
    other = KSH if cls is ITQ else ITQ
    with pytest.raises(SaehError, match=name):
        other.load(path)


@pytest.mark.parametrize("name", ["itq", "ksh"])
def test_beats_random_codes_in_map(name, data):
    train_x, train_y, query_x, query_y = data
    hasher = make(name, hash_bits=16, seed=0).fit(train_x, train_y)
    learned = reference_map_at_k(hasher.encode(query_x), query_y, hasher.encode(train_x), train_y, k=100)
    rng = np.random.default_rng(0)
    random_map = reference_map_at_k(
        rng.integers(0, 2, (200, 16)), query_y, rng.integers(0, 2, (800, 16)), train_y, k=100
    )
    assert random_map < 0.3
    assert learned > random_map + 0.4, (learned, random_map)


def test_reference_map_on_a_hand_worked_case():
    database = np.array([[0, 0], [1, 1], [0, 1], [0, 0]])
    # distances from [0,0]: 0, 2, 1, 0 -> ranking (ties by index) 0, 3, 2, 1; relevant: 0 and 2.
    value = reference_map_at_k(np.array([[0, 0]]), np.array([1]), database, np.array([1, 0, 1, 0]), k=4)
    assert value == pytest.approx((1 / 1 + 2 / 3) / 2)
    # Only the top 2 count: one relevant item at rank 1.
    assert reference_map_at_k(np.array([[0, 0]]), np.array([1]), database, np.array([1, 0, 1, 0]), k=2) == 1.0


def test_itq_quantization_loss_never_increases(data):
    train_x, train_y, _, _ = data
    hasher = ITQ(hash_bits=16, n_iter=30).fit(train_x)
    losses = np.array(hasher.quantization_loss_)
    assert len(losses) == 30
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] < losses[0]
    projection = hasher.state["projection"]  # W R has orthonormal columns
    np.testing.assert_allclose(projection.T @ projection, np.eye(16), atol=1e-10)


def test_itq_ignores_labels(data):
    train_x, train_y, query_x, _ = data
    with_labels = ITQ(hash_bits=8).fit(train_x, train_y).project(query_x)
    without = ITQ(hash_bits=8).fit(train_x).project(query_x)
    np.testing.assert_array_equal(with_labels, without)


def test_ksh_uses_multi_hot_labels_like_class_ids(data):
    train_x, train_y, query_x, _ = data
    ids = KSH(hash_bits=8, **SMALL_KSH).fit(train_x, train_y).project(query_x)
    multi_hot = np.eye(10, dtype=np.uint8)[train_y]
    hot = KSH(hash_bits=8, **SMALL_KSH).fit(train_x, multi_hot).project(query_x)
    np.testing.assert_allclose(ids, hot, rtol=1e-5, atol=1e-5)


def test_ksh_small_training_set_uses_every_sample():
    x, y = blobs(40, seed=7)
    hasher = KSH(hash_bits=4).fit(x, y)  # defaults 300 anchors / 2000 labelled exceed 40 samples
    assert hasher.fit_info_["n_anchors"] == 40 and hasher.fit_info_["n_labelled"] == 40
    assert hasher.encode(x).shape == (40, 4)


@pytest.mark.parametrize(
    "kwargs, quoted",
    [
        ({"hash_bits": 0}, "0"),
        ({"hash_bits": -3}, "-3"),
        ({"hash_bits": 2.5}, "2.5"),
        ({"hash_bits": True}, "True"),
        ({"seed": -1}, "-1"),
        ({"n_iter": 0}, "0"),
        ({"n_iterations": 5}, "n_iterations"),
    ],
)
def test_itq_bad_arguments(kwargs, quoted):
    with pytest.raises(SaehError, match=quoted):
        ITQ(**kwargs)


@pytest.mark.parametrize(
    "kwargs, quoted",
    [({"n_anchors": 0}, "n_anchors"), ({"n_labelled": -5}, "-5"), ({"n_opt_iter": "many"}, "many")],
)
def test_ksh_bad_arguments(kwargs, quoted):
    with pytest.raises(SaehError, match=quoted):
        KSH(**kwargs)


@pytest.mark.parametrize("name, defaults", [
    ("itq", {"n_iter": 50}), ("ksh", {"n_anchors": 300, "n_labelled": 2000, "n_opt_iter": 500}),
])
def test_shallow_hyperparameters_are_declared_like_the_deep_methods(name, defaults):
    """One declared object with each field's default, constraint and meaning; overrides given as text (--set) are
    converted and checked, and the hasher holds them resolved."""
    import dataclasses

    from saeh import registry
    from saeh.methods import Hyperparameters

    method = registry.get(name)
    assert isinstance(method.hyperparameters, Hyperparameters) and dict(method.hyperparameters) == defaults
    for field in dataclasses.fields(method.hyperparameters):
        assert field.metadata["check"] == "positive integer" and field.metadata["meaning"], field.name
    first = next(iter(defaults))
    resolved = method.resolve({first: "7"})
    assert resolved[first] == 7 and type(resolved[first]) is int and method.resolve(resolved) == resolved
    hasher = method.hasher(hash_bits=8, **resolved)
    assert hasher.hyperparameters == resolved and hasher.get_config()[first] == 7
    with pytest.raises(SaehError, match=f"hyperparameter {first} of method '{name}' must be a positive integer"):
        method.resolve({first: "0"})
    with pytest.raises(SaehError, match=f"hyperparameter {first} of method '{name}' must be an integer; got '7.5'"):
        method.hasher(**{first: "7.5"})


def test_bad_fit_and_project_inputs(data):
    train_x, train_y, _, _ = data
    with pytest.raises(SaehError, match="hash_bits=65 exceeds the feature dimension 64"):
        ITQ(hash_bits=65).fit(train_x)
    with pytest.raises(SaehError, match="supervised"):
        KSH(**SMALL_KSH).fit(train_x)
    with pytest.raises(SaehError, match="799 rows but the features have 800"):
        KSH(**SMALL_KSH).fit(train_x, train_y[:-1])
    with pytest.raises(SaehError, match=r"2-D"):
        ITQ().fit(train_x[0])
    with pytest.raises(SaehError, match="NaN"):
        ITQ(hash_bits=4).fit(np.where(np.arange(64) == 3, np.nan, train_x))
    with pytest.raises(SaehError, match="before project"):
        ITQ().encode(train_x)
    fitted = ITQ(hash_bits=4).fit(train_x)
    with pytest.raises(SaehError, match="64-dimensional features; got 63"):
        fitted.encode(train_x[:, :63])


def test_save_refuses_unfitted_and_wrong_suffix(data, tmp_path):
    with pytest.raises(SaehError, match="fit the hasher first"):
        ITQ().save(tmp_path / "a.npz")
    fitted = ITQ(hash_bits=4).fit(data[0])
    with pytest.raises(SaehError, match="'.*a.mat'"):
        fitted.save(str(tmp_path / "a.mat"))
    fitted.save(tmp_path / "a.npz")
    with pytest.raises(SaehError, match="already exists"):
        fitted.save(tmp_path / "a.npz", overwrite=False)
    with pytest.raises(SaehError, match="does not exist"):
        ITQ.load(tmp_path / "missing.npz")


def test_features_from_images():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    features = features_from_images(images)
    assert features.dtype == np.float32 and features.shape == (1, 4)
    np.testing.assert_allclose(features, [[0.0, 1.0, 0.2, 0.4]], atol=1e-7)
    colour = features_from_images(np.zeros((3, 4, 4, 3), dtype=np.uint8))
    assert colour.shape == (3, 48)
    with pytest.raises(SaehError, match="scaled to"):
        features_from_images(np.full((1, 2, 2), 3.0))
    with pytest.raises(SaehError, match="shape"):
        features_from_images(np.zeros((4, 4)))
