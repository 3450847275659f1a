"""Evaluate a query set against a database of `saeh.codes.Codes` into one dict of results, and print it as a table;
`score`: the few scores a training run prints and records; `evaluate`: `evaluate_codes` for codes in any form.

Metric names are the same everywhere (scores.json, the result files, `evaluate_codes`, evaluate.py's table and JSON):
``map@1000`` and ``map@all`` (mAP over the top 1000 / the whole ranked database), ``precision@r2``, ``recall@r2``
and ``empty@r2`` (within Hamming radius 2), ``precision@10`` and ``recall@10`` (over the top 10); ``map_ties_averaged@1000``
and ``map_ties_averaged@all`` are the expectation over random orders within ties, and ``precision_nonempty@r2``
averages the non-empty balls only (no name holds a space, so each is one word in a shell or a table); for multi-hot labels also DSRH's graded measures ``ndcg@100``, ``acg@100`` and ``wmap@1000``
(weighted mAP at the depth of mAP@k; see `saeh.retrieval.graded`). `metric_name` spells them.

Two exact scans cover everything (see `saeh.retrieval.metrics`): a full-depth ranked scan gives mAP@k, mAP@all,
P@k, R@k and the curves by rank; a distance-histogram scan gives the radius metrics, the PR curve by radius and the
tie-averaged mAP; for multi-hot labels, a ranked scan as deep as the largest graded depth gives the graded
measures.
"""

import numpy as np

from saeh import defaults, validation
from saeh.errors import SaehError
from saeh.retrieval.graded import DSRH_DEPTH, graded_scores
from saeh.retrieval.metrics import (
    _depth,
    _radius_curves,
    _radius_statistics,
    _rank_grid,
    _Retrieval,
    _summarize_radius,
    _tie_averaged_average_precision,
)
from saeh.retrieval.search import DEFAULT_CHUNK_PAIRS

PRECISION_AT = (1, 10, 100, 1000)


def metric_name(measure, k=None, radius=None):
    """The name of a metric: `measure` ("map", "precision", "recall", "empty", "ndcg", "acg", "wmap", and the variants
    "map_ties_averaged", "precision_nonempty") over the top `k` (an int or "all"), or within Hamming radius
    `radius`: map@1000, map@all, precision@10, precision@r2, empty@r2, ndcg@100, wmap@1000, precision_nonempty@r2."""
    return f"{measure}@{k}" if radius is None else f"{measure}@r{radius}"


def _label_kind(labels):
    labels = np.asarray(labels)
    return "class ids" if labels.ndim == 1 else f"multi-hot with {labels.shape[1]} classes"


def check_pair(query, database, query_name="query set", database_name="database"):
    """Raise SaehError unless two `Codes` can be evaluated together (non-empty, same bits, same label kind)."""
    for name, codes in ((query_name, query), (database_name, database)):
        if len(codes) == 0:
            raise SaehError(f"{name} holds no codes")
    if query.bits != database.bits:
        raise SaehError(
            f"{query_name} has {query.bits}-bit codes but {database_name} has {database.bits}-bit codes; "
            "evaluate codes of one length together"
        )
    if _label_kind(query.label) != _label_kind(database.label):
        raise SaehError(
            f"{query_name} has labels of shape {query.label.shape} ({_label_kind(query.label)}) but "
            f"{database_name} has {database.label.shape} ({_label_kind(database.label)}); both need the same kind"
        )


