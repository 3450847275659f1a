"""The paper's tables as cells: which methods, datasets, code lengths, gammas, seeds and ablations each
table runs, under which preset and protocol, which cells are copies of another table's identical run; each cell's id,
files and the training command it runs."""

import dataclasses
import os
import shlex
import sys

from saeh import defaults, presets, recipes
from saeh.errors import SaehError
from saeh.reproduce.layout import RESULTS, RUNS, SCRIPT, default_repository

TABLE1_METHODS = ("saeh", "saeh-minus", "ssdh", "dsh", "cnnh-plus", "itq", "ksh")  # the paper's Table 1
SAEH_METHODS = ("saeh", "saeh-minus")
TABLE1_BITS = (12, 24, 32, 48)
TABLE2_GAMMAS = (0, 0.01, 0.1, 1, 10)
# The ablation table's ingredients: the encoder's recipe's (saeh.recipes.ABLATIONS, the script's --ablate), then
# SAEH's own loss terms (`LOSS_ABLATIONS`).
RECIPE_ABLATED = ("whitening", "identity-init", "norm-bias-rate", "lookahead", "label-smoothing", "translation")
# {name: (what trains in its place, the training script's flags)}: whether the binarising and balance terms cost
# accuracy at the recipe's rate and batch (if they do, a ramp-in would be the next thing to try).
LOSS_ABLATIONS = {"hash-terms": ("SAEH's binarising and balance terms off (α = β = 0): the sigmoid hash layer "
                                 "trained through the classifier alone", ("--alpha", "0", "--beta", "0"))}
ABLATED = RECIPE_ABLATED + tuple(LOSS_ABLATIONS)
FULL_RECIPE = "full-recipe"  # the name of the ablation table's cells that remove nothing


def other_sources_methods():
    """Every registered method that the paper's Table 1 does not have (the methods of our other sources, run beside
    Table 1's at 32 bits under the same preset; the paper has no number for them, so the report leaves its column
    empty), in the registry's order, where each method's `listing_order` places it: those trained on a hashing loss
    first, then those whose codes come from a classifier (DLBHC, classifier codes). Read from the registry when a
    table's cells are listed, so that a new method's module is all it takes to add its rows."""
    from saeh import registry

    return tuple(name for name in registry.names() if name not in TABLE1_METHODS
                 and getattr(registry.get(name), "data_kind", "images") == "images")  # the tables hash images


@dataclasses.dataclass(frozen=True)
class Group:
    """Cells: every method x bits x gamma x seed, on one dataset under one procedure."""
    methods: object  # a tuple of registry names, or a function that returns one (read when cells are listed)
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

    def method_names(self):
        """The group's methods, in order."""
        return self.methods() if callable(self.methods) else self.methods


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of cells, and the published table the report sets beside it."""
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
          (Group(TABLE1_METHODS, "mnist", TABLE1_BITS), Group(other_sources_methods, "mnist", (32,)))),
    Table("table1-cifar10", "Table 1 on CIFAR-10 at 32 bits, protocol ssdh; SAEH and SAEH⁻ for every seed given, "
          "the other methods (Table 1's, then those of our other sources) for the first seed only",
          (Group(SAEH_METHODS, "cifar10", (32,)),
           Group(tuple(m for m in TABLE1_METHODS if m not in SAEH_METHODS), "cifar10", (32,), seeds="first"),
           Group(other_sources_methods, "cifar10", (32,), seeds="first"))),
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
    # this protocol 53,500 database images are neither (`saeh.run_codes.learned_database_rows` refuses the mix).
    Table("dpsh-protocol-cifar10", "DPSH on CIFAR-10 under DPSH's protocol (1,000 queries, 100 a class; database "
          "the other 59,000; 5,000 training images drawn from it), mAP over the whole database beside its paper's "
          "numbers; SSDH and classifier codes on the same images at 32 bits as the yardstick of what a network "
          "trained from scratch on them reaches (ADSH and DSAH are refused here: their database holds learned codes "
          "only, for their training and validation images, so they run under protocol ssdh)",
          (Group(("dpsh",), "cifar10", TABLE1_BITS, seeds="first", protocol="dpsh"),
           Group(("ssdh", "classifier-codes"), "cifar10", (32,), seeds="first", protocol="dpsh")), paper="dpsh"),
    # The fast encoder's recipe with each ingredient removed in turn (one seed): which of them matter for hashing;
    # then SAEH's hash terms (LOSS_ABLATIONS).
    # The full recipe's SAEH and SAEH⁻ are table1-cifar10's cells; classifier codes (a classifier on the encoder's
    # features, no hash layer) say what the data allows the network without the 32-bit hash layer.
    Table("ablation-cifar10", "The encoder's recipe, then SAEH's binarising and balance terms, each removed in turn: "
          "SAEH⁻ and SAEH on CIFAR-10 at 32 bits, protocol ssdh, the first seed; classifier codes (a softmax "
          "classifier on the encoder's features, no hash layer) with the full recipe",
          (Group(("saeh-minus",), "cifar10", (32,), seeds="first", ablations=((), *((name,) for name in ABLATED)),
                 reuse={None: ("table1-cifar10", "saeh-minus")}),
           Group(("saeh",), "cifar10", (32,), seeds="first", reuse={None: ("table1-cifar10", "saeh")}),
           Group(("classifier-codes",), "cifar10", (32,), seeds="first",
                 reuse={None: ("table1-cifar10", "classifier-codes")})), paper="ablation"),
)}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of a table (method x dataset x bits x gamma x seed under one preset and procedure)."""
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
                    or f"_{FULL_RECIPE}")
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


