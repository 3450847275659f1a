"""Run the cells of the paper's tables through the training script, one result file per cell, and render them.

    python -m saeh.reproduce run TABLE --preset P [--seeds 0 1 2] [--data-dir DIR] [--commit] [--dry-run]
    python -m saeh.reproduce report [--out RESULTS.md]
    python -m saeh.reproduce curves [--commit]
    python -m saeh.reproduce presets

A cell is one run of `hash_su_ae_train.py` (method x dataset x bits x gamma x seed, under one preset), run as a
user would run it, in its own run folder `runs/reproduce/<TABLE>/<cell id>` (git-ignored), so that a killed cell
resumes at its last epoch when the same `run` command is given again. A finished cell leaves
`results/<TABLE>/<cell id>.json` (scores, settings, machine, commit, command); a cell whose result file exists is
skipped. `report` renders the tables from `results/` alone, beside the paper's numbers, and the figures into
`image/`. A result file also holds its run's precision-recall curves (for the figures); `curves` adds them to result
files written before they were stored, from the codes still in the run folders.
"""

import argparse
import dataclasses
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata

from saeh import defaults, presets
from saeh.atomic import atomic_path, write_json
from saeh.cli import run as run_main
from saeh.errors import SaehError
from saeh.run_folder import RunFolder

SCRIPT = "hash_su_ae_train.py"  # the one training script every cell runs
RESULTS = "results"  # result files: <repository>/results/<TABLE>/<cell id>.json
RUNS = os.path.join("runs", "reproduce")  # run folders: <repository>/runs/reproduce/<TABLE>/<cell id>
NICENESS = 10  # training runs below other work on a shared machine
MAP = f"map@{defaults.TOP_K}"  # the score names hash_su_ae_train.py writes to scores.json
MAP_ALL = "map@all"
PRECISION = f"precision@r{defaults.RADIUS}"
BEGIN, END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"  # the report's place in RESULTS.md
IMAGES = "image"  # the report's figures: <repository>/image/reproduce_*.png
CURVE_RANKS = 40  # points of the precision/recall-by-rank curve kept in a result file
CURVE_DIGITS = 5

TABLE1_METHODS = ("saeh", "saeh-minus", "ssdh", "dsh", "cnnh-plus", "itq", "ksh")
SAEH_METHODS = ("saeh", "saeh-minus")
TABLE1_BITS = (12, 24, 32, 48)
# The methods of our other sources, run beside Table 1's at 32 bits under the same preset (the paper has no number
# for them; the report leaves its column empty).
OTHER_METHODS = ("dpsh", "hashnet", "csq", "shc", "adsh", "dsah", "dlbhc", "classifier-codes")
TABLE2_GAMMAS = (0, 0.01, 0.1, 1, 10)
ABLATED = ("whitening", "identity-init", "norm-bias-rate", "lookahead", "label-smoothing", "translation")


@dataclasses.dataclass(frozen=True)
class Group:
    """Cells: every method x bits x gamma x seed, on one dataset under one procedure."""
    methods: tuple
    dataset: str  # the --which-data value
    bits: tuple
    gammas: tuple = (None,)  # None: no --gamma flag (the method's own weight)
    procedure: str = "default"  # or "original" (--original)
    seeds: str = "all"  # "all": every seed given to `run`; "first": the first of them only
    protocol: str = defaults.PROTOCOL  # --protocol of the default procedure (the original fixes its own)
    # {gamma: (table, method)}: the cell of that gamma is the same training run as `method`'s cell (no --gamma, same
    # dataset, bits, seed and preset) of `table`; its result is copied from there when present instead of trained.
    # Only the cells of the full recipe (no ablation) are copied.
    reuse: dict = dataclasses.field(default_factory=dict)
    # Each a tuple of ingredients of the encoder's recipe trained without (`--ablate`, `saeh.recipes.ABLATIONS`);
    # () is the full recipe. A table of ablations sets them; the others leave the one full recipe.
    ablations: tuple = ((),)


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    description: str
    groups: tuple
    # Which published table the report sets beside it: table1 (by method), table2 (by gamma), or dpsh (other
    # papers' mAP@all under DPSH's protocol); "ablation": none, a table of the recipe's ingredients removed in turn.
    paper: str = "table1"


def gamma_table(name, dataset, *, bits=32, gammas=TABLE2_GAMMAS, reuse=None):
    """A Table 2 of SAEH for each gamma on `dataset` (the paper's is CIFAR-10 at 32 bits); `reuse` as in `Group`.
    The γ notebook builds one on another dataset for its headless run."""
    label = {"cifar10": "CIFAR-10"}.get(dataset, dataset)
    return Table(name, f"Table 2: SAEH on {label} at {bits} bits, protocol ssdh, for each gamma (γ = 0 is SAEH⁻)",
                 (Group(("saeh",), dataset, (bits,), gammas=tuple(gammas), reuse=dict(reuse or {})),), paper="table2")


