"""The retrieval metrics against a plain reference: per query, float Hamming distances, a full stable argsort,
and straightforward loops. Agreement is required to 1e-12 on random and class-clustered codes (many ties),
single- and multi-label, 0/1 and ±1 codes, odd bit lengths, every k and radius."""

import itertools
import math
import pathlib
import re
from fractions import Fraction

import numpy as np
import pytest

from saeh.errors import SaehError
from saeh.retrieval import (
    map_at_k,
    pr_curve_by_radius,
    pr_curve_by_rank,
    precision_recall_at_k,
    precision_within_radius,
)

TOLERANCE = 1e-12
DATASETS = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


# ---------------------------------------------------------------------------------------------------------------
# The plain reference.


def reference_distances(query_codes, db_codes):
    """Float Hamming distances from inner products of ±1 codes: d = (bits - <q, x>) / 2."""
    query = np.where(np.asarray(query_codes) > 0, 1.0, -1.0)
    database = np.where(np.asarray(db_codes) > 0, 1.0, -1.0)
    return 0.5 * (query.shape[1] - query @ database.T)


def reference_relevance(query_labels, db_labels):
    query, database = np.asarray(query_labels), np.asarray(db_labels)
    if query.ndim == 1:
        return query[:, None] == database[None, :]
    return query.astype(float) @ database.T.astype(float) > 0


def reference_ranked(distances_row, relevant_row):
    """Relevance of the database items in the order of a full stable sort of the distances."""
    return relevant_row[np.argsort(distances_row, kind="stable")]


def reference_average_precision(ranked, depth, n_relevant, normalize):
    hits, total = 0, 0.0
    for position, relevant in enumerate(ranked[:depth], start=1):
        if relevant:
            hits += 1
            total += hits / position
    denominator = hits if normalize == "retrieved" else n_relevant
    return total / denominator if denominator else 0.0


def reference_map(query_codes, db_codes, query_labels, db_labels, k, normalize="retrieved"):
    distances = reference_distances(query_codes, db_codes)
    relevance = reference_relevance(query_labels, db_labels)
    depth = len(db_codes) if k == "all" else k
    return np.array(
        [
            reference_average_precision(
                reference_ranked(distances[i], relevance[i]), depth, relevance[i].sum(), normalize
            )
            for i in range(len(distances))
        ]
    )


def reference_precision_recall(query_codes, db_codes, query_labels, db_labels, ks):
    distances = reference_distances(query_codes, db_codes)
    relevance = reference_relevance(query_labels, db_labels)
    n_database = len(db_codes)
    precision = np.zeros((len(distances), len(ks)))
    recall = np.zeros((len(distances), len(ks)))
    for i in range(len(distances)):
        ranked = reference_ranked(distances[i], relevance[i])
        for j, k in enumerate(ks):
            depth = n_database if k == "all" else min(k, n_database)
            hits = 0
            for relevant in ranked[:depth]:
                hits += int(relevant)
            precision[i, j] = hits / depth
            recall[i, j] = hits / relevance[i].sum() if relevance[i].sum() else 0.0
    return precision, recall


def reference_radius(query_codes, db_codes, query_labels, db_labels, radius):
    """Per query (precision, recall, empty) of the Hamming ball, by a loop over the database."""
    distances = reference_distances(query_codes, db_codes)
    relevance = reference_relevance(query_labels, db_labels)
    rows = []
    for i in range(len(distances)):
        retrieved = relevant_retrieved = 0
        for distance, relevant in zip(distances[i], relevance[i]):
            if distance <= radius:
                retrieved += 1
                relevant_retrieved += int(relevant)
        total = relevance[i].sum()
        rows.append(
            (
                relevant_retrieved / retrieved if retrieved else 0.0,
                relevant_retrieved / total if total else 0.0,
                retrieved == 0,
            )
        )
    return np.array(rows, dtype=float)


