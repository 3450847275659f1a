"""Retrieval protocols: sizes, disjointness, per-class counts, seeding and the select_on_test leak."""

import numpy as np
import pytest

from saeh.data import ImageSet, LabelledData, load_dataset, make_split, protocol_names
from saeh.errors import SaehError


def tagged_set(first_id, labels):
    """Images of 2x2x1 pixels whose 4 bytes spell a unique id, so any set can be traced back to its images."""
    ids = np.arange(first_id, first_id + len(labels), dtype="<u4")
    return ImageSet(ids.view(np.uint8).reshape(-1, 2, 2, 1).copy(), np.asarray(labels))


def ids_of(image_set):
    return np.ascontiguousarray(image_set.images).reshape(len(image_set), 4).view("<u4")[:, 0]


def single_label_data(train_per_class, test_per_class, num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    train_labels = rng.permutation(np.repeat(np.arange(num_classes), train_per_class))
    test_labels = rng.permutation(np.repeat(np.arange(num_classes), test_per_class))
    train = tagged_set(0, train_labels)
    test = tagged_set(len(train_labels), test_labels)
    return LabelledData("toy", train, test, tuple(f"class{c}" for c in range(num_classes)))


def multi_label_data(train_size, test_size, num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((train_size + test_size, num_classes)) < 0.3).astype(np.uint8)
    return LabelledData(
        "tags",
        tagged_set(0, labels[:train_size]),
        tagged_set(train_size, labels[train_size:]),
        tuple(f"tag{c}" for c in range(num_classes)),
    )


@pytest.fixture(scope="module")
def small():
    return single_label_data(train_per_class=50, test_per_class=10)


@pytest.fixture(scope="module")
def cifar_shaped():
    """CIFAR-10's sizes (5,000 + 1,000 per class) with tiny images."""
    return single_label_data(train_per_class=5000, test_per_class=1000)


def test_names():
    assert protocol_names() == ("ssdh", "dpsh", "dsh")


def test_ssdh_sizes_and_disjointness(small):
    split = make_split(small, "ssdh", seed=3)
    assert (len(split.train), len(split.validation), len(split.query), len(split.database)) == (450, 50, 100, 500)
    train, validation = set(ids_of(split.train)), set(ids_of(split.validation))
    assert not train & validation and train | validation == set(ids_of(small.train))
    assert split.query is small.test and split.database is small.train
    assert not set(ids_of(split.query)) & set(ids_of(split.database))
    assert set(ids_of(split.validation)) <= set(ids_of(split.database))
    assert not split.validation_is_query and split.protocol == "ssdh" and split.seed == 3
    # Labels travel with their images.
    np.testing.assert_array_equal(split.train.labels, small.train.labels[np.sort(list(train))])


def test_default_is_ssdh_with_seed_zero(small):
    split = make_split(small)
    assert split.protocol == "ssdh" and split.seed == 0
    assert split.describe().startswith("toy: protocol ssdh, seed 0: train 450")


def test_validation_size_as_count(small):
    split = make_split(small, "dsh", seed=0, validation_size=7)
    assert len(split.validation) == 7 and len(split.train) == 493


def test_dsh_queries_are_the_database(small):
    split = make_split(small, "dsh", seed=1)
    assert split.query is split.database is small.test
    assert len(split.train) == 450 and len(split.validation) == 50
    assert "same images as the queries" in split.describe()


def test_dpsh_full_counts(cifar_shaped):
    split = make_split(cifar_shaped, "dpsh", seed=0)
    assert (len(split.query), len(split.database), len(split.train), len(split.validation)) == (1000, 59000, 5000, 500)
    assert np.bincount(split.query.labels).tolist() == [100] * 10
    assert np.bincount(split.train.labels).tolist() == [500] * 10
    query, database = set(ids_of(split.query)), set(ids_of(split.database))
    train, validation = set(ids_of(split.train)), set(ids_of(split.validation))
    assert not query & database and len(query | database) == 60000
    assert train <= database and validation <= database and not train & validation
    # Queries come from both the training and the test part of the pool.
    assert min(query) < 50000 <= max(query)
    assert split.note == "" and "scaled" not in split.describe()


def test_dpsh_scales_down_on_the_bundled_sample():
    data = load_dataset("mnist-sample")
    split = make_split(data, "dpsh", seed=0)
    assert np.bincount(split.query.labels).tolist() == [10] * 10
    assert np.bincount(split.train.labels).tolist() == [50] * 10
    assert len(split.database) == 5900 and len(split.validation) == 50
    line = split.describe()
    assert "scaled by 0.1" in line and "10 queries and 50 training images per class" in line
    assert "\n" not in line


def test_dpsh_too_few_images_in_a_class():
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.zeros(30, np.int64), np.ones(1, np.int64)])
    data = LabelledData("tiny", tagged_set(0, labels), tagged_set(31, rng.permutation([0, 0, 0, 0])), ("big", "lonely"))
    with pytest.raises(SaehError, match=r"class 'lonely' has 1 image\(s\); the dpsh protocol needs at least 2"):
        make_split(data, "dpsh", seed=0)


