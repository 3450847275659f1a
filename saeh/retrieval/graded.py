"""DSRH's graded retrieval measures for multi-label data: NDCG@k, ACG@k and weighted mAP@k of the Hamming ranking.

The relevance level r of a database item to a query is the number of labels they share (0 or 1 for class ids),
as in DSRH (Zhao, Huang, Wang, Tan, CVPR 2015) and its official evaluator, `evaluate_nuswide.py` of
zhaofang0627/cuda-convnet-for-hashing, which computes it as the inner product of the multi-hot rows. The rest
follows `saeh.retrieval.metrics`: ranking by Hamming distance with ties broken by database index, every query
counted (one with nothing relevant scores 0), k above N meaning N, chunks of distinct (code, labels) queries.

Where the official evaluator differs:

- ties: it argsorts with numpy's default (unstable) quicksort and, for NDCG only, averages 100 random
  permutations within the distance groups of the retrieved top k; here ties go by database index, like mAP;
- a query whose labels no database item shares has ideal DCG 0, so the official NDCG is 0/0 (NaN); here it
  scores 0 and counts. Queries with no label at all, which it drops, score 0 here on all three measures;
- its weighted mAP runs over the top 5000; here the depth is the caller's (evaluate.py: the depth of mAP@k).
"""

import numpy as np

from saeh.retrieval.metrics import _depth, _Retrieval, _safe_divide
from saeh.retrieval.search import DEFAULT_CHUNK_PAIRS

DSRH_DEPTH = 100  # the k of NDCG@k and ACG@k in DSRH's evaluator (evaluate_nuswide.py, k = 100)


def _gains(levels):
    """2^r - 1 per relevance level r: DSRH's gain (exact in float64 up to r = 53)."""
    return np.exp2(np.asarray(levels, dtype=np.float64)) - 1.0


def _discounts(depth):
    """1 / log2(i + 1) for positions i = 1..depth."""
    return 1.0 / np.log2(np.arange(2, depth + 2, dtype=np.float64))


def _dcg(levels, depth):
    """Per row sum_{i <= depth} (2^r_i - 1) / log2(i + 1) over ranked levels (q, >= depth)."""
    return _gains(levels[:, :depth]) @ _discounts(depth)


def _ideal_dcg(level_counts, depth):
    """Per row the DCG@depth of the best possible ranking of the whole database: its levels in decreasing order.

    `level_counts` (q, L + 1) says how many database items share exactly 0..L labels with the query. Level l fills
    the positions after the items of higher levels; with D(n) = sum_{i <= n} 1/log2(i + 1), its share of the
    ideal DCG is (2^l - 1) * (D(min(end_l, depth)) - D(min(start_l, depth))).
    """
    prefix = np.concatenate([[0.0], np.cumsum(_discounts(depth))])
    descending = level_counts[:, ::-1]
    end = np.minimum(np.cumsum(descending, axis=1), depth)
    start = np.minimum(np.cumsum(descending, axis=1) - descending, depth)
    gains = _gains(np.arange(level_counts.shape[1])[::-1])
    return (prefix[end] - prefix[start]) @ gains


def _weighted_average_precision(levels, depth):
    """Per row (1/R) * sum_{i <= depth, r_i > 0} ACG@i, ACG@i = (r_1 + ... + r_i) / i, R = #{i <= depth: r_i > 0};
    0 where R = 0."""
    levels = levels[:, :depth]
    cumulative_gain = np.cumsum(levels, axis=1, dtype=np.int64) / np.arange(1, depth + 1)
    relevant = levels > 0
    return _safe_divide(np.where(relevant, cumulative_gain, 0.0).sum(axis=1), relevant.sum(axis=1))