def enumerated_tie_average(distances_row, relevant_row, depth, normalize):
    """Mean AP over every order that keeps distance groups in place and permutes items within each group."""
    groups = [np.flatnonzero(distances_row == value) for value in np.unique(distances_row)]
    scores = [
        reference_average_precision(
            relevant_row[np.concatenate(orders)], depth, relevant_row.sum(), normalize
        )
        for orders in itertools.product(*(list(itertools.permutations(group)) for group in groups))
    ]
    return float(np.mean(scores))


# ---------------------------------------------------------------------------------------------------------------
# Test data: random codes, and codes like a trained model's (a centre code per class, a few flipped bits).


def make_case(kind, bits, multi_label, code_format, seed, n_query=24, n_database=170, n_classes=5):
    rng = np.random.default_rng(seed)
    n = n_query + n_database
    classes = rng.integers(0, n_classes, n)
    if kind == "random":
        codes = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    else:
        centres = rng.integers(0, 2, (n_classes, bits), dtype=np.uint8)
        # 15% of items sit on another class's centre; 1-in-20 bits flipped: small distances, many ties.
        centre_of = np.where(rng.random(n) < 0.15, rng.integers(0, n_classes, n), classes)
        codes = centres[centre_of] ^ (rng.random((n, bits)) < 0.05)
    if multi_label:
        labels = np.zeros((n, n_classes + 2), dtype=np.uint8)
        labels[np.arange(n), classes] = 1
        labels[rng.random((n, n_classes + 2)) < 0.15] = 1
        labels[rng.random(n) < 0.05] = 0  # some items carry no label at all
        labels[0] = 0  # query 0 has no relevant item
    else:
        labels = classes.copy()
        labels[0] = 99  # query 0 has no relevant item
    if code_format == "pm1":
        codes = 2 * codes.astype(np.int8) - 1
    return codes[:n_query], codes[n_query:], labels[:n_query], labels[n_query:]


CASES = [
    pytest.param(kind, bits, multi, code_format, id=f"{kind}-{bits}b-{'multi' if multi else 'single'}-{code_format}")
    for kind in ("random", "clustered")
    for bits in (7, 12, 33, 65)
    for multi in (False, True)
    for code_format in ("01", "pm1")
]


@pytest.mark.parametrize("kind, bits, multi, code_format", CASES)
def test_map_matches_reference(kind, bits, multi, code_format):
    query, database, query_labels, db_labels = make_case(kind, bits, multi, code_format, seed=bits)
    n_database = len(database)
    for k in (1, 3, 50, n_database - 1, n_database, n_database + 7, "all"):
        for normalize in ("retrieved", "all"):
            expected = reference_map(query, database, query_labels, db_labels, k, normalize)
            for chunk_pairs in (500, 1 << 19):  # several chunks with a ragged last one, and a single chunk
                got = map_at_k(
                    query, database, query_labels, db_labels, k, normalize=normalize, per_query=True,
                    chunk_pairs=chunk_pairs,
                )
                np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"k={k} {normalize}")
            mean = map_at_k(query, database, query_labels, db_labels, k, normalize=normalize)
            assert abs(mean - expected.mean()) < TOLERANCE


