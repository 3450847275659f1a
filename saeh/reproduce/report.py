"""RESULTS.md's reproduction section: each table's rows from the result files alone (mean ± spread over seeds, the
paper's value beside ours, paired differences by seed), the figures drawn from them, and the section written
between its markers with the rest of the file untouched."""

import os
import statistics

from saeh import presets
from saeh.atomic import atomic_path
from saeh.errors import SaehError
from saeh.reproduce.layout import IMAGES, default_repository
from saeh.reproduce.records import MAP, MAP_ALL, MAP_TIES_AVERAGED, PRECISION, all_results
from saeh.reproduce.tables import ABLATED, TABLES, ablation_meaning, cells, effective_gamma

BEGIN, END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"  # the report's place in RESULTS.md


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
    """Differences a − b (points) over the seeds both have and both record `metric` for."""
    seeds = sorted(seed for seed in set(by_seed_a) & set(by_seed_b)
                   if metric in by_seed_a[seed]["scores"] and metric in by_seed_b[seed]["scores"])
    return [percent(by_seed_a[seed]["scores"][metric]) - percent(by_seed_b[seed]["scores"][metric]) for seed in seeds]


def _tie_averaged_text(runs, metric, spread):
    """`spread` of the tie-averaged `metric` over the runs that record it (older results may not), saying how many
    of the runs those are when not all; '–' when none does."""
    values = [percent(run["scores"][MAP_TIES_AVERAGED[metric]]) for run in runs
              if MAP_TIES_AVERAGED[metric] in run["scores"]]
    if not values:
        return "–"
    return spread(values) + ("" if len(values) == len(runs) else f" ({len(values)} of {len(runs)})")


def _difference_text(values):
    text = mean_and_spread(values, signed=True)
    if len(values) > 1:
        text += f" (min {min(values):+.2f}, max {max(values):+.2f})"
    return text


def _samples_its_epochs(name):
    from saeh import registry

    method = registry.get(name)
    return getattr(method, "sampler", None) is not None


def _trained_before_its_recipe(record):
    """Whether `record` was trained with another recipe than the one its method trains with today (cells measured
    before issue 27 registered each method's authors' recipe ran on SAEH's)."""
    from saeh import recipes, registry

    run = record.get("run") or {}
    if "encoder" not in run or not run["encoder"] or record["method"] not in registry.names():
        return False  # a shallow method, or a record too old to say
    today = recipes.for_method(registry.get(record["method"]), run["encoder"])
    # run.json names no recipe where it trains as the original's (`Recipe.trains_as_original`)
    return run["recipe"] != today.name if run.get("recipe") else not today.trains_as_original


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
        one = len(sampling) == 1
        lines.append(f"{' and '.join(sampling)} count{'s its' if one else ' their'} epochs in outer iterations over a "
                     f"sample: {'it trains' if one else 'they train'} for as many as give the preset's passes over the "
                     "training set in image visits (`DeepMethod.epochs_for_passes`).")
    lines.append("")
    wall = format_duration(sum(record["wall_seconds"] for record in trained))
    if any(record.get("resumed") for record in trained):
        wall = "at least " + wall + " (resumed cells count their last attempt)"
    cell_count = f"{len(records)} cell{'' if len(records) == 1 else 's'}"
    lines.append(f"{cell_count} ({reused} copied from another table's identical run, not timed again); "
                 f"wall time {wall}; CPU: {', '.join(cpus)}; commit(s): {', '.join(commits)}.")
    lines.append("")
    show_accuracy = any(_validation_accuracy(record) is not None for record in records)
    # With ties broken by database index a stored order (class-sorted folders) moves the score: the tie-averaged
    # one does not depend on it.
    show_ties = any(MAP_TIES_AVERAGED[metric] in record["scores"] for record in records)
    header = ["method", "data", "bits"] + (["γ"] if show_gamma else []) + [
        f"{metric_label} (%)"] + ([f"{metric_label} tie-averaged (%)"] if show_ties else []) + [
        "paper", "precision r≤2 (%)"] + (["paper"] if show_gamma else []) + (
        ["val. accuracy (%)"] if show_accuracy else []) + ["seeds"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    procedures = {key[4] for key in keys}
    outdated = set()
    for key in keys:
        method, dataset, bits, gamma, procedure = key
        runs = [by_key[key][seed] for seed in sorted(by_key[key])]
        paper_map, paper_precision = paper(method, dataset, bits, gamma)
        mark = ""
        if any(_trained_before_its_recipe(run) for run in runs):
            outdated.add(labels.get(method, method))
            mark = " †"
        row = [labels.get(method, method) + _procedure_suffix(procedure, procedures) + mark, dataset,
               str(bits)] + ([f"{gamma:g}"] if show_gamma else [])
        row += [mean_and_spread([percent(run["scores"][metric]) for run in runs])]
        row += [_tie_averaged_text(runs, metric, mean_and_spread)] if show_ties else []
        row += [_cell(paper_map), mean_and_spread([percent(run["scores"][PRECISION]) for run in runs])]
        row += [_cell(paper_precision)] if show_gamma else []
        if show_accuracy:
            accuracies = [_validation_accuracy(run) for run in runs]
            row += [mean_and_spread([percent(value) for value in accuracies]) if None not in accuracies else "–"]
        row += [", ".join(str(seed) for seed in sorted(by_key[key]))]
        lines.append("| " + " | ".join(row) + " |")
    if outdated:
        lines += ["", f"† {', '.join(sorted(outdated))}: trained with SAEH's recipe before the method's own (its "
                  "authors', `saeh.recipes`) was registered; the row stands until the cell is re-run."]
    comparisons = []
    for key, base, name in _comparisons(keys, procedures, show_gamma, labels):
        maps = _paired(by_key[key], by_key[base], metric)
        if maps:
            ties = _paired(by_key[key], by_key[base], MAP_TIES_AVERAGED[metric])
            fewer = "" if len(ties) == len(maps) else f" ({len(ties)} pair{'' if len(ties) == 1 else 's'})"
            comparisons.append([name, key[1], str(key[2]), _difference_text(maps)]
                               + ([_difference_text(ties) + fewer if ties else "–"] if show_ties else [])
                               + [_difference_text(_paired(by_key[key], by_key[base], PRECISION)), str(len(maps))])
    if comparisons:
        header = ["paired difference (same seed)", "data", "bits", f"{metric_label} (points)"] + (
            [f"{metric_label} tie-averaged (points)"] if show_ties else []) + ["precision r≤2 (points)", "pairs"]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in comparisons]
    return lines


def render_ablation_section(table, preset, records, labels):
    """A recipe ablation under `preset`: a row per method and ingredient removed, its validation accuracy and scores,
    and its mAP@1000 against the full recipe's run of the same method and seed."""
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
               "; ".join(ablation_meaning(name) for name in ablation) or "–",
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
