"""DSRH's graded measures (NDCG@k, ACG@k, weighted mAP@k) against a plain reference written here from the formulas:
Python loops over a ranking sorted by (distance, database index), relevance level = the number of shared labels,
exact fractions where the measure is rational, the ideal DCG also by brute force over every order of tiny
databases, and the official evaluator's conventions (natural-log discount, ideal DCG from the whole database)."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from saeh.codes import make_codes
from saeh.errors import SaehError
from saeh.retrieval import (
    acg_at_k,
    evaluate,
    evaluate_codes,
    map_at_k,
    ndcg_at_k,
    precision_recall_at_k,
    weighted_map_at_k,
)

TOLERANCE = 1e-12
MEASURES = {"ndcg": ndcg_at_k, "acg": acg_at_k, "wmap": weighted_map_at_k}

# ---------------------------------------------------------------------------------------------------------------
# The plain reference.


def level(query_label, db_label):
    """Number of shared labels (multi-hot rows), or 1/0 for equal/different class ids."""
    if np.ndim(query_label) == 0:
        return int(query_label == db_label)
    return sum(int(a) * int(b) for a, b in zip(query_label, db_label))


def ranked_levels(query_code, query_label, db_codes, db_labels):
    """Relevance levels of the whole database, ranked by Hamming distance, ties by database index."""
    distances = [sum(int(a > 0) != int(b > 0) for a, b in zip(query_code, code)) for code in db_codes]
    order = sorted(range(len(db_codes)), key=lambda index: (distances[index], index))
    return [level(query_label, db_labels[index]) for index in order]


def dcg(levels, depth, log=math.log2):
    return sum((2 ** r - 1) / log(i + 1) for i, r in enumerate(levels[:depth], start=1))


def reference_ndcg(levels, depth, log=math.log2):
    ideal = dcg(sorted(levels, reverse=True), depth, log)
    return dcg(levels, depth, log) / ideal if ideal else 0.0


def reference_acg(levels, depth):
    return Fraction(sum(levels[:depth]), min(depth, len(levels)))


def reference_weighted_ap(levels, depth):
    terms = [Fraction(sum(levels[:i]), i) for i in range(1, min(depth, len(levels)) + 1) if levels[i - 1] > 0]
    return sum(terms) / len(terms) if terms else Fraction(0)


REFERENCES = {"ndcg": reference_ndcg, "acg": reference_acg, "wmap": reference_weighted_ap}


def reference_scores(name, query, database, query_labels, db_labels, k, rankings=None):
    """Per query scores; `rankings` (each query's `ranked_levels`) may be passed to reuse them."""
    depth = len(database) if k == "all" else k
    if rankings is None:
        rankings = [ranked_levels(query[i], query_labels[i], database, db_labels) for i in range(len(query))]
    return np.array([float(REFERENCES[name](levels, depth)) for levels in rankings])


def make_case(kind, bits, multi_label, seed, n_query=20, n_database=150, n_classes=6):
    rng = np.random.default_rng(seed)
    n = n_query + n_database
    classes = rng.integers(0, n_classes, n)
    if kind == "random":
        codes = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    else:  # a centre code per class, few flipped bits: many ties, as a trained model's codes
        centres = rng.integers(0, 2, (n_classes, bits), dtype=np.uint8)
        codes = centres[classes] ^ (rng.random((n, bits)) < 0.05)
    if multi_label:
        labels = (rng.random((n, n_classes)) < 0.3).astype(np.uint8)
        labels[np.arange(n), classes] = 1
        labels[0] = 0  # query 0 has no label: nothing is relevant to it
        labels[n_query] = 0  # a database item with no label
    else:
        labels = classes.copy()
        labels[0] = 99  # query 0's class is not in the database
    return codes[:n_query], codes[n_query:], labels[:n_query], labels[n_query:]


CASES = [
    pytest.param(kind, bits, multi, id=f"{kind}-{bits}b-{'multi' if multi else 'single'}")
    for kind in ("random", "clustered")
    for bits in (5, 16, 70)
    for multi in (True, False)
]


# ---------------------------------------------------------------------------------------------------------------
# Agreement with the reference.


@pytest.mark.parametrize("kind, bits, multi", CASES)
def test_graded_measures_match_reference(kind, bits, multi):
    query, database, query_labels, db_labels = make_case(kind, bits, multi, seed=bits)
    n_database = len(database)
    rankings = [ranked_levels(query[i], query_labels[i], database, db_labels) for i in range(len(query))]
    for k in (1, 2, 17, 100, n_database - 1, n_database, n_database + 7, "all"):
        for name, measure in MEASURES.items():
            expected = reference_scores(name, query, database, query_labels, db_labels, k, rankings)
            for chunk_pairs in (400, 1 << 19):  # several chunks with a ragged last one, and a single chunk
                got = measure(query, database, query_labels, db_labels, k, per_query=True, chunk_pairs=chunk_pairs)
                np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{name} k={k}")
            mean = measure(query, database, query_labels, db_labels, k)
            assert abs(mean - expected.mean()) < TOLERANCE, (name, k)


def test_many_labels_and_high_levels_match_reference():
    """More than 64 classes span several packed words; more than 255 shared labels need wider counters."""
    rng = np.random.default_rng(3)
    query, database = rng.integers(0, 2, (6, 24)), rng.integers(0, 2, (40, 24))
    query_labels = (rng.random((6, 300)) < 0.97).astype(np.uint8)
    db_labels = (rng.random((40, 300)) < 0.97).astype(np.uint8)
    for name, measure in MEASURES.items():
        expected = reference_scores(name, query, database, query_labels, db_labels, 10)
        got = measure(query, database, query_labels, db_labels, 10, per_query=True)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=name)
    assert acg_at_k(query, database, query_labels, db_labels, 10) > 255