@pytest.mark.parametrize("kind, bits, multi, code_format", CASES)
def test_precision_recall_at_k_and_curve_by_rank_match_reference(kind, bits, multi, code_format):
    query, database, query_labels, db_labels = make_case(kind, bits, multi, code_format, seed=100 + bits)
    ks = [1, 2, 10, 99, len(database), 1000, "all"]
    expected_precision, expected_recall = reference_precision_recall(query, database, query_labels, db_labels, ks)
    got = precision_recall_at_k(query, database, query_labels, db_labels, ks, per_query=True, chunk_pairs=700)
    assert got["k"] == ks
    np.testing.assert_allclose(got["precision"], expected_precision, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(got["recall"], expected_recall, rtol=0, atol=TOLERANCE)
    means = precision_recall_at_k(query, database, query_labels, db_labels, ks)
    np.testing.assert_allclose(means["precision"], expected_precision.mean(axis=0), rtol=0, atol=TOLERANCE)

    curve = pr_curve_by_rank(query, database, query_labels, db_labels)
    assert curve["rank"][0] == 1 and curve["rank"][-1] == len(database)
    few = pr_curve_by_rank(query, database, query_labels, db_labels, points=5)
    assert len(few["rank"]) == 5 and few["rank"][0] == 1 and few["rank"][-1] == len(database)
    few_precision, _ = reference_precision_recall(query, database, query_labels, db_labels, list(few["rank"]))
    np.testing.assert_allclose(few["precision"], few_precision.mean(axis=0), rtol=0, atol=TOLERANCE)
    expected_precision, expected_recall = reference_precision_recall(
        query, database, query_labels, db_labels, list(curve["rank"])
    )
    np.testing.assert_allclose(curve["precision"], expected_precision.mean(axis=0), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(curve["recall"], expected_recall.mean(axis=0), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("kind, bits, multi, code_format", CASES)
def test_radius_metrics_match_reference(kind, bits, multi, code_format):
    query, database, query_labels, db_labels = make_case(kind, bits, multi, code_format, seed=200 + bits)
    curve = pr_curve_by_radius(query, database, query_labels, db_labels, chunk_pairs=900)
    np.testing.assert_array_equal(curve["radius"], np.arange(bits + 1))
    for radius in sorted({0, 1, 2, bits // 2, bits, bits + 3}):
        expected = reference_radius(query, database, query_labels, db_labels, radius)
        got = precision_within_radius(query, database, query_labels, db_labels, radius, chunk_pairs=900)
        assert got.radius == radius
        assert abs(got.precision - expected[:, 0].mean()) < TOLERANCE
        assert abs(got.recall - expected[:, 1].mean()) < TOLERANCE
        assert abs(got.empty_fraction - expected[:, 2].mean()) < TOLERANCE
        nonempty = expected[:, 2] == 0
        if nonempty.any():
            assert abs(got.precision_nonempty - expected[nonempty, 0].mean()) < TOLERANCE
        else:
            assert got.precision_nonempty is None
        if radius <= bits:
            assert abs(curve["precision"][radius] - expected[:, 0].mean()) < TOLERANCE
            assert abs(curve["recall"][radius] - expected[:, 1].mean()) < TOLERANCE
            assert abs(curve["empty_fraction"][radius] - expected[:, 2].mean()) < TOLERANCE


def test_empty_balls_score_zero_and_are_counted():
    rng = np.random.default_rng(5)
    query = rng.integers(0, 2, (40, 65))
    database = rng.integers(0, 2, (300, 65))
    database[0] = query[0]  # exactly one query has a non-empty ball at radius 0
    labels = rng.integers(0, 3, 40)
    db_labels = rng.integers(0, 3, 300)
    db_labels[0] = labels[0]
    result = precision_within_radius(query, database, labels, db_labels, radius=0)
    assert result.empty_fraction == pytest.approx(39 / 40, abs=TOLERANCE)
    assert result.precision == pytest.approx(1 / 40, abs=TOLERANCE)
    assert result.precision_nonempty == pytest.approx(1.0, abs=TOLERANCE)
    assert result.as_dict()["empty_fraction"] == result.empty_fraction


def test_query_without_relevant_items_scores_zero_and_counts():
    query = np.array([[0, 0, 0], [1, 1, 1]])
    database = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]])
    labels = np.array([0, 7])  # class 7 is not in the database
    db_labels = np.array([0, 1, 1])
    per_query = map_at_k(query, database, labels, db_labels, k="all", per_query=True)
    np.testing.assert_allclose(per_query, [1.0, 0.0], atol=TOLERANCE)
    assert map_at_k(query, database, labels, db_labels, k="all") == pytest.approx(0.5, abs=TOLERANCE)
    assert map_at_k(query, database, labels, db_labels, k="all", ties="average") == pytest.approx(0.5, abs=TOLERANCE)


def test_ties_are_broken_by_database_index():
    database = np.zeros((6, 9), dtype=np.uint8)  # every item ties at distance 0
    query = np.zeros((1, 9), dtype=np.uint8)
    db_labels = np.array([2, 1, 2, 1, 2, 2])
    # Index order puts relevant items (label 1) at positions 2 and 4: AP = (1/2 + 2/4) / 2.
    assert map_at_k(query, database, [1], db_labels, k="all") == pytest.approx(0.5, abs=TOLERANCE)
    # Top 3 holds one relevant item at position 2: AP@3 = 1/2, P@3 = 1/3, R@3 = 1/2.
    assert map_at_k(query, database, [1], db_labels, k=3) == pytest.approx(0.5, abs=TOLERANCE)
    result = precision_recall_at_k(query, database, [1], db_labels, ks=[3])
    assert result["precision"][0] == pytest.approx(1 / 3) and result["recall"][0] == pytest.approx(0.5)
    # Moving the relevant items to the front of the database changes the stable order, hence the AP.
    reordered = np.array([1, 1, 2, 2, 2, 2])
    assert map_at_k(query, database, [1], reordered, k="all") == pytest.approx(1.0, abs=TOLERANCE)
    # The tie-averaged AP depends only on the group counts, not on the order.
    assert map_at_k(query, database, [1], db_labels, k="all", ties="average") == pytest.approx(
        map_at_k(query, database, [1], reordered, k="all", ties="average"), abs=TOLERANCE
    )


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_tie_average_matches_exact_enumeration(seed, multi):
    rng = np.random.default_rng(seed)
    bits, n_database = 3, 8  # 8 items over distances 0..3: tie groups of up to ~5, at most a few thousand orders
    query = rng.integers(0, 2, (3, bits))
    database = rng.integers(0, 2, (n_database, bits))
    if multi:
        query_labels = (rng.random((3, 3)) < 0.5).astype(np.uint8)
        db_labels = (rng.random((n_database, 3)) < 0.4).astype(np.uint8)
    else:
        query_labels = rng.integers(0, 2, 3)
        db_labels = rng.integers(0, 2, n_database)
    distances = reference_distances(query, database)
    relevance = reference_relevance(query_labels, db_labels)
    for k in (1, 2, 3, 5, 7, n_database, "all"):
        depth = n_database if k == "all" else k
        for normalize in ("retrieved", "all"):
            expected = [enumerated_tie_average(distances[i], relevance[i], depth, normalize) for i in range(3)]
            got = map_at_k(
                query, database, query_labels, db_labels, k, ties="average", normalize=normalize, per_query=True
            )
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"k={k} {normalize}")


def test_tie_average_matches_monte_carlo_on_a_larger_case():
    # Large tie groups (hundreds of items) are out of reach of enumeration; compare with shuffled orders.
    rng = np.random.default_rng(11)
    query, database, query_labels, db_labels = make_case(
        "clustered", 6, False, "01", seed=11, n_query=3, n_database=400
    )
    distances = reference_distances(query, database)
    relevance = reference_relevance(query_labels, db_labels)
    got = map_at_k(query, database, query_labels, db_labels, k=100, ties="average", per_query=True)
    for i in range(3):
        samples = []
        for _ in range(400):
            shuffled = rng.permutation(len(database))  # random order, then a stable sort: random ties
            ranked = relevance[i][shuffled][np.argsort(distances[i][shuffled], kind="stable")]
            samples.append(reference_average_precision(ranked, 100, relevance[i].sum(), "retrieved"))
        standard_error = np.std(samples) / np.sqrt(len(samples))
        assert abs(got[i] - np.mean(samples)) < 5 * standard_error + 1e-9


def test_tie_average_equals_index_order_without_ties():
    bits = 10
    database = np.tril(np.ones((bits + 1, bits), dtype=np.uint8), k=-1)  # item j has j ones: distances all differ
    query = np.zeros((2, bits), dtype=np.uint8)
    db_labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1])
    for k in (1, 4, "all"):
        for normalize in ("retrieved", "all"):
            index = map_at_k(query, database, [1, 0], db_labels, k, normalize=normalize, per_query=True)
            average = map_at_k(
                query, database, [1, 0], db_labels, k, ties="average", normalize=normalize, per_query=True
            )
            np.testing.assert_allclose(average, index, rtol=0, atol=TOLERANCE)


