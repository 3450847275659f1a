"""Evaluate a query set against a database of `saeh.codes.Codes` into one dict of results, and print it as a table;
`score`: the few scores a training run prints and records.

Two exact scans cover everything (see `saeh.retrieval.metrics`): a full-depth ranked scan gives mAP@k, mAP@all,
P@k, R@k and the curves by rank; a distance-histogram scan gives the radius metrics, the PR curve by radius and the
tie-averaged mAP.
"""

import numpy as np

from saeh import defaults, validation
from saeh.errors import SaehError
from saeh.retrieval.metrics import (
    _depth,
    _radius_curves,
    _radius_statistics,
    _rank_grid,
    _Retrieval,
    _summarize_radius,
    _tie_averaged_average_precision,
    map_at_k,
    precision_within_radius,
)
from saeh.retrieval.search import DEFAULT_CHUNK_PAIRS

PRECISION_AT = (1, 10, 100, 1000)


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


def evaluate_codes(query, database, top_k=1000, radius=2, precision_at=PRECISION_AT, chunk_pairs=DEFAULT_CHUNK_PAIRS):
    """All retrieval results for `query` codes searched in `database` codes (both `saeh.codes.Codes`, 0/1 hash_bin).

    Returns a JSON-ready dict: "bits", "n_query", "n_database", "top_k" (min(top_k, N)), "radius", "metrics"
    (name -> number: mAP@top_k and mAP@all, each with database-index ties and tie-averaged; precision, recall
    and empty-ball fraction within the radius; P@k and R@k for k in `precision_at` capped at N) and "curves"
    (PR by radius, PR by rank, precision at k up to top_k).
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
        f"mAP@{depth}": float(ap_top.mean()),
        f"mAP@{depth} ties averaged": float(averaged_top.mean()),
        "mAP@all": float(ap_all.mean()),
        "mAP@all ties averaged": float(averaged_all.mean()),
        f"precision r<={radius}": within.precision,
        f"recall r<={radius}": within.recall,
        f"empty balls r<={radius}": within.empty_fraction,
        f"precision r<={radius} non-empty": within.precision_nonempty,
    }
    metrics.update({f"P@{k}": float(precision_at_checkpoint[column[k]]) for k in ks})
    metrics.update({f"R@{k}": float(recall_at_checkpoint[column[k]]) for k in ks})
    return {
        "bits": problem.bits,
        "n_query": n_query,
        "n_database": n_database,
        "top_k": depth,
        "radius": radius,
        "ties": "broken by database index (stable order); 'ties averaged' = expectation over random tie orders",
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
    ranked database (`map@all`, the measure DPSH's and ADSH's papers report) of query codes against database codes."""
    pair = (query.hash_bin, database.hash_bin, query.label, database.label)
    within = precision_within_radius(*pair, radius=radius)
    return {f"map@{top_k}": map_at_k(*pair, k=top_k), f"precision@r{radius}": within.precision,
            f"empty@r{radius}": within.empty_fraction, "map@all": map_at_k(*pair, k=len(database))}


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
