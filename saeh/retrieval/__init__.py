"""Exact, fast Hamming retrieval evaluation and search.

Metrics (`metrics`): `map_at_k`, `precision_recall_at_k`, `precision_within_radius`, `pr_curve_by_radius`,
`pr_curve_by_rank`. Search (`search`): `pack_codes`, `hamming_distances`, `HammingIndex`. Figures (`plots`) and
the whole-report helpers (`report`: `evaluate_codes`, `evaluate` for codes in any form, `format_table`, `score`, a
training run's scores, and `metric_name`, the one spelling of the metrics).

Ranking is by Hamming distance with ties broken by database index; relevance means sharing at least one label.
"""

from saeh.retrieval.metrics import (
    RadiusPrecision,
    map_at_k,
    pr_curve_by_radius,
    pr_curve_by_rank,
    precision_recall_at_k,
    precision_within_radius,
)
from saeh.retrieval.plots import (
    plot_pr_curve_by_radius,
    plot_precision_at_k,
    plot_precision_vs_bits,
    plot_retrieval_grid,
)
from saeh.retrieval.report import evaluate, evaluate_codes, format_table, metric_name, score
from saeh.retrieval.search import HammingIndex, hamming_distances, pack_codes

__all__ = [
    "HammingIndex",
    "RadiusPrecision",
    "evaluate",
    "evaluate_codes",
    "format_table",
    "hamming_distances",
    "map_at_k",
    "metric_name",
    "pack_codes",
    "plot_pr_curve_by_radius",
    "plot_precision_at_k",
    "plot_precision_vs_bits",
    "plot_retrieval_grid",
    "pr_curve_by_radius",
    "pr_curve_by_rank",
    "precision_recall_at_k",
    "precision_within_radius",
    "score",
]