def test_code_formats_give_identical_results():
    query, database, query_labels, db_labels = make_case("clustered", 33, False, "01", seed=3)
    expected = map_at_k(query, database, query_labels, db_labels, k=50, per_query=True)
    for convert in (
        lambda codes: codes.astype(bool),
        lambda codes: 2.0 * codes - 1.0,
        lambda codes: (2 * codes.astype(np.int64) - 1),
        lambda codes: codes.astype(np.float32),
    ):
        got = map_at_k(convert(query), convert(database), query_labels, db_labels, k=50, per_query=True)
        np.testing.assert_array_equal(got, expected)
    # Queries in 0/1 and database in ±1 encode the same bits.
    mixed = map_at_k(query, 2 * database.astype(np.int8) - 1, query_labels, db_labels, k=50, per_query=True)
    np.testing.assert_array_equal(mixed, expected)


def test_real_codes_match_reference():
    path = DATASETS / "mnist.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with np.load(path) as mnist:
        images = np.concatenate([mnist["x_test"][:60], mnist["x_train"][:600]]).reshape(660, -1) / 255.0
        labels = np.concatenate([mnist["y_test"][:60], mnist["y_train"][:600]])
    # Real images hashed by random hyperplanes through their mean: structured codes with real ties.
    projection = np.random.default_rng(0).normal(size=(images.shape[1], 12))
    codes = ((images - images.mean(axis=0)) @ projection > 0).astype(np.uint8)
    query, database, query_labels, db_labels = codes[:60], codes[60:], labels[:60], labels[60:]
    for k in (10, 100, "all"):
        expected = reference_map(query, database, query_labels, db_labels, k)
        got = map_at_k(query, database, query_labels, db_labels, k, per_query=True)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    expected = reference_radius(query, database, query_labels, db_labels, 2)
    got = precision_within_radius(query, database, query_labels, db_labels, 2)
    assert abs(got.precision - expected[:, 0].mean()) < TOLERANCE
    assert abs(got.recall - expected[:, 1].mean()) < TOLERANCE