TABLES = {table.name: table for table in (
    Table("table1-mnist", "Table 1 on full MNIST: the seven methods at 12, 24, 32 and 48 bits, protocol ssdh; the "
          "methods of our other sources at 32 bits",
          (Group(TABLE1_METHODS, "mnist", TABLE1_BITS), Group(OTHER_METHODS, "mnist", (32,)))),
    Table("table1-cifar10", "Table 1 on CIFAR-10 at 32 bits, protocol ssdh; SAEH and SAEH⁻ for every seed given, "
          "the other methods (Table 1's, then those of our other sources) for the first seed only",
          (Group(SAEH_METHODS, "cifar10", (32,)),
           Group(tuple(m for m in TABLE1_METHODS if m not in SAEH_METHODS), "cifar10", (32,), seeds="first"),
           Group(OTHER_METHODS, "cifar10", (32,), seeds="first"))),
    # gamma 0 builds no decoder: SAEH-minus. gamma 1 is SAEH's own weight. Both are table1-cifar10's runs.
    gamma_table("table2-gamma", "cifar10", reuse={0: ("table1-cifar10", "saeh-minus"), 1: ("table1-cifar10", "saeh")}),
    # The original procedure can only be scored under protocol dsh (its dump is the test set alone), so our default
    # procedure runs beside it under the same protocol: the paired difference is the procedure's alone.
    Table("original-cifar10", "SAEH and SAEH⁻ on CIFAR-10 at 32 bits under the original procedure (--original: "
          "trained on the whole training set, last epoch kept, the test set scored against itself, protocol dsh; "
          "the paper does not state its protocol), and under our default procedure (validation split, best "
          "epoch) scored the same way",
          (Group(SAEH_METHODS, "cifar10", (32,), procedure="original", seeds="first"),
           Group(SAEH_METHODS, "cifar10", (32,), seeds="first", protocol="dsh"))),
    Table("bits-cifar10", "SAEH and SAEH⁻ on CIFAR-10 at 12, 24 and 48 bits, protocol ssdh",
          (Group(SAEH_METHODS, "cifar10", (12, 24, 48)),)),
    # The papers' backbones start from ImageNet weights; ours learn from the 5,000 images alone. A classification
    # method (SSDH) and the classifier-codes floor on the same images say what a from-scratch network learns there.
    # Not ADSH and DSAH: their database codes are learned for their training and validation images only, and under
    # this protocol 53,500 database images are neither (`saeh.cli.common.learned_database_rows` refuses the mix).
    Table("dpsh-protocol-cifar10", "DPSH on CIFAR-10 under DPSH's protocol (1,000 queries, 100 a class; database "
          "the other 59,000; 5,000 training images drawn from it), mAP over the whole database beside its paper's "
          "numbers; SSDH and classifier codes on the same images at 32 bits as the yardstick of what a network "
          "trained from scratch on them reaches (ADSH and DSAH are refused here: their database holds learned codes "
          "only, for their training and validation images, so they run under protocol ssdh)",
          (Group(("dpsh",), "cifar10", TABLE1_BITS, seeds="first", protocol="dpsh"),
           Group(("ssdh", "classifier-codes"), "cifar10", (32,), seeds="first", protocol="dpsh")), paper="dpsh"),
    # The fast encoder's recipe with each ingredient removed in turn (one seed): which of them matter for hashing.
    # The full recipe's SAEH and SAEH⁻ are table1-cifar10's cells; classifier codes (a classifier on the encoder's
    # features, no hash layer) say what the data allows the network without the 32-bit hash layer.
    Table("ablation-cifar10", "The encoder's recipe with each ingredient removed in turn: SAEH⁻ and SAEH on CIFAR-10 "
          "at 32 bits, protocol ssdh, the first seed; classifier codes (a softmax classifier on the encoder's "
          "features, no hash layer) with the full recipe",
          (Group(("saeh-minus",), "cifar10", (32,), seeds="first", ablations=((), *((name,) for name in ABLATED)),
                 reuse={None: ("table1-cifar10", "saeh-minus")}),
           Group(("saeh",), "cifar10", (32,), seeds="first", reuse={None: ("table1-cifar10", "saeh")}),
           Group(("classifier-codes",), "cifar10", (32,), seeds="first",
                 reuse={None: ("table1-cifar10", "classifier-codes")})), paper="ablation"),
)}


@dataclasses.dataclass(frozen=True)
class Cell:
    table: str
    method: str
    dataset: str
    bits: int
    gamma: object  # None or the --gamma value
    procedure: str
    seed: int
    preset: str
    reuse: tuple = None  # (table, method) whose cell is the same run, or None
    protocol: str = defaults.PROTOCOL
    # Ingredients of the encoder's recipe trained without (--ablate) in a table of ablations, () for its full recipe;
    # None in the other tables.
    ablation: tuple = None

    @property
    def id(self):
        gamma = "" if self.gamma is None else f"_gamma{self.gamma:g}"
        original = "_original" if self.procedure == "original" else ""
        protocol = "" if self.protocol == defaults.PROTOCOL or original else f"_{self.protocol}"
        ablation = ("" if self.ablation is None else "".join(f"_without-{name}" for name in self.ablation)
                    or "_full-recipe")
        return (f"{self.method}_{self.dataset}_{self.bits}bits{gamma}{original}{protocol}{ablation}_seed{self.seed}_"
                f"{self.preset}")

    def reused_cell(self):
        """The cell of another table that is the same training run, or None."""
        if self.reuse is None:
            return None
        table, method = self.reuse
        return dataclasses.replace(self, table=table, method=method, gamma=None, reuse=None, ablation=None)

    def result_path(self, root):
        return os.path.join(root, RESULTS, self.table, f"{self.id}.json")

    def run_dir(self, root):
        return os.path.join(root, RUNS, self.table, self.id)


def get_table(name, tables=None):
    tables = TABLES if tables is None else tables
    if name not in tables:
        raise SaehError(f"unknown table {name!r}; known tables: {', '.join(tables)}")
    return tables[name]