def cells(table_name, *, preset, seeds=(defaults.SEED,), methods=None, bits=None, gammas=None, ablations=None,
          tables=None):
    """The cells of a table under `preset`, in the table's order (groups, methods, bits, gammas, seeds); with
    `methods` (`bits`, `gammas`), only those methods' (code lengths', recovery weights') cells; with `ablations`
    (ingredient names, "full-recipe" for none), only those of a table of ablations."""
    table = get_table(table_name, tables)
    presets.get(preset)
    seeds = check_seeds(seeds)
    in_table = {method for group in table.groups for method in group.method_names()}
    unknown = sorted(set(methods or ()) - in_table)
    if unknown:
        raise SaehError(f"table {table_name} has no method(s) {', '.join(unknown)}; it has "
                        f"{', '.join(sorted(in_table))}")
    in_table = {length for group in table.groups for length in group.bits}
    unknown = sorted(set(bits or ()) - in_table)
    if unknown:
        raise SaehError(f"table {table_name} has no code length(s) {', '.join(map(str, unknown))}; it has "
                        f"{', '.join(map(str, sorted(in_table)))}")
    in_table = {float(gamma) for group in table.groups for gamma in group.gammas if gamma is not None}
    unknown = sorted(set(map(float, gammas or ())) - in_table)
    if unknown:
        raise SaehError(f"table {table_name} has no gamma(s) {', '.join(map(str, unknown))}; it has "
                        + (", ".join(map(str, sorted(in_table))) or "none (its methods' own weights)"))
    known = {ablation_name(ablation) for group in table.groups for ablation in group.ablations
             if table.paper == "ablation"}
    unknown = sorted(set(ablations or ()) - known)
    if unknown:
        raise SaehError(f"table {table_name} has no ablation(s) {', '.join(unknown)}; it has "
                        + (", ".join(sorted(known)) or "none"))
    wanted_gammas = set(map(float, gammas or ()))
    found = []
    for group in table.groups:
        for method in (m for m in group.method_names() if not methods or m in methods):
            for length in (b for b in group.bits if not bits or b in bits):
                for gamma, ablation in ((g, a) for g in group.gammas for a in group.ablations
                                        if (not gammas or (g is not None and float(g) in wanted_gammas))
                                        and (not ablations or ablation_name(a) in ablations)):
                    for seed in seeds if group.seeds == "all" else seeds[:1]:
                        found.append(Cell(table.name, method, group.dataset, length, gamma, group.procedure, seed,
                                          preset, None if ablation else group.reuse.get(gamma), group.protocol,
                                          tuple(ablation) if table.paper == "ablation" else None))
    return found


def ablation_name(ablation):
    """The name `--ablations` takes for a cell's `ablation` (ingredients removed): theirs, or FULL_RECIPE for none."""
    return "-".join(ablation) or FULL_RECIPE


def ablation_meaning(ingredient):
    """What trains in the place of an ablated `ingredient` (of the recipe or of SAEH's loss), in words."""
    return LOSS_ABLATIONS[ingredient][0] if ingredient in LOSS_ABLATIONS else recipes.ABLATIONS[ingredient][0]


def effective_gamma(cell):
    """SAEH's recovery weight in the cell (None for methods without one)."""
    if cell.method not in SAEH_METHODS:
        return None
    if cell.method == "saeh-minus":
        return 0.0
    return float(defaults.GAMMA if cell.gamma is None else cell.gamma)


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
        argv += list(LOSS_ABLATIONS[ingredient][1]) if ingredient in LOSS_ABLATIONS else ["--ablate", ingredient]
    argv += ["--save-dir", os.path.join(RUNS, cell.table), "--run-name", cell.id, "--verbose", "2"]
    return argv


def shell_line(argv):
    """`argv` as a user would type it (the interpreter as `python`)."""
    return shlex.join(["python", *argv[1:]])