@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
def test_duplicate_queries_are_scored_once_and_spread_back(multi):
    """The metrics score each distinct (code, labels) pair once; every query must still get its own numbers."""
    query, database, query_labels, db_labels = make_case("clustered", 12, multi, "01", seed=9, n_query=12)
    rng = np.random.default_rng(1)
    # 80 queries from 12: the same code with the same labels, and the same code with other labels.
    pick_code, pick_label = rng.integers(0, 12, 80), rng.integers(0, 12, 80)
    pick_label[::3] = pick_code[::3]
    query, query_labels = query[pick_code], query_labels[pick_label]
    for k in (5, 60, "all"):
        expected = reference_map(query, database, query_labels, db_labels, k)
        got = map_at_k(query, database, query_labels, db_labels, k, per_query=True, chunk_pairs=700)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    ks = [1, 7, 100, "all"]
    expected_precision, expected_recall = reference_precision_recall(query, database, query_labels, db_labels, ks)
    got = precision_recall_at_k(query, database, query_labels, db_labels, ks, per_query=True, chunk_pairs=700)
    np.testing.assert_allclose(got["precision"], expected_precision, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(got["recall"], expected_recall, rtol=0, atol=TOLERANCE)
    curve = pr_curve_by_radius(query, database, query_labels, db_labels, chunk_pairs=700)
    for radius in (0, 2, 12):
        expected = reference_radius(query, database, query_labels, db_labels, radius)
        got = precision_within_radius(query, database, query_labels, db_labels, radius, chunk_pairs=700)
        assert abs(got.precision - expected[:, 0].mean()) < TOLERANCE
        assert abs(got.recall - expected[:, 1].mean()) < TOLERANCE
        assert abs(got.empty_fraction - expected[:, 2].mean()) < TOLERANCE
        assert abs(curve["precision"][radius] - expected[:, 0].mean()) < TOLERANCE
        assert abs(curve["empty_fraction"][radius] - expected[:, 2].mean()) < TOLERANCE
    # The tie-averaged AP too: each query alone (nothing to share) gives what it gets among its duplicates.
    averaged = map_at_k(query, database, query_labels, db_labels, "all", ties="average", per_query=True)
    alone = [map_at_k(query[i : i + 1], database, query_labels[i : i + 1], db_labels, "all", ties="average")
             for i in range(len(query))]
    np.testing.assert_allclose(averaged, alone, rtol=0, atol=TOLERANCE)


def test_codes_longer_than_255_bits_match_reference():
    """Distances above 255 need 16-bit counters in the scans."""
    query, database, query_labels, db_labels = make_case("clustered", 300, False, "01", seed=300)
    for k in (1, 5, 60, "all"):
        expected = reference_map(query, database, query_labels, db_labels, k)
        got = map_at_k(query, database, query_labels, db_labels, k, per_query=True, chunk_pairs=900)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    expected = reference_radius(query, database, query_labels, db_labels, 140)
    got = precision_within_radius(query, database, query_labels, db_labels, 140)
    assert abs(got.precision - expected[:, 0].mean()) < TOLERANCE


def _valid():
    rng = np.random.default_rng(0)
    return rng.integers(0, 2, (5, 8)), rng.integers(0, 2, (9, 8)), rng.integers(0, 3, 5), rng.integers(0, 3, 9)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda q, d, ql, dl: (q[:, :7], d, ql, dl), "7 bits but database codes have 8"),
        (lambda q, d, ql, dl: (q, d, np.eye(3, dtype=np.uint8)[ql], dl), "both must be (N,) class ids"),
        (lambda q, d, ql, dl: (q, d, np.eye(3)[ql], np.eye(4)[dl]), "same C"),
        (lambda q, d, ql, dl: (q, d, ql[:4], dl), "query labels have 4 rows but there are 5 codes"),
        (lambda q, d, ql, dl: (q, d, 2 * np.eye(3)[ql], np.eye(3)[dl]), "multi-hot 0/1"),
        (lambda q, d, ql, dl: (q, d, ql + 0.5, dl), "integer class ids"),
        (lambda q, d, ql, dl: (q + 1, d, ql, dl), "only 0/1 or -1/+1"),
        (lambda q, d, ql, dl: (np.where(q == 1, 1, -1) * (np.arange(8) > 0), d, ql, dl), "mixes 0 and -1"),
        (lambda q, d, ql, dl: (q[:0], d, ql[:0], dl), "query codes is empty"),
        (lambda q, d, ql, dl: (q[0], d, ql, dl), "2-D array"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    query, database, query_labels, db_labels = change(*_valid())
    with pytest.raises(SaehError, match=re.escape(message)):
        map_at_k(query, database, query_labels, db_labels, k=3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda *a: map_at_k(*a, k=0), "positive integer or 'all'"),
        (lambda *a: map_at_k(*a, k="al"), "positive integer or 'all'"),
        (lambda *a: map_at_k(*a, k=2.5), "positive integer or 'all'"),
        (lambda *a: map_at_k(*a, k=True), "positive integer or 'all'"),
        (lambda *a: map_at_k(*a, ties="random"), "ties must be one of"),
        (lambda *a: map_at_k(*a, normalize="none"), "normalize must be one of"),
        (lambda *a: map_at_k(*a, chunk_pairs=0), "chunk_pairs"),
        (lambda *a: precision_recall_at_k(*a, ks=[]), "at least one k"),
        (lambda *a: precision_recall_at_k(*a, ks=[5, -1]), "positive integer"),
        (lambda *a: precision_within_radius(*a, radius=-1), "non-negative integer"),
    ],
)
def test_bad_settings_raise_clear_errors(call, message):
    with pytest.raises(SaehError, match=re.escape(message)):
        call(*_valid())