def check_seeds(seeds):
    seeds = list(seeds)
    if not seeds or any(isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 for seed in seeds):
        raise SaehError(f"--seeds must be one or more non-negative integers; got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise SaehError(f"--seeds lists a seed twice: {seeds}")
    return seeds


def cells(table_name, *, preset, seeds=(defaults.SEED,), methods=None, bits=None, tables=None):
    """The cells of a table under `preset`, in the table's order (groups, methods, bits, gammas, seeds); with
    `methods` (or `bits`), only those methods' (code lengths') cells."""
    table = get_table(table_name, tables)
    presets.get(preset)
    seeds = check_seeds(seeds)
    in_table = {method for group in table.groups for method in group.methods}
    unknown = sorted(set(methods or ()) - in_table)
    if unknown:
        raise SaehError(f"table {table_name} has no method(s) {', '.join(unknown)}; it has "
                        f"{', '.join(sorted(in_table))}")
    in_table = {length for group in table.groups for length in group.bits}
    unknown = sorted(set(bits or ()) - in_table)
    if unknown:
        raise SaehError(f"table {table_name} has no code length(s) {', '.join(map(str, unknown))}; it has "
                        f"{', '.join(map(str, sorted(in_table)))}")
    found = []
    for group in table.groups:
        for method in (m for m in group.methods if not methods or m in methods):
            for length in (b for b in group.bits if not bits or b in bits):
                for gamma, ablation in ((g, a) for g in group.gammas for a in group.ablations):
                    for seed in seeds if group.seeds == "all" else seeds[:1]:
                        found.append(Cell(table.name, method, group.dataset, length, gamma, group.procedure, seed,
                                          preset, None if ablation else group.reuse.get(gamma), group.protocol,
                                          tuple(ablation) if table.paper == "ablation" else None))
    return found


def default_repository():
    """The clone this package runs from: the folder holding the training script beside the `saeh` package."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(root, SCRIPT)):
        raise SaehError(f"{SCRIPT} not found in {root}; run from a clone of the repository (pip install -e .)")
    return root


def command(cell, *, repo_root, data_dir=None, script=None):
    """The training command of `cell` as run from `repo_root`: [python, script, flags...]."""
    script = script or os.path.join(default_repository(), SCRIPT)
    relative = os.path.relpath(script, repo_root)
    argv = [sys.executable, script if relative.startswith(os.pardir) else relative,
            "--method", cell.method, "--which-data", cell.dataset, "--hash-bits", str(cell.bits),
            "--seed", str(cell.seed), "--preset", cell.preset]
    if cell.gamma is not None:
        argv += ["--gamma", f"{cell.gamma:g}"]
    # The original procedure fixes its own protocol (dsh); the others name theirs rather than rely on a default.
    argv += ["--original"] if cell.procedure == "original" else ["--protocol", cell.protocol]
    if data_dir:
        argv += ["--data-dir", os.path.abspath(data_dir)]
    for ingredient in cell.ablation or ():
        argv += ["--ablate", ingredient]
    argv += ["--save-dir", os.path.join(RUNS, cell.table), "--run-name", cell.id, "--verbose", "2"]
    return argv


def shell_line(argv):
    """`argv` as a user would type it (the interpreter as `python`)."""
    return shlex.join(["python", *argv[1:]])


def lower_priority():
    os.nice(NICENESS)


def run_command(argv, *, cwd):
    """Run a training command in `cwd` at lower priority, its output on ours; return its exit status."""
    return subprocess.run(argv, cwd=cwd, preexec_fn=lower_priority).returncode


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def _git(root, *args):
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)


def git_state(root):
    """HEAD, the last commit that changed anything outside results/ (the code a cell ran; result commits made by
    --commit do not move it), and whether the tree outside results/ differs from it (untracked files included)."""
    try:
        head = _git(root, "rev-parse", "HEAD")
    except OSError:
        return {"head": None, "commit": None, "dirty": None}
    if head.returncode != 0:
        return {"head": None, "commit": None, "dirty": None}
    outside_results = ["--", ".", f":(exclude){RESULTS}"]
    code = _git(root, "log", "-1", "--format=%H", *outside_results).stdout.strip()
    dirty = bool(_git(root, "status", "--porcelain", *outside_results).stdout.strip())
    return {"head": head.stdout.strip(), "commit": code or head.stdout.strip(), "dirty": dirty}


def check_git_repository(root):
    if git_state(root)["head"] is None:
        raise SaehError(f"--commit needs a git repository with a first commit; {root} is not one")


def commit_result(root, path, cell_id):
    """git add and commit the one result file (other staged or changed files are left as they are); nothing when it
    is committed already."""
    return commit_files(root, [path], f"results: {cell_id}")


def commit_files(root, paths, message):
    """git add and commit `paths` only (other staged or changed files are left as they are); False when none of
    them has a change to commit."""
    relative = [os.path.relpath(path, root) for path in paths]
    if not relative or not _git(root, "status", "--porcelain", "--", *relative).stdout.strip():
        return False
    for args in (("add", "--", *relative), ("commit", "-q", "-m", message, "--", *relative)):
        done = _git(root, *args)
        if done.returncode != 0:
            raise SaehError(f"git {args[0]} of {', '.join(relative)} failed: {(done.stderr or done.stdout).strip()}")
    return True


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(*names):
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine():
    """What the cells run on; package versions are read from the installed metadata (TensorFlow is not started)."""
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": package_version("tensorflow", "tensorflow-cpu", "tf-nightly"),
            "keras": package_version("keras")}


def effective_gamma(cell):
    """SAEH's recovery weight in the cell (None for methods without one)."""
    if cell.method not in SAEH_METHODS:
        return None
    if cell.method == "saeh-minus":
        return 0.0
    return float(defaults.GAMMA if cell.gamma is None else cell.gamma)


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


def run_curves(folder):
    """The precision-recall curves of a finished run's codes: by Hamming radius (0..bits) and by rank (about
    CURVE_RANKS log-spaced ranks), as JSON lists."""
    from saeh.codes import load_codes
    from saeh.retrieval import pr_curve_by_radius, pr_curve_by_rank

    query_path, database_path = folder.code_dumps()
    query, database = load_codes(query_path), load_codes(database_path)
    pair = (query.hash_bin, database.hash_bin, query.label, database.label)
    by_radius = pr_curve_by_radius(*pair)
    by_rank = pr_curve_by_rank(*pair, points=CURVE_RANKS)
    return {"pr_by_radius": {"radius": [int(r) for r in by_radius["radius"]],
                             **{name: _rounded(by_radius[name]) for name in ("precision", "recall", "empty_fraction")}},
            "pr_by_rank": {"rank": [int(r) for r in by_rank["rank"]],
                           **{name: _rounded(by_rank[name]) for name in ("precision", "recall")}}}


VALIDATION_ACCURACY = "val_y_predict_accuracy"  # the classifier's accuracy on the validation split, as logged


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


def children_cpu_seconds():
    """CPU seconds (user + system) of this process's finished child processes. Unlike the wall time, it does not
    count a training that was paused (SIGSTOP) or shared the cores: the measure of what a cell costs."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
            "curves": run_curves(folder), "selected_epoch": selected_epoch(folder),
            **({} if cell.ablation is None else {"ablation": list(cell.ablation)})}


def reused_record(cell, source_path, *, root):
    """The result of `cell` copied from the same run's result in another table."""
    record = read_json(source_path)
    record.update(table=cell.table, cell=cell.id, method=cell.method, gamma=effective_gamma(cell),
                  reused_from=os.path.relpath(source_path, root))
    if cell.ablation is not None:
        record["ablation"] = list(cell.ablation)
    return record


# What `run` does with a cell, by what is on disk.
STATUSES = {
    "done": "its result file exists: skipped",
    "reuse": "the same run's result exists in another table: copied",
    "collect": "its run folder holds a scored run: collected without training",
    "resume": "its run folder holds a checkpoint: resumed",
    "missing": "trained from the start",
}
TO_TRAIN = ("resume", "missing")


def cell_status(cell, root):
    """One of STATUSES."""
    if os.path.exists(cell.result_path(root)):
        return "done"
    reused = cell.reused_cell()
    if reused is not None and os.path.exists(reused.result_path(root)):
        return "reuse"
    folder = RunFolder(cell.run_dir(root))
    if folder.is_scored():
        return "collect"
    return "resume" if folder.has_checkpoint() else "missing"


def run_cell(cell, *, root, data_dir, run, machine_info, log):
    """Train (or resume, or collect) one cell and write its result file; return the file's path."""
    path = cell.result_path(root)
    reused = cell.reused_cell()
    if reused is not None and os.path.exists(reused.result_path(root)):
        write_json(path, reused_record(cell, reused.result_path(root), root=root), overwrite=False)
        log(f"{cell.id}: the same run as {os.path.relpath(reused.result_path(root), root)}; copied")
        return path
    folder = RunFolder(cell.run_dir(root))
    argv = command(cell, repo_root=root, data_dir=data_dir)
    git = git_state(root)
    resumed = folder.has_checkpoint() or folder.is_scored()
    if folder.is_scored():
        # Killed after its scores but before its result file: the run is complete (the same command would refuse
        # to train it again).
        wall_seconds, cpu_seconds = read_json(folder.scores).get("seconds", 0.0), None
        log(f"{cell.id}: collecting the finished run in {folder.run_dir}")
    else:
        if os.path.exists(folder.shallow_model):
            argv.append("--overwrite")  # a shallow fit killed before its scores: fitted again (no epochs to resume)
        log(f"{cell.id}: {shell_line(argv)}")
        started, cpu_started = time.monotonic(), children_cpu_seconds()
        status = run(argv, cwd=root)
        wall_seconds = time.monotonic() - started
        cpu_seconds = children_cpu_seconds() - cpu_started
        if status != 0 or not folder.is_scored():
            raise SaehError(f"cell {cell.id} failed (exit status {status}); its output is above. The same `run` "
                            f"command resumes it; the cell's command was: {shell_line(argv)}")
    record = result_record(cell, root=root, argv=argv, wall_seconds=wall_seconds, resumed=resumed, git=git,
                           machine_info=machine_info, cpu_seconds=cpu_seconds)
    write_json(path, record, overwrite=False)
    log(f"{cell.id}: {MAP} = {record['scores'].get(MAP)}; wrote {os.path.relpath(path, root)}")
    return path


def time_estimates(records):
    """{(method, dataset, procedure, preset): (mean wall seconds, mean CPU seconds or None)} of the cells trained in
    one attempt (any table, any bits): a per-cell estimate for the cells still to train. The CPU time (of the
    training process) counts only records that have it; it is the figure a shared or paused machine does not
    inflate."""
    walls, cpus = {}, {}
    for record in records:
        if not record.get("reused_from") and not record.get("resumed"):
            key = (record["method"], record["dataset"], record["procedure"], record["preset"])
            walls.setdefault(key, []).append(record["wall_seconds"])
            if record.get("cpu_seconds") is not None:
                cpus.setdefault(key, []).append(record["cpu_seconds"])
    return {key: (statistics.fmean(values), statistics.fmean(cpus[key]) if key in cpus else None)
            for key, values in walls.items()}


def dry_run(table_cells, *, root, data_dir, log):
    """Print each cell's status and command, the counts, and the time the cells to train may take."""
    estimates = time_estimates(all_results(root))
    counts = dict.fromkeys(STATUSES, 0)
    seconds, cpu_seconds, with_cpu, without_estimate = 0.0, 0.0, 0, 0
    for cell in table_cells:
        status = cell_status(cell, root)
        counts[status] += 1
        reused = cell.reused_cell()
        same_run = f" (the same run as {reused.table}'s {reused.id}: copied when that exists)" if reused else ""
        log(f"[{status}] {cell.id}{same_run}\n    {shell_line(command(cell, repo_root=root, data_dir=data_dir))}")
        if status in TO_TRAIN:
            wall, cpu = estimates.get((cell.method, cell.dataset, cell.procedure, cell.preset), (None, None))
            seconds += wall or 0.0
            without_estimate += wall is None
            cpu_seconds += cpu or 0.0
            with_cpu += cpu is not None
    log(f"{len(table_cells)} cells: " + "; ".join(f"{counts[status]} {status} ({meaning})"
                                                 for status, meaning in STATUSES.items() if counts[status]))
    to_train = sum(counts[status] for status in TO_TRAIN)
    if to_train and without_estimate < to_train:
        log(f"budget: about {format_duration(seconds)} for {to_train - without_estimate} of the {to_train} cells to "
            "train (the mean wall time of finished cells of the same method, dataset and preset)"
            + (f"; no estimate for {without_estimate}" if without_estimate else ""))
    if with_cpu:
        log(f"CPU time: about {format_duration(cpu_seconds)} for the {with_cpu} of them with a recorded CPU time")


def run_table(table_name, *, preset, seeds=(defaults.SEED,), methods=None, bits=None, repo_root=None, data_dir=None,
              commit=False, dry=False, train=True, tables=None, run=run_command, log=print):
    """Run the missing cells of a table (of `methods` only, when given), one result file each (committed on its
    own with `commit`). With `train` false, only the cells that need no training are written (copies of another
    table's run, scored run folders); the others are listed. Returns the result files written by this call."""
    root = os.path.abspath(repo_root or default_repository())
    table_cells = cells(table_name, preset=preset, seeds=seeds, methods=methods, bits=bits, tables=tables)
    log(f"{table_name} under preset {preset}: " + ("; ".join(presets.deviations(preset)) or "the paper's setting"))
    if dry:
        dry_run(table_cells, root=root, data_dir=data_dir, log=log)
        return []
    if commit:
        check_git_repository(root)
    machine_info = machine()
    written = []
    for cell in table_cells:
        path = cell.result_path(root)
        if os.path.exists(path):
            log(f"{cell.id}: done ({os.path.relpath(path, root)})")
        elif not train and cell_status(cell, root) in TO_TRAIN:
            log(f"{cell.id}: not trained (--no-train)")
        else:
            written.append(run_cell(cell, root=root, data_dir=data_dir, run=run, machine_info=machine_info, log=log))
        if commit and commit_result(root, path, cell.id):
            log(f"{cell.id}: committed")
    return written


def add_curves(*, repo_root=None, commit=False, tables=None, log=print):
    """Add the precision-recall curves and the selected epoch (`selected_epoch`: its validation accuracy) to the
    result files that lack them: from the run folder, or, for a copied cell, from the result it was copied from.
    Returns the files changed (committed together with `commit`)."""
    root = os.path.abspath(repo_root or default_repository())
    if commit:
        check_git_repository(root)
    changed, lacking = [], []
    # Trained cells first, so that the copies find their source's curves.
    paths = [os.path.join(root, RESULTS, name, file_name) for name in (TABLES if tables is None else tables)
             if os.path.isdir(os.path.join(root, RESULTS, name))
             for file_name in sorted(os.listdir(os.path.join(root, RESULTS, name))) if file_name.endswith(".json")]
    records = {path: read_json(path) for path in paths}
    for path in sorted(paths, key=lambda p: bool(records[p].get("reused_from"))):
        record = records[path]
        source = record.get("reused_from")
        added = []
        if not record.get("selected_epoch"):
            epoch = (read_json(os.path.join(root, source)).get("selected_epoch") if source else
                     selected_epoch(RunFolder(os.path.join(root, record["run_dir"]))))
            if epoch:
                record["selected_epoch"] = epoch
                added.append("selected epoch")
        if not record.get("curves"):
            if source:
                curves = read_json(os.path.join(root, source)).get("curves")
            else:
                folder = RunFolder(os.path.join(root, record["run_dir"]))
                try:
                    curves = run_curves(folder) if folder.is_scored() else None
                except SaehError as error:
                    log(f"{record['cell']}: {error}")
                    curves = None
            if curves:
                record["curves"] = curves
                added.append("curves")
            else:
                lacking.append(record["cell"])
        if added:  # one write per file, whatever it gained
            write_json(path, record, overwrite=True)
            changed.append(path)
            log(f"{record['cell']}: {' and '.join(added)} added")
    if lacking:
        log(f"no codes to draw the curves of {len(lacking)} cell(s) from (their run folders are gone): "
            f"{', '.join(lacking)}")
    if commit and commit_files(root, changed, f"results: curves or selected epochs of {len(changed)} cell(s)"):
        log("committed")
    return changed


# ---------------------------------------------------------------------------------------------------------- report

def all_results(root, tables=None):
    """Every result record under `<root>/results/<table>/`, for the known tables, in a stable order."""
    records = []
    for name in TABLES if tables is None else tables:
        directory = os.path.join(root, RESULTS, name)
        for file_name in sorted(os.listdir(directory)) if os.path.isdir(directory) else ():
            if file_name.endswith(".json") and not file_name.startswith("."):
                records.append(read_json(os.path.join(directory, file_name)))
    return records


def percent(value):
    return 100.0 * value


def mean_and_spread(values, signed=False):
    """'mean ± sample standard deviation' of `values` (in points), or the single value."""
    sign = "+" if signed else ""
    text = f"{statistics.fmean(values):{sign}.2f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.2f}"
    return text


def format_duration(seconds):
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def _paper_lookup(table):
    """(mAP, precision) of the paper (in %) for a row key of `table`, each None where the paper has none."""
    from saeh.published import dpsh_protocol_map, published_results, table1_map

    if table.paper == "dpsh":
        return lambda method, dataset, bits, gamma: (dpsh_protocol_map(method, dataset, bits), None)
    if table.paper == "table2":
        published = published_results()["table2_gamma"]

        def lookup(method, dataset, bits, gamma):
            if (dataset, bits) != (published["dataset"], published["bits"]) or gamma not in published["gamma"]:
                return None, None
            index = published["gamma"].index(gamma)
            return published["map_at_1000"][index], published["precision_radius_2"][index]
        return lookup
    return lambda method, dataset, bits, gamma: (table1_map(method, dataset, bits), None)


def method_labels():
    """{registry name: name in the tables}: Table 1's labels as published_results.json spells them, and every other
    registered method by its summary's name (`registry.display_name`)."""
    from saeh import registry
    from saeh.published import published_results

    published = {row["method"]: row["label"] for row in published_results()["table1_map_at_1000"]["rows"]}
    return {name: published.get(name) or registry.display_name(name) for name in registry.names()}


def _row_key(record):
    return record["method"], record["dataset"], record["bits"], record["gamma"], record["procedure"]


def _order(table, preset, keys):
    """Row keys in the table's own order; rows the table does not define (none, normally) after them."""
    defined = []
    for cell in cells(table.name, preset=preset, seeds=(0,), tables={table.name: table}):
        key = (cell.method, cell.dataset, cell.bits, effective_gamma(cell), cell.procedure)
        if key not in defined:
            defined.append(key)
    known = [key for key in defined if key in keys]
    return known + sorted((key for key in keys if key not in defined), key=repr)


def _validation_accuracy(record):
    """The classifier's validation accuracy at the run's selected epoch, or None (not recorded, or no classifier)."""
    return (record.get("selected_epoch") or {}).get("validation_accuracy")


def _cell(value):
    return "–" if value is None else f"{value:.2f}"


def _paired(by_seed_a, by_seed_b, metric):
    """Differences a − b (points) over the seeds both have."""
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    return [percent(by_seed_a[seed]["scores"][metric]) - percent(by_seed_b[seed]["scores"][metric]) for seed in seeds]


def _difference_text(values):
    text = mean_and_spread(values, signed=True)
    if len(values) > 1:
        text += f" (min {min(values):+.2f}, max {max(values):+.2f})"
    return text


def _samples_its_epochs(name):
    from saeh import registry

    method = registry.get(name)
    return getattr(method, "sampler", None) is not None


def _procedure_suffix(procedure, procedures):
    """A row label's note of its procedure: always for the original, for ours only beside the original's rows."""
    return f" ({procedure} procedure)" if procedure == "original" or len(procedures) > 1 else ""


def _comparisons(keys, procedures, show_gamma, labels):
    """(row key, its base row's key, name) of each paired difference a section shows: each γ against γ = 0 in Table
    2; elsewhere SAEH against SAEH⁻, and the original procedure against ours, wherever both rows exist.
    `procedures`: those of the section's rows."""
    pairs = []
    for key in keys:
        method, dataset, bits, gamma, procedure = key
        if show_gamma:
            if gamma not in (None, 0.0):
                pairs.append((key, (method, dataset, bits, 0.0, procedure), f"γ = {gamma:g} − γ = 0"))
            continue
        if method == "saeh":
            pairs.append((key, ("saeh-minus", dataset, bits, 0.0, procedure),
                          f"{labels.get('saeh', 'saeh')} − {labels.get('saeh-minus', 'saeh-minus')}"
                          + _procedure_suffix(procedure, procedures)))
        if procedure == "original":
            pairs.append((key, (method, dataset, bits, gamma, "default"),
                          f"{labels.get(method, method)}: original − default procedure"))
    return [(key, base, name) for key, base, name in pairs if base in keys]


def render_preset_section(table, preset, records, labels):
    lines = []
    by_key = {}
    for record in records:
        by_key.setdefault(_row_key(record), {})[record["seed"]] = record
    keys = _order(table, preset, list(by_key))
    show_gamma = table.paper == "table2"
    # DPSH's and ADSH's papers report mAP over the whole database; the others mAP@1000, as SAEH's.
    metric, metric_label = (MAP_ALL, "mAP@all") if table.paper == "dpsh" else (MAP, "mAP@1000")
    paper = _paper_lookup(table)
    trained = [record for record in records if not record.get("reused_from")]
    reused = len(records) - len(trained)
    commits = sorted({(record["git"].get("commit") or "unknown")[:7] + (" (dirty)" if record["git"].get("dirty")
                                                                         else "") for record in records})
    cpus = sorted({f"{record['machine'].get('cpu')} ({record['machine'].get('cpu_count')} cores)"
                   for record in records})
    deviations = presets.deviations(preset) if preset in presets.PRESETS else ["(not a preset of this version)"]
    lines.append(f"**Preset `{preset}`**: " + ("; ".join(deviations) or "the paper's setting") + ".")
    sampling = sorted({labels.get(record["method"], record["method"]) for record in records
                       if _samples_its_epochs(record["method"])})
    if sampling:
        lines.append(f"{' and '.join(sampling)} count their epochs in outer iterations over a sample: they train for "
                     "as many as give the preset's passes over the training set in image visits "
                     "(`DeepMethod.epochs_for_passes`).")
    lines.append("")
    wall = format_duration(sum(record["wall_seconds"] for record in trained))
    if any(record.get("resumed") for record in trained):
        wall = "at least " + wall + " (resumed cells count their last attempt)"
    cell_count = f"{len(records)} cell{'' if len(records) == 1 else 's'}"
    lines.append(f"{cell_count} ({reused} copied from another table's identical run, not timed again); "
                 f"wall time {wall}; CPU: {', '.join(cpus)}; commit(s): {', '.join(commits)}.")
    lines.append("")
    show_accuracy = any(_validation_accuracy(record) is not None for record in records)
    header = ["method", "data", "bits"] + (["γ"] if show_gamma else []) + [
        f"{metric_label} (%)", "paper", "precision r≤2 (%)"] + (["paper"] if show_gamma else []) + (
        ["val. accuracy (%)"] if show_accuracy else []) + ["seeds"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    procedures = {key[4] for key in keys}
    for key in keys:
        method, dataset, bits, gamma, procedure = key
        runs = [by_key[key][seed] for seed in sorted(by_key[key])]
        paper_map, paper_precision = paper(method, dataset, bits, gamma)
        row = [labels.get(method, method) + _procedure_suffix(procedure, procedures), dataset,
               str(bits)] + ([f"{gamma:g}"] if show_gamma else [])
        row += [mean_and_spread([percent(run["scores"][metric]) for run in runs]), _cell(paper_map),
                mean_and_spread([percent(run["scores"][PRECISION]) for run in runs])]
        row += [_cell(paper_precision)] if show_gamma else []
        if show_accuracy:
            accuracies = [_validation_accuracy(run) for run in runs]
            row += [mean_and_spread([percent(value) for value in accuracies]) if None not in accuracies else "–"]
        row += [", ".join(str(seed) for seed in sorted(by_key[key]))]
        lines.append("| " + " | ".join(row) + " |")
    comparisons = []
    for key, base, name in _comparisons(keys, procedures, show_gamma, labels):
        maps = _paired(by_key[key], by_key[base], metric)
        if maps:
            comparisons.append([name, key[1], str(key[2]), _difference_text(maps),
                                _difference_text(_paired(by_key[key], by_key[base], PRECISION)), str(len(maps))])
    if comparisons:
        header = ["paired difference (same seed)", "data", "bits", f"{metric_label} (points)",
                  "precision r≤2 (points)", "pairs"]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in comparisons]
    return lines


def render_ablation_section(table, preset, records, labels):
    """A recipe ablation under `preset`: a row per method and ingredient removed, its validation accuracy and scores,
    and its mAP@1000 against the full recipe's run of the same method and seed."""
    from saeh import recipes

    full = {(record["method"], record["seed"]): record for record in records if not record.get("ablation")}
    cpus = sorted({f"{record['machine'].get('cpu')} ({record['machine'].get('cpu_count')} cores)"
                   for record in records})
    lines = [f"**Preset `{preset}`**; CPU: {', '.join(cpus)}.", ""]
    header = ["method", "trained without", "in its place", "val. accuracy (%)", "mAP@1000 (%)",
              "precision r≤2 (%)", "mAP@1000 against the full recipe (points)", "seed", "wall time"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    order = {name: index for index, name in enumerate(("",) + ABLATED)}
    for record in sorted(records, key=lambda r: (r["method"], order.get("-".join(r.get("ablation") or ()), 99),
                                                 r["seed"])):
        ablation = record.get("ablation") or []
        base = full.get((record["method"], record["seed"]))
        accuracy = _validation_accuracy(record)
        difference = ("–" if not ablation or base is None else
                      f"{percent(record['scores'][MAP]) - percent(base['scores'][MAP]):+.2f}")
        row = [labels.get(record["method"], record["method"]),
               ", ".join(ablation) or "nothing (the full recipe)",
               "; ".join(recipes.ABLATIONS[name][0] for name in ablation if name in recipes.ABLATIONS) or "–",
               "–" if accuracy is None else f"{percent(accuracy):.2f}", f"{percent(record['scores'][MAP]):.2f}",
               f"{percent(record['scores'][PRECISION]):.2f}", difference, str(record["seed"]),
               "copied" if record.get("reused_from") else format_duration(record["wall_seconds"])]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def render_report(records, tables=None, figures=()):
    """The Markdown section (between the markers) for `records` and the `figures` drawn from them ([(file name in
    image/, caption)]); the same inputs give the same bytes."""
    tables = TABLES if tables is None else tables
    lines = [BEGIN, "## Reproduction runs (`python -m saeh.reproduce`)", "",
             "Generated by `python -m saeh.reproduce report` from the result files in `results/` alone; do not edit "
             "by hand."]
    if not records:
        lines += ["", "No reproduction results yet: `results/` holds no result file. "
                  "`python -m saeh.reproduce run TABLE --preset P` makes them.", END]
        return "\n".join(lines) + "\n"
    lines[-1] += (" Scores in %: mean ± sample standard deviation over the seeds listed (one seed: the value); "
                  "paired differences compare runs of the same seed. The paper's numbers come from "
                  "`saeh/published_results.json`.")
    lines.append("")
    labels = method_labels()
    empty = []
    for name, table in tables.items():
        table_records = [record for record in records if record["table"] == name]
        if not table_records:
            empty.append(name)
            continue
        lines += [f"### `{name}`", "", table.description + ".", ""]
        render = render_ablation_section if table.paper == "ablation" else render_preset_section
        for preset in sorted({record["preset"] for record in table_records}):
            lines += render(table, preset, [r for r in table_records if r["preset"] == preset], labels)
            lines.append("")
    if empty:
        lines += [f"No results yet for: {', '.join(f'`{name}`' for name in empty)}.", ""]
    if figures:
        lines += ["### Figures", "", "Drawn from the same result files by `python -m saeh.reproduce report`.", ""]
        for name, caption in figures:
            lines += [f"![{caption}]({IMAGES}/{name})", "", f"*{caption}* (`{IMAGES}/{name}`)", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(text, section):
    """`text` with the part between the markers (markers included) replaced by `section`; appended at the end when
    the markers are absent."""
    start, end = text.find(BEGIN), text.find(END)
    if start != -1 and end > start:
        return text[:start] + section.rstrip("\n") + text[end + len(END):]
    if start != -1 or end != -1:
        raise SaehError(f"only one of the markers {BEGIN} and {END} was found, or they are out of order; fix the "
                        "file by hand")
    if not text:
        return section
    return text + ("\n" if text.endswith("\n") else "\n\n") + section


def write_report(*, repo_root=None, out=None, tables=None, log=print):
    """Render the tables from `<repo_root>/results` into `out` (default RESULTS.md at the root) between the markers,
    the rest of the file untouched, and the figures into `<repo_root>/image`; `out` "-" prints the section (and
    draws no figure). Returns the section."""
    from saeh.published import published_results
    from saeh.results_figures import remove_stale_figures, render_figures

    root = os.path.abspath(repo_root or default_repository())
    records = all_results(root, tables)
    figures = [] if out == "-" else render_figures(records, os.path.join(root, IMAGES), method_labels(),
                                                   published_results()["table2_gamma"])
    if out != "-" and tables is None:
        remove_stale_figures(os.path.join(root, IMAGES), {name for name, _ in figures}, log)
    section = render_report(records, tables, figures)
    if out == "-":
        log(section.rstrip("\n"))
        return section
    path = out or os.path.join(root, "RESULTS.md")
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    new_text = replace_section(text, section)
    if new_text != text:
        with atomic_path(path) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(new_text)
        log(f"wrote the reproduction section of {path}")
    else:
        log(f"{path} is up to date")
    return section


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.reproduce", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the missing cells of a table")
    run.add_argument("table", help=f"one of {', '.join(TABLES)}")
    run.add_argument("--preset", required=True, help=f"one of {', '.join(presets.PRESETS)}")
    run.add_argument("--seeds", type=int, nargs="+", default=[defaults.SEED],
                     help=f"seeds of the cells (default: {defaults.SEED})")
    run.add_argument("--methods", nargs="+", default=None,
                     help="run only these methods' cells, e.g. the cheap rows first (default: every method)")
    run.add_argument("--bits", type=int, nargs="+", default=None,
                     help="run only the cells of these code lengths (default: every length of the table)")
    run.add_argument("--data-dir", default=None, help="passed to the training script (default: its own default)")
    run.add_argument("--commit", action="store_true", help="git add and commit each result file as it is written")
    run.add_argument("--dry-run", action="store_true", help="list the cells, their commands and status; run nothing")
    run.add_argument("--no-train", action="store_true",
                     help="write only the cells that need no training: copies of another table's identical run and "
                          "scored run folders")
    run.add_argument("--repo-root", default=None, help="where results/ and runs/ are (default: this clone)")
    report = commands.add_parser("report", help="render results/ into RESULTS.md")
    report.add_argument("--out", default=None, help="the Markdown file to update (default: RESULTS.md); - prints")
    report.add_argument("--repo-root", default=None, help="where results/ is (default: this clone)")
    curves = commands.add_parser("curves", help="add the precision-recall curves to result files that lack them")
    curves.add_argument("--commit", action="store_true", help="git add and commit the changed result files")
    curves.add_argument("--repo-root", default=None, help="where results/ and runs/ are (default: this clone)")
    commands.add_parser("presets", help="list the presets and their deviations from the paper")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "run":
        run_table(args.table, preset=args.preset, seeds=args.seeds, methods=args.methods, bits=args.bits,
                  repo_root=args.repo_root, data_dir=args.data_dir, commit=args.commit, dry=args.dry_run,
                  train=not args.no_train)
    elif args.command == "report":
        write_report(repo_root=args.repo_root, out=args.out)
    elif args.command == "curves":
        add_curves(repo_root=args.repo_root, commit=args.commit)
    else:
        presets.main()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