def test_duplicate_queries_get_their_own_scores():
    query, database, query_labels, db_labels = make_case("clustered", 12, True, seed=9, n_query=12)
    rng = np.random.default_rng(1)
    pick_code, pick_label = rng.integers(0, 12, 60), rng.integers(0, 12, 60)
    pick_label[::3] = pick_code[::3]
    query, query_labels = query[pick_code], query_labels[pick_label]
    for name, measure in MEASURES.items():
        expected = reference_scores(name, query, database, query_labels, db_labels, 30)
        got = measure(query, database, query_labels, db_labels, 30, per_query=True, chunk_pairs=500)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=name)


def test_exhaustive_tiny_databases_and_brute_force_ideal_dcg():
    """Every assignment of label sets (2 classes) to 3 database items, every query code and label set, two code
    layouts (distinct distances, and ties); the ideal DCG is also the best DCG over every order of the database."""
    label_sets = [(0, 0), (0, 1), (1, 0), (1, 1)]
    layouts = [np.array([[0, 0], [0, 1], [1, 1]]), np.array([[0, 1], [1, 0], [0, 1]])]
    queries = [(code, labels) for code in itertools.product((0, 1), repeat=2) for labels in label_sets]
    query = np.array([code for code, _ in queries])
    query_labels = np.array([labels for _, labels in queries])
    for database in layouts:
        for assignment in itertools.product(label_sets, repeat=3):
            db_labels = np.array(assignment)
            for k in (1, 2, 3, 5):
                for name, measure in MEASURES.items():
                    expected = reference_scores(name, query, database, query_labels, db_labels, k)
                    got = measure(query, database, query_labels, db_labels, k, per_query=True)
                    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{name} k={k}")
    levels = [3, 0, 1, 2, 1]
    for depth in (1, 2, 4, 5):
        best = max(dcg(list(order), depth) for order in itertools.permutations(levels))
        assert dcg(sorted(levels, reverse=True), depth) == pytest.approx(best, rel=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# Hand cases.


def hand_case():
    """One query (labels {0, 1}) and a database ranked at distances 0, 1, 2, 3 with levels 2, 0, 1, 1; a fifth item
    (level 2) sits at distance 4, last."""
    query = np.array([[0, 0, 0, 0]])
    database = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    query_labels = np.array([[1, 1, 0]])
    db_labels = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 1]])
    return query, database, query_labels, db_labels


def test_hand_case_exact_values():
    case = hand_case()  # ranked levels 2, 0, 1, 1, 2
    assert acg_at_k(*case, k=1) == 2.0
    assert acg_at_k(*case, k=3) == float(Fraction(3, 3))
    assert acg_at_k(*case, k=4) == float(Fraction(4, 4))
    assert acg_at_k(*case, k="all") == float(Fraction(6, 5))
    # wAP@4 = (ACG@1 + ACG@3 + ACG@4) / 3 = (2 + 1 + 1) / 3; wAP@5 adds ACG@5 = 6/5.
    assert weighted_map_at_k(*case, k=4) == pytest.approx(float(Fraction(4, 3)), abs=1e-15)
    assert weighted_map_at_k(*case, k=5) == pytest.approx(float((2 + 1 + 1 + Fraction(6, 5)) / 4), abs=1e-15)
    assert weighted_map_at_k(*case, k=2) == 2.0  # one relevant item in the top 2, ACG@1 = 2
    # NDCG@2 = (3/log2 2 + 0) / (3/log2 2 + 3/log2 3): the ideal list is 2, 2, 1, 1, 0 over the whole database.
    assert ndcg_at_k(*case, k=2) == pytest.approx(3 / (3 + 3 / math.log2(3)), abs=1e-15)
    ideal = 3 + 3 / math.log2(3) + 1 / 2 + 1 / math.log2(5)
    assert ndcg_at_k(*case, k=4) == pytest.approx((3 + 1 / 2 + 1 / math.log2(5)) / ideal, abs=1e-15)