def test_arbitrary_class_ids_and_bool_multi_hot_labels():
    query, database, query_labels, db_labels = make_case("clustered", 12, False, "01", seed=8)
    expected = map_at_k(query, database, query_labels, db_labels, k=20, per_query=True)
    shifted = map_at_k(query, database, 1000 * query_labels - 5, 1000 * db_labels - 5, k=20, per_query=True)
    np.testing.assert_array_equal(shifted, expected)
    query, database, query_labels, db_labels = make_case("clustered", 12, True, "01", seed=8)
    expected = map_at_k(query, database, query_labels, db_labels, k=20, per_query=True)
    as_bool = map_at_k(query, database, query_labels.astype(bool), db_labels.astype(bool), k=20, per_query=True)
    np.testing.assert_array_equal(as_bool, expected)


def test_harmonic_sums_stay_accurate_deep_in_the_ranking():
    from saeh.retrieval.metrics import _harmonic_sum

    pairs = [(0, 1), (5, 3), (98, 4), (99, 1), (150, 2), (10_000, 7), (10**6, 1), (10**6, 1000), (3, 10**5)]
    for before, slots in pairs:
        exact = math.fsum(1.0 / (before + p) for p in range(1, slots + 1))
        got = _harmonic_sum(np.array([float(before)]), np.array([float(slots)]))[0]
        # The closed form multiplies H by (before + 1): that product must stay exact too.
        assert abs(got - exact) * (before + 1) < 1e-12, (before, slots)