def test_dpsh_validation_needs_room():
    data = single_label_data(train_per_class=55, test_per_class=5, num_classes=2)
    with pytest.raises(SaehError, match="asks for 109 validation images but only 108 database images"):
        make_split(data, "dpsh", seed=0, validation_size=109)


def test_dpsh_multi_label():
    data = multi_label_data(train_size=5000, test_size=1000)
    split = make_split(data, "dpsh", seed=2)
    assert split.query.multi_label and split.query.labels.shape[1] == 5
    assert (len(split.query), len(split.train), len(split.database)) == (100, 500, 5900)
    assert "scaled by 0.1" in split.note
    query, database, train = (set(ids_of(s)) for s in (split.query, split.database, split.train))
    assert not query & database and train <= database


@pytest.mark.parametrize("protocol", ["ssdh", "dpsh", "dsh"])
def test_same_seed_same_split_other_seed_other_split(small, protocol):
    first = make_split(small, protocol, seed=5)
    again = make_split(small, protocol, seed=5)
    other = make_split(small, protocol, seed=6)
    for name in ("train", "validation", "query", "database"):
        np.testing.assert_array_equal(ids_of(getattr(first, name)), ids_of(getattr(again, name)))
    assert not np.array_equal(ids_of(first.validation), ids_of(other.validation))
    if protocol == "dpsh":
        assert not np.array_equal(ids_of(first.query), ids_of(other.query))


@pytest.mark.parametrize("protocol", ["ssdh", "dpsh", "dsh"])
def test_select_on_test_uses_the_queries_for_validation(small, protocol):
    split = make_split(small, protocol, seed=0, select_on_test=True)
    assert split.validation_is_query and split.validation is split.query
    if protocol != "dpsh":
        assert split.train is small.train  # nothing is held out: the original trained on all training images
    assert "select_on_test leaks the queries into model selection" in split.describe()
    assert not make_split(small, protocol, seed=0).validation_is_query


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"protocol": "deephash"}, "unknown protocol 'deephash'; expected one of ssdh, dpsh, dsh"),
        ({"seed": None}, "seed must be given"),
        ({"seed": -1}, "non-negative integer; got -1"),
        ({"seed": 1.5}, "non-negative integer; got 1.5"),
        ({"validation_size": 0.0}, "strictly between 0 and 1; got 0.0"),
        ({"validation_size": 1.5}, "strictly between 0 and 1; got 1.5"),
        ({"validation_size": 0}, "at least 1; got 0"),
        ({"validation_size": True}, "got True"),
        ({"validation_size": 500}, "leaves no training images"),
        ({"select_on_test": "yes"}, "select_on_test must be True or False"),
    ],
)
def test_bad_arguments(small, kwargs, message):
    with pytest.raises(SaehError, match=message):
        make_split(small, **kwargs)


def test_data_must_be_labelled_data():
    with pytest.raises(SaehError, match="data must be LabelledData"):
        make_split({"train": None})