def evaluate_codes(query, database, top_k=1000, radius=2, precision_at=PRECISION_AT, chunk_pairs=DEFAULT_CHUNK_PAIRS,
                   graded=True):
    """All retrieval results for `query` codes searched in `database` codes (both `saeh.codes.Codes`, 0/1 hash_bin).

    Returns a JSON-ready dict: "bits", "n_query", "n_database", "top_k" (min(top_k, N)), "radius", "metrics"
    (name -> number, named by `metric_name`: map@top_k and map@all, each with database-index ties and tie-averaged;
    precision, recall and empty-ball fraction within the radius; precision@k and recall@k for k in `precision_at`
    capped at N; for multi-hot labels and `graded`, also ndcg@100 and acg@100 (DSRH's depth, capped at N) and
    wmap@top_k: a third scan) and "curves" (PR by radius, PR by rank, precision at k up to top_k).
    """
    check_pair(query, database)
    radius = validation.non_negative_int(radius, "radius")
    problem = _Retrieval(query.hash_bin, database.hash_bin, query.label, database.label, chunk_pairs)
    n_query, n_database = problem.n_query, problem.n_database
    depth = _depth(top_k, n_database, "top_k")
    ks = sorted({_depth(k, n_database, "precision_at") for k in precision_at})
    rank_points = _rank_grid(n_database, 100)
    k_points = _rank_grid(depth, 50)
    checkpoints = np.unique(np.concatenate([ks, rank_points, k_points]))

    # Per distinct (code, labels) pair of the queries; `problem.expand` spreads them to the queries.
    n_distinct = problem.n_distinct
    ap_top, ap_all = np.empty(n_distinct), np.empty(n_distinct)
    counts = np.empty((n_distinct, len(checkpoints)), dtype=np.int64)
    totals = np.empty(n_distinct, dtype=np.int64)
    for rows, hits, row_totals in problem.ranked_chunks(n_database):
        ap_top[rows] = hits.average_precision(depth, row_totals, "retrieved")
        ap_all[rows] = hits.average_precision(n_database, row_totals, "retrieved")
        counts[rows] = hits.count_within(checkpoints)
        totals[rows] = row_totals
    ap_top, ap_all, counts, totals = map(problem.expand, (ap_top, ap_all, counts, totals))
    precision_at_checkpoint = (counts / checkpoints).mean(axis=0)
    recall_at_checkpoint = np.divide(counts, totals[:, None], out=np.zeros(counts.shape), where=totals[:, None] > 0)
    recall_at_checkpoint = recall_at_checkpoint.mean(axis=0)
    column = {int(k): position for position, k in enumerate(checkpoints)}

    averaged_top, averaged_all = np.empty(n_distinct), np.empty(n_distinct)
    ball = [np.empty(n_distinct), np.empty(n_distinct), np.empty(n_distinct, dtype=bool)]
    curve_sums = np.zeros((3, problem.bits + 1))
    for rows, sizes, relevant_sizes in problem.histogram_chunks():
        averaged_top[rows] = _tie_averaged_average_precision(sizes, relevant_sizes, depth, "retrieved")
        averaged_all[rows] = _tie_averaged_average_precision(sizes, relevant_sizes, n_database, "retrieved")
        for target, values in zip(ball, _radius_statistics(sizes, relevant_sizes, radius)):
            target[rows] = values
        weights = problem.multiplicity[rows]
        curve_sums += [weights @ values for values in _radius_curves(sizes, relevant_sizes)]
    averaged_top, averaged_all = problem.expand(averaged_top), problem.expand(averaged_all)
    within = _summarize_radius(*map(problem.expand, ball), radius)
    curve_precision, curve_recall, curve_empty = curve_sums / n_query

    metrics = {
        metric_name("map", depth): float(ap_top.mean()),
        metric_name("map_ties_averaged", depth): float(averaged_top.mean()),
        metric_name("map", "all"): float(ap_all.mean()),
        metric_name("map_ties_averaged", "all"): float(averaged_all.mean()),
        metric_name("precision", radius=radius): within.precision,
        metric_name("recall", radius=radius): within.recall,
        metric_name("empty", radius=radius): within.empty_fraction,
        metric_name("precision_nonempty", radius=radius): within.precision_nonempty,
    }
    metrics.update({metric_name("precision", k): float(precision_at_checkpoint[column[k]]) for k in ks})
    metrics.update({metric_name("recall", k): float(recall_at_checkpoint[column[k]]) for k in ks})
    if graded and problem.relevance.multi_label:
        graded_depth = _depth(DSRH_DEPTH, n_database)
        graded = graded_scores(problem, ndcg_depth=graded_depth, acg_depth=graded_depth, wmap_depth=depth)
        metrics[metric_name("ndcg", graded_depth)] = float(graded["ndcg"].mean())
        metrics[metric_name("acg", graded_depth)] = float(graded["acg"].mean())
        metrics[metric_name("wmap", depth)] = float(graded["wmap"].mean())
    return {
        "bits": problem.bits,
        "n_query": n_query,
        "n_database": n_database,
        "top_k": depth,
        "radius": radius,
        "ties": "broken by database index (stable order); map_ties_averaged = expectation over random tie orders",
        "metrics": metrics,
        "curves": {
            "pr_by_radius": {
                "radius": list(range(problem.bits + 1)),
                "precision": curve_precision.tolist(),
                "recall": curve_recall.tolist(),
                "empty_fraction": curve_empty.tolist(),
            },
            "pr_by_rank": {
                "rank": rank_points.tolist(),
                "precision": [float(precision_at_checkpoint[column[int(r)]]) for r in rank_points],
                "recall": [float(recall_at_checkpoint[column[int(r)]]) for r in rank_points],
            },
            "precision_at_k": {
                "k": k_points.tolist(),
                "precision": [float(precision_at_checkpoint[column[int(k)]]) for k in k_points],
            },
        },
    }