def test_hypergeometric_probabilities_match_exact_fractions():
    from saeh.retrieval.metrics import _hypergeometric_pmf

    cases = np.array([[12, 5, 4], [60, 30, 10], [400, 120, 90], [7, 7, 3], [9, 0, 4], [30, 10, 30]], dtype=float)
    drawn, probability = _hypergeometric_pmf(cases[:, :1], cases[:, 1:2], cases[:, 2:])
    for (population, successes, draws), xs, ps in zip(cases.astype(int), drawn, probability):
        for x, p in zip(xs.astype(int), ps):
            if x > min(draws, successes):
                assert p == 0
                continue
            ways = math.comb(successes, x) * math.comb(population - successes, draws - x)
            exact = Fraction(ways, math.comb(population, draws))
            assert abs(p - float(exact)) <= 1e-12 * float(exact), (population, successes, draws, x)
        assert abs(ps.sum() - 1) < 1e-14


def test_a_runs_scores_record_the_tie_averaged_map_which_no_storage_order_moves():
    """`score` (what scores.json and the result files keep): mAP with ties by database index moves when the same
    database is stored class-sorted or shuffled; the tie-averaged mAP it records beside it does not."""
    from saeh.codes import make_codes
    from saeh.retrieval import score

    rng = np.random.default_rng(4)
    db_labels = np.repeat(np.arange(4), 50)  # class-sorted, as class folders load
    centres = rng.integers(0, 2, (4, 6))
    database_bits = centres[db_labels] ^ (rng.random((200, 6)) < 0.2)  # 6 bits: heavy ties
    query_labels = np.arange(40) % 4
    query_bits = centres[query_labels] ^ (rng.random((40, 6)) < 0.2)
    query = make_codes(query_bits.astype(np.float32), query_labels, threshold=0.5)
    order = rng.permutation(200)
    stored = {"class-sorted": make_codes(database_bits.astype(np.float32), db_labels, threshold=0.5),
              "shuffled": make_codes(database_bits[order].astype(np.float32), db_labels[order], threshold=0.5)}
    scores = {name: score(query, database, top_k=50) for name, database in stored.items()}
    assert abs(scores["class-sorted"]["map@50"] - scores["shuffled"]["map@50"]) > 0.005
    for name in ("map_ties_averaged@50", "map_ties_averaged@all"):
        assert scores["class-sorted"][name] == pytest.approx(scores["shuffled"][name], abs=TOLERANCE)
    assert scores["class-sorted"]["map_ties_averaged@50"] == pytest.approx(
        map_at_k(query_bits, database_bits, query_labels, db_labels, 50, ties="average"), abs=TOLERANCE)
