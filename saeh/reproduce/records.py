"""A result file's content: built from a finished cell's run folder (its scores, settings, precision-recall curves,
selected epoch, and where and how it ran), or copied from the same run's result in another table; and every result
file of the known tables read back."""

import json
import os

from saeh import defaults
from saeh.errors import SaehError
from saeh.reproduce.layout import RESULTS
from saeh.reproduce.tables import TABLES, effective_gamma, shell_line
from saeh.retrieval.report import metric_name
from saeh.run_folder import RunFolder

MAP = metric_name("map", defaults.TOP_K)  # the score names hash_su_ae_train.py writes to scores.json
MAP_ALL = metric_name("map", "all")
# The same, averaged over random orders within Hamming ties (recorded since session 17; older results gain them from
# their run folder's codes through `python -m saeh.reproduce curves`).
MAP_TIES_AVERAGED = {MAP: metric_name("map_ties_averaged", defaults.TOP_K),
                     MAP_ALL: metric_name("map_ties_averaged", "all")}
PRECISION = metric_name("precision", radius=defaults.RADIUS)
CURVE_RANKS = 40  # points of the precision/recall-by-rank curve kept in a result file
CURVE_DIGITS = 5
VALIDATION_ACCURACY = "val_y_predict_accuracy"  # the classifier's accuracy on the validation split, as logged


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def check_run_matches(cell, run_settings, run_dir):
    """A scored run folder is collected only when it is this cell's run."""
    expected = {"method": cell.method, "which_data": cell.dataset, "hash_bits": cell.bits, "seed": cell.seed,
                "preset": cell.preset, "procedure": cell.procedure}
    if cell.procedure != "original":
        expected["protocol"] = cell.protocol
    other = {key: run_settings.get(key) for key, value in expected.items() if run_settings.get(key) != value}
    if other:
        raise SaehError(f"{run_dir} holds a run of other settings ({other}; expected {expected}); remove it to run "
                        "the cell again")


def _rounded(values):
    return [round(float(value), CURVE_DIGITS) for value in values]


class RunCodes:
    """A finished run's query and database codes, read from its dumps once, on first use, however many of its
    results are drawn from them."""

    def __init__(self, folder):
        self.folder = folder
        self._pair = None

    def pair(self):
        if self._pair is None:
            from saeh.codes import load_codes

            self._pair = tuple(load_codes(path) for path in self.folder.code_dumps())
        return self._pair

    def curves(self):
        """The precision-recall curves: by Hamming radius (0..bits) and by rank (about CURVE_RANKS log-spaced
        ranks), as JSON lists."""
        from saeh.retrieval import pr_curve_by_radius, pr_curve_by_rank

        query, database = self.pair()
        pair = (query.hash_bin, database.hash_bin, query.label, database.label)
        by_radius = pr_curve_by_radius(*pair)
        by_rank = pr_curve_by_rank(*pair, points=CURVE_RANKS)
        return {"pr_by_radius": {"radius": [int(r) for r in by_radius["radius"]],
                                 **{name: _rounded(by_radius[name])
                                    for name in ("precision", "recall", "empty_fraction")}},
                "pr_by_rank": {"rank": [int(r) for r in by_rank["rank"]],
                               **{name: _rounded(by_rank[name]) for name in ("precision", "recall")}}}

    def tie_averaged_scores(self):
        """{name: value} of `MAP_TIES_AVERAGED`'s scores, as the run's own scoring (`saeh.retrieval.score`)
        computes them."""
        from saeh.retrieval import score

        scores = score(*self.pair())
        return {name: scores[name] for name in MAP_TIES_AVERAGED.values()}


def selected_epoch(folder):
    """{"epoch", "validation_accuracy"} of the epoch a finished run keeps (its history's best epoch, or the last
    for a run that keeps the last), the accuracy None for a method without a classifier; None without a history."""
    if not os.path.exists(folder.history):
        return None
    history = read_json(folder.history)
    keeps_best = folder.settings().get("final_weights", "best") == "best"
    epoch = history["best_epoch"] if keeps_best else len(history["epochs"])
    row = next((row for row in history["epochs"] if row["epoch"] == epoch), {})
    return {"epoch": epoch, "validation_accuracy": row.get(VALIDATION_ACCURACY)}


def result_record(cell, *, root, argv, wall_seconds, resumed, git, machine_info, cpu_seconds=None):
    """The result file of a finished cell, from its run folder's scores.json and run.json."""
    folder = RunFolder(cell.run_dir(root))
    scores, run_settings = read_json(folder.scores), folder.settings()
    check_run_matches(cell, run_settings, folder.run_dir)
    return {"table": cell.table, "cell": cell.id, "method": cell.method, "dataset": cell.dataset,
            "protocol": scores.get("protocol"), "procedure": scores.get("procedure", cell.procedure),
            "bits": scores.get("bits", cell.bits), "gamma": effective_gamma(cell), "seed": cell.seed,
            "preset": cell.preset, "scores": scores, "wall_seconds": round(wall_seconds, 1),
            # None when this call did not train (a finished run collected).
            "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 1),
            # A resumed cell's wall and CPU times count its last attempt only.
            "resumed": resumed, "git": git, "machine": machine_info, "command": shell_line(argv),
            "python_executable": argv[0], "run_dir": os.path.relpath(folder.run_dir, root), "run": run_settings,
            "curves": RunCodes(folder).curves(), "selected_epoch": selected_epoch(folder),
            **({} if cell.ablation is None else {"ablation": list(cell.ablation)})}


def reused_record(cell, source_path, *, root):
    """The result of `cell` copied from the same run's result in another table."""
    record = read_json(source_path)
    record.update(table=cell.table, cell=cell.id, method=cell.method, gamma=effective_gamma(cell),
                  reused_from=os.path.relpath(source_path, root))
    if cell.ablation is not None:
        record["ablation"] = list(cell.ablation)
    return record


def all_results(root, tables=None):
    """Every result record under `<root>/results/<table>/`, for the known tables, in a stable order."""
    records = []
    for name in TABLES if tables is None else tables:
        directory = os.path.join(root, RESULTS, name)
        for file_name in sorted(os.listdir(directory)) if os.path.isdir(directory) else ():
            if file_name.endswith(".json") and not file_name.startswith("."):
                records.append(read_json(os.path.join(directory, file_name)))
    return records