def score(query, database, top_k=defaults.TOP_K, radius=defaults.RADIUS):
    """mAP@top_k, precision within Hamming radius `radius` (and the fraction of empty balls), and mAP over the whole
    ranked database (`map@all`, the measure DPSH's and ADSH's papers report) of query codes against database codes;
    each mAP also tie-averaged (`map_ties_averaged@...`: the expectation over random orders within Hamming ties,
    which does not depend on how the database is stored; with ties by index a class-sorted database moves a 32-bit
    CIFAR-10 score by up to a point). Taken from `evaluate_codes`'s two scans; named at `top_k` even where the
    database is shorter (the depth is then the whole database)."""
    results = evaluate_codes(query, database, top_k=top_k, radius=radius, precision_at=(), graded=False)
    metrics, depth = results["metrics"], results["top_k"]
    return {metric_name("map", top_k): metrics[metric_name("map", depth)],
            metric_name("precision", radius=radius): metrics[metric_name("precision", radius=radius)],
            metric_name("empty", radius=radius): metrics[metric_name("empty", radius=radius)],
            metric_name("map", "all"): metrics[metric_name("map", "all")],
            metric_name("map_ties_averaged", top_k): metrics[metric_name("map_ties_averaged", depth)],
            metric_name("map_ties_averaged", "all"): metrics[metric_name("map_ties_averaged", "all")]}


def as_codes(value, name):
    """`value` as `saeh.codes.Codes` with labels: `Codes` itself, anything holding them as `.codes` (a
    `saeh.CodeIndex`), or a pair (0/1 or ±1 codes (N, bits), labels)."""
    from saeh.codes import Codes, make_codes
    from saeh.retrieval.search import code_bits

    codes = value.codes if isinstance(getattr(value, "codes", None), Codes) else value
    if isinstance(codes, tuple) and len(codes) == 2:
        bits = code_bits(codes[0], name).astype(np.uint8)
        codes = make_codes(bits, codes[1], threshold=0.5)
    if not isinstance(codes, Codes):
        raise SaehError(f"{name} must be Codes, a CodeIndex or a pair (codes, labels); got {type(value).__name__}")
    if codes.label is None:
        raise SaehError(f"{name} has no labels; evaluation needs every image's labels (relevance = a shared label)")
    return codes


def evaluate(query, database, top_k=defaults.TOP_K, radius=defaults.RADIUS, precision_at=PRECISION_AT):
    """Every retrieval result (`evaluate_codes`: metrics named by `metric_name`, and curves) of `query` searched in
    `database`, each `Codes` (as `HashModel.encode` gives them or `saeh.codes.load_codes` reads them), a
    `CodeIndex`, or a pair (0/1 or ±1 codes (N, bits), labels). Ranking is by Hamming distance, ties by database
    index; relevant means sharing at least one label."""
    return evaluate_codes(as_codes(query, "query"), as_codes(database, "database"), top_k=top_k, radius=radius,
                          precision_at=precision_at)


def format_table(results_by_label):
    """A plain-text table: one column per run (label -> `evaluate_codes` dict), one row per metric."""
    labels = list(results_by_label)
    rows = [("bits", [str(results_by_label[label]["bits"]) for label in labels])]
    rows.append(("queries", [str(results_by_label[label]["n_query"]) for label in labels]))
    rows.append(("database", [str(results_by_label[label]["n_database"]) for label in labels]))
    names = []
    for label in labels:
        names += [name for name in results_by_label[label]["metrics"] if name not in names]
    for name in names:
        cells = []
        for label in labels:
            value = results_by_label[label]["metrics"].get(name)
            cells.append("-" if value is None else f"{value:.4f}")
        rows.append((name, cells))
    name_width = max(len(name) for name, _ in rows)
    widths = [max(len(label), *(len(cells[column]) for _, cells in rows)) for column, label in enumerate(labels)]
    lines = ["  ".join([" " * name_width] + [label.rjust(width) for label, width in zip(labels, widths)])]
    for name, cells in rows:
        lines.append("  ".join([name.ljust(name_width)] + [cell.rjust(width) for cell, width in zip(cells, widths)]))
    return "\n".join(lines)