def test_ties_are_broken_by_database_index():
    database = np.zeros((5, 6), dtype=np.uint8)  # every item at distance 0
    query = np.zeros((1, 6), dtype=np.uint8)
    query_labels = np.array([[1, 1, 1]])
    db_labels = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])  # levels 0, 3, 1, 0, 2
    assert acg_at_k(query, database, query_labels, db_labels, k=2) == 1.5
    assert weighted_map_at_k(query, database, query_labels, db_labels, k="all") == pytest.approx(
        float((Fraction(3, 2) + Fraction(4, 3) + Fraction(6, 5)) / 3), abs=1e-15
    )
    ideal = 7 + 3 / math.log2(3) + 1 / 2
    assert ndcg_at_k(query, database, query_labels, db_labels, k=3) == pytest.approx(
        (7 / math.log2(3) + 1 / 2) / ideal, abs=1e-15
    )
    # In index order of relevance the ranking is ideal.
    best_first = db_labels[[1, 4, 2, 0, 3]]
    assert ndcg_at_k(query, database, query_labels, best_first, k=3) == pytest.approx(1.0, abs=1e-15)


def test_queries_with_nothing_relevant_score_zero_and_count():
    query = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1]])
    database = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]])
    query_labels = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]])  # the second has no label, the third's is unused
    db_labels = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    for name, measure in MEASURES.items():
        per_query = measure(query, database, query_labels, db_labels, k="all", per_query=True)
        assert not np.isnan(per_query).any(), name
        np.testing.assert_array_equal(per_query[1:], [0.0, 0.0], err_msg=name)
        assert per_query[0] > 0, name
        assert measure(query, database, query_labels, db_labels, k="all") == pytest.approx(per_query[0] / 3)
    assert ndcg_at_k(query, database, query_labels, db_labels, k="all", per_query=True)[0] == 1.0


def test_k_beyond_the_database_means_the_whole_database():
    query, database, query_labels, db_labels = hand_case()
    for measure in MEASURES.values():
        whole = measure(query, database, query_labels, db_labels, k="all")
        assert measure(query, database, query_labels, db_labels, k=5) == whole
        assert measure(query, database, query_labels, db_labels, k=1000) == whole
    assert acg_at_k(query, database, query_labels, db_labels, k=1000) == 1.2  # 6 / 5, not 6 / 1000


def test_class_ids_reduce_to_binary_measures():
    """With class ids the level is 0/1: ACG@k is precision@k, weighted mAP is mAP, NDCG has gain 1."""
    query, database, query_labels, db_labels = make_case("clustered", 16, False, seed=4)
    for k in (1, 10, 100, "all"):
        assert weighted_map_at_k(query, database, query_labels, db_labels, k) == pytest.approx(
            map_at_k(query, database, query_labels, db_labels, k), abs=TOLERANCE
        )
        precision = precision_recall_at_k(query, database, query_labels, db_labels, [k])["precision"][0]
        assert acg_at_k(query, database, query_labels, db_labels, k) == pytest.approx(precision, abs=TOLERANCE)
    one_hot = np.eye(100, dtype=np.uint8)
    for measure in MEASURES.values():
        np.testing.assert_allclose(
            measure(query, database, query_labels, db_labels, 30, per_query=True),
            measure(query, database, one_hot[query_labels], one_hot[db_labels], 30, per_query=True),
            rtol=0, atol=TOLERANCE,
        )


# ---------------------------------------------------------------------------------------------------------------
# The official evaluator's formulas (DSRH, evaluate_nuswide.py): natural-log discount, ideal DCG from the true top k
# of the whole database, ACG over the retrieved list, weighted AP over the positions with r > 0.