def graded_scores(problem, ndcg_depth=None, acg_depth=None, wmap_depth=None):
    """Per query NDCG, ACG and weighted AP at the given depths (each min(k, N), or None to skip), from one ranked scan
    of `problem` (a `saeh.retrieval.metrics._Retrieval`) as deep as the largest. Returns {"ndcg", "acg", "wmap"}
    with a (Q,) array for each depth given."""
    depths = {"ndcg": ndcg_depth, "acg": acg_depth, "wmap": wmap_depth}
    depths = {name: depth for name, depth in depths.items() if depth is not None}
    scan_depth = max(depths.values())
    scores = {name: np.empty(problem.n_distinct) for name in depths}
    relevance = problem.relevance
    for rows in problem.scanner.chunks(problem.n_distinct):
        ids, _ = problem.scanner.ranked(problem.query_words[rows], scan_depth, with_distances=False)
        levels = relevance.shared_labels(rows, ids)
        if "ndcg" in depths:
            ideal = _ideal_dcg(relevance.level_counts(rows), depths["ndcg"])
            scores["ndcg"][rows] = _safe_divide(_dcg(levels, depths["ndcg"]), ideal)
        if "acg" in depths:
            scores["acg"][rows] = levels[:, : depths["acg"]].sum(axis=1, dtype=np.int64) / depths["acg"]
        if "wmap" in depths:
            scores["wmap"][rows] = _weighted_average_precision(levels, depths["wmap"])
    return {name: problem.expand(values) for name, values in scores.items()}


def _one_measure(name, query_codes, db_codes, query_labels, db_labels, k, per_query, chunk_pairs):
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    scores = graded_scores(problem, **{f"{name}_depth": _depth(k, problem.n_database)})[name]
    return scores if per_query else float(scores.mean())


def ndcg_at_k(
    query_codes, db_codes, query_labels, db_labels, k=DSRH_DEPTH, *, per_query=False, chunk_pairs=DEFAULT_CHUNK_PAIRS
):
    """Mean NDCG@k of the Hamming ranking, relevance r = number of shared labels (DSRH's measure).

    NDCG@k = DCG@k / IDCG@k with DCG@k = sum_{i=1..k} (2^r_i - 1) / log2(i + 1). IDCG@k is the DCG@k of the ideal
    ranking of the whole database (its k highest levels), as in DSRH's evaluator, not a re-sort of the k retrieved
    items. The official code uses ln(i + 1); the base cancels in the ratio. A query with IDCG = 0 (no database item
    shares a label) scores 0 and counts, as mAP does (the official code gives NaN). Ties by database index (the
    official code averages 100 random orders within ties). k above N means N; k may be "all".
    per_query=True returns the (Q,) array instead of the mean.
    """
    return _one_measure("ndcg", query_codes, db_codes, query_labels, db_labels, k, per_query, chunk_pairs)


def acg_at_k(
    query_codes, db_codes, query_labels, db_labels, k=DSRH_DEPTH, *, per_query=False, chunk_pairs=DEFAULT_CHUNK_PAIRS
):
    """Mean ACG@k: the average number of labels the first k items of the Hamming ranking share with the query.

    ACG@k = (1/k') sum_{i=1..k'} r_i, k' = min(k, N), as in DSRH's evaluator (which divides by the length of the
    retrieved list). Ties by database index. For class ids it is precision@k. per_query=True: the (Q,) array.
    """
    return _one_measure("acg", query_codes, db_codes, query_labels, db_labels, k, per_query, chunk_pairs)


def weighted_map_at_k(
    query_codes, db_codes, query_labels, db_labels, k=1000, *, per_query=False, chunk_pairs=DEFAULT_CHUNK_PAIRS
):
    """Mean weighted AP@k (DSRH's "weighted mAP"): mAP with precision@i replaced by ACG@i.

    wAP@k = (1/R) sum_{i=1..k, r_i > 0} ACG@i, ACG@i = (1/i) sum_{j<=i} r_j, R = the items within the top k that
    share a label; a query with R = 0 scores 0 and counts, as in DSRH's evaluator and in `map_at_k`. That evaluator
    uses k = 5000; evaluate.py uses the depth of mAP@k. Ties by database index. For class ids it equals mAP@k.
    per_query=True: the (Q,) array.
    """
    return _one_measure("wmap", query_codes, db_codes, query_labels, db_labels, k, per_query, chunk_pairs)
