"""saeh.pairs against its definitions written here with plain loops: two images are similar when they share a label;
the pairs of a batch are those of two different images; a triplet is an anchor, another image sharing a label with
it and an image sharing none, drawn uniformly."""

import collections

import keras
import numpy as np
import pytest

from saeh import pairs
from saeh.errors import SaehError

CLASS_IDS = np.array([0, 1, 0, 2, 1, 0])
MULTI_A = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 0]])
MULTI_B = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]])


def label_sets(labels):
    """Each image's labels as a set: {class id}, or the columns of its 1s."""
    labels = np.asarray(labels)
    return [{int(row)} if labels.ndim == 1 else {c for c, bit in enumerate(row) if bit} for row in labels]


def reference_share(labels_a, labels_b):
    return np.array([[bool(a & b) for b in label_sets(labels_b)] for a in label_sets(labels_a)])


def value(tensor):
    return keras.ops.convert_to_numpy(tensor)


def one_hot(ids, classes=3):
    return np.eye(classes, dtype=np.float32)[ids]


def test_share_a_label_of_class_ids_and_of_multi_hot_rows():
    np.testing.assert_array_equal(pairs.share_a_label(CLASS_IDS, CLASS_IDS), reference_share(CLASS_IDS, CLASS_IDS))
    np.testing.assert_array_equal(pairs.share_a_label(MULTI_A, MULTI_B), reference_share(MULTI_A, MULTI_B))
    rng = np.random.default_rng(0)
    many_a, many_b = rng.integers(0, 2, (30, 5)), rng.integers(0, 2, (20, 5))
    np.testing.assert_array_equal(pairs.share_a_label(many_a, many_b), reference_share(many_a, many_b))
    wide_a, wide_b = (rng.random((30, 130)) < 0.03).astype(int), (rng.random((20, 130)) < 0.03).astype(int)
    np.testing.assert_array_equal(pairs.share_a_label(wide_a, wide_b), reference_share(wide_a, wide_b))  # 3 words
    assert not pairs.share_a_label(MULTI_B, MULTI_B)[3, 3]  # an image without labels is similar to none, itself too


@pytest.mark.parametrize("labels_a, labels_b, message", [
    (CLASS_IDS, MULTI_B, "labels_sampled and labels_all must both be class ids or both multi-hot"),
    (MULTI_A, np.eye(4, dtype=int), "labels_sampled has 3 classes but labels_all has 4"),
    (np.array([[2, 0]]), np.array([[1, 0]]), "labels_sampled given as a matrix must be multi-hot"),
    (np.zeros((0,)), CLASS_IDS, r"labels_sampled must be \(N,\) class ids"),
])
def test_share_a_label_names_a_bad_argument(labels_a, labels_b, message):
    with pytest.raises(SaehError, match=message):
        pairs.share_a_label(labels_a, labels_b, names=("labels_sampled", "labels_all"))


def test_similar_pairs_is_share_a_label_as_a_tensor():
    np.testing.assert_array_equal(value(pairs.similar_pairs(MULTI_A, MULTI_B)), reference_share(MULTI_A, MULTI_B))
    ids = one_hot(CLASS_IDS)
    np.testing.assert_array_equal(value(pairs.similar_pairs(ids, ids)), reference_share(CLASS_IDS, CLASS_IDS))
    assert value(pairs.similar_pairs(ids, ids)).dtype == np.float32
    with pytest.raises(SaehError, match="labels_a and labels_b must have the same number of classes"):
        pairs.similar_pairs(np.eye(3), np.eye(4))
    with pytest.raises(SaehError, match="labels_a must be a non-empty matrix"):
        pairs.similar_pairs(CLASS_IDS, ids)


def test_the_pairs_of_a_batch_leave_out_self_pairs():
    count = 5
    ordered = [(i, j) for i in range(count) for j in range(count) if i != j]
    unordered = [(i, j) for i in range(count) for j in range(count) if i < j]
    assert [tuple(pair) for pair in np.argwhere(value(pairs.ordered_pairs(count)))] == ordered
    assert [tuple(pair) for pair in np.argwhere(value(pairs.unordered_pairs(count)))] == unordered
    assert value(pairs.ordered_pairs(count)).sum() == len(ordered)
    assert value(pairs.unordered_pairs(count)).sum() == len(unordered)
    matrix = np.arange(16).reshape(4, 4)
    assert list(pairs.off_diagonal(matrix)) == [matrix[i, j] for i, j in
                                                 ((i, j) for i in range(4) for j in range(4) if i != j)]


TRIPLET_LABELS = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1], [1, 0, 0]], np.float32)


def test_triplets_hold_an_anchor_a_positive_and_a_negative():
    sets = label_sets(TRIPLET_LABELS)
    for seed in range(20):
        anchors, positives, negatives, valid = (value(part) for part in pairs.sample_triplets(TRIPLET_LABELS, seed))
        assert list(anchors) == list(range(len(sets)))
        for anchor, positive, negative, usable in zip(anchors, positives, negatives, valid):
            others = [j for j in range(len(sets)) if j != anchor and sets[anchor] & sets[j]]
            strangers = [j for j in range(len(sets)) if not sets[anchor] & sets[j]]
            assert usable == float(bool(others and strangers))
            if usable:
                assert positive in others and negative in strangers
    # Image 1's only positive is image 4; nobody shares a label with an image of no labels, and it with nobody.
    alone = np.concatenate([TRIPLET_LABELS, np.zeros((1, 3), np.float32)])
    _, positives, _, valid = (value(part) for part in pairs.sample_triplets(alone, 0))
    assert positives[1] == 4 and list(valid) == [1, 1, 1, 1, 1, 1, 0]


def test_triplets_are_drawn_uniformly_and_by_the_seed():
    first = [value(part) for part in pairs.sample_triplets(TRIPLET_LABELS, 7)]
    again = [value(part) for part in pairs.sample_triplets(TRIPLET_LABELS, 7)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # A seed generator gives new triplets at each call (here of one traced function, as in a training step).
    import tensorflow as tf

    generator = keras.random.SeedGenerator(0)
    draw = tf.function(lambda: pairs.sample_triplets(TRIPLET_LABELS, generator))
    draws = 600
    positives, negatives = collections.Counter(), collections.Counter()
    for _ in range(draws):
        _, positive, negative, _ = draw()
        positives[int(value(positive)[0])] += 1
        negatives[int(value(negative)[0])] += 1
    # Anchor 0 has the positives {2, 5} and the negatives {1, 3, 4}: each drawn about equally often.
    assert set(positives) == {2, 5} and set(negatives) == {1, 3, 4}
    for counts, choices in ((positives, 2), (negatives, 3)):
        expected = draws / choices
        assert all(abs(count - expected) < 4 * np.sqrt(expected) for count in counts.values()), counts