def official_ndcg(query_label, ranked_db_labels, all_db_labels, depth):
    levels = [level(query_label, labels) for labels in ranked_db_labels[:depth]]
    truth = sorted((level(query_label, labels) for labels in all_db_labels), reverse=True)[:depth]
    gained = sum((2.0 ** r - 1) / math.log(i + 1) for i, r in enumerate(levels, start=1))
    return gained / sum((2.0 ** r - 1) / math.log(i + 1) for i, r in enumerate(truth, start=1))


def test_agrees_with_the_official_formulas_where_there_are_no_ties():
    rng = np.random.default_rng(11)
    bits = 40
    database = np.zeros((bits + 1, bits), dtype=np.uint8)
    for row in range(bits + 1):
        database[row, rng.permutation(bits)[:row]] = 1  # item `row` at distance `row` from the zero code
    database = database[rng.permutation(bits + 1)]
    query = np.zeros((1, bits), dtype=np.uint8)
    query_labels = np.array([[1, 1, 0, 1, 0]])
    db_labels = (rng.random((bits + 1, 5)) < 0.5).astype(np.uint8)
    ranked = db_labels[np.argsort(database.sum(axis=1))]
    for depth in (1, 7, 20, bits + 1):
        assert ndcg_at_k(query, database, query_labels, db_labels, depth) == pytest.approx(
            official_ndcg(query_labels[0], ranked, db_labels, depth), abs=TOLERANCE
        )
        levels = [level(query_labels[0], labels) for labels in ranked[:depth]]
        assert acg_at_k(query, database, query_labels, db_labels, depth) == pytest.approx(
            sum(levels) / len(levels), abs=TOLERANCE
        )
        positions = [p for p, r in enumerate(levels) if r > 0]
        official_wap = sum(sum(levels[: p + 1]) / (p + 1) for p in positions) / len(positions) if positions else 0
        assert weighted_map_at_k(query, database, query_labels, db_labels, depth) == pytest.approx(
            official_wap, abs=TOLERANCE
        )


# ---------------------------------------------------------------------------------------------------------------
# The report: evaluate / evaluate_codes name them beside mAP for multi-hot labels only.


def test_evaluate_reports_graded_measures_for_multi_hot_labels_only():
    query, database, query_labels, db_labels = make_case("clustered", 16, True, seed=21, n_database=300)
    result = evaluate((query, query_labels), (database, db_labels), top_k=50)
    metrics = result["metrics"]
    assert metrics["ndcg@100"] == pytest.approx(ndcg_at_k(query, database, query_labels, db_labels, 100), abs=1e-15)
    assert metrics["acg@100"] == pytest.approx(acg_at_k(query, database, query_labels, db_labels, 100), abs=1e-15)
    assert metrics["wmap@50"] == pytest.approx(
        weighted_map_at_k(query, database, query_labels, db_labels, 50), abs=1e-15
    )
    small = evaluate_codes(make_codes(query, query_labels, threshold=0.5),
                           make_codes(database[:60], db_labels[:60], threshold=0.5))
    assert {"ndcg@60", "acg@60", "wmap@60"} <= set(small["metrics"])  # depths capped at N, as precision@k
    single = make_case("clustered", 16, False, seed=21)
    result = evaluate((single[0], single[2]), (single[1], single[3]))
    assert not [name for name in result["metrics"] if name.split("@")[0] in MEASURES]


def test_score_of_multi_hot_codes_runs_no_graded_scan(monkeypatch):
    """`score` (a run's scores.json) reports no graded measure, so it must not pay their ranked scan: evaluate_codes'
    graded=False skips it, and the other numbers are those of the full evaluation."""
    from saeh.retrieval import report, score

    query, database, query_labels, db_labels = make_case("clustered", 16, True, seed=22, n_database=200)
    query, database = make_codes(query, query_labels, threshold=0.5), make_codes(database, db_labels, threshold=0.5)
    full = evaluate_codes(query, database, top_k=50)["metrics"]

    def no_graded_scan(*args, **kwargs):
        raise AssertionError("score ran the graded measures' scan")

    monkeypatch.setattr(report, "graded_scores", no_graded_scan)
    scores = score(query, database, top_k=50)
    assert scores["map@50"] == full["map@50"] and scores["map_ties_averaged@all"] == full["map_ties_averaged@all"]
    assert not [name for name in evaluate_codes(query, database, top_k=50, graded=False)["metrics"]
                if name.split("@")[0] in MEASURES]


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "al"])
def test_bad_depths_raise_clear_errors(k):
    query, database, query_labels, db_labels = hand_case()
    for measure in MEASURES.values():
        with pytest.raises(SaehError, match="positive integer or 'all'"):
            measure(query, database, query_labels, db_labels, k)
