"""Running a table's cells: each cell's status on disk, training (or resuming, or collecting) it through the
training script at lower priority, its result file written and, with `commit`, committed on its own; the dry run's
listing and time budget; and adding curves and selected epochs to result files written before they were stored."""

import os
import statistics
import subprocess
import time

from saeh import defaults, presets
from saeh.atomic import write_json
from saeh.errors import SaehError
from saeh.reproduce.layout import RESULTS, default_repository
from saeh.reproduce.provenance import git_state, machine, run_git
from saeh.reproduce.records import (MAP, MAP_TIES_AVERAGED, all_results, read_json, result_record, reused_record,
                                    RunCodes, selected_epoch)
from saeh.reproduce.report import format_duration
from saeh.reproduce.tables import TABLES, cells, command, shell_line
from saeh.run_folder import RunFolder

NICENESS = 10  # training runs below other work on a shared machine


def lower_priority():
    os.nice(NICENESS)


def run_command(argv, *, cwd):
    """Run a training command in `cwd` at lower priority, its output on ours; return its exit status."""
    return subprocess.run(argv, cwd=cwd, preexec_fn=lower_priority).returncode


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
    if not relative or not run_git(root, "status", "--porcelain", "--", *relative).stdout.strip():
        return False
    for args in (("add", "--", *relative), ("commit", "-q", "-m", message, "--", *relative)):
        done = run_git(root, *args)
        if done.returncode != 0:
            raise SaehError(f"git {args[0]} of {', '.join(relative)} failed: {(done.stderr or done.stdout).strip()}")
    return True


def children_cpu_seconds():
    """CPU seconds (user + system) of this process's finished child processes. Unlike the wall time, it does not
    count a training that was paused (SIGSTOP) or shared the cores: the measure of what a cell costs."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def run_table(table_name, *, preset, seeds=(defaults.SEED,), methods=None, bits=None, gammas=None, ablations=None,
              repo_root=None, data_dir=None, commit=False, dry=False, train=True, tables=None, run=run_command,
              log=print):
    """Run the missing cells of a table (of `methods`, `bits`, `gammas` and `ablations` only, when given), one result
    file each (committed on its own with `commit`). With `train` false, only the cells that need no training are
    written (copies of another table's run, scored run folders); the others are listed. Returns the result files written by this call."""
    root = os.path.abspath(repo_root or default_repository())
    table_cells = cells(table_name, preset=preset, seeds=seeds, methods=methods, bits=bits, gammas=gammas,
                        ablations=ablations, tables=tables)
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
    """Add the precision-recall curves, the selected epoch (`selected_epoch`: its validation accuracy) and the
    tie-averaged mAP (`records.MAP_TIES_AVERAGED`) to the result files that lack them: from the run folder, or, for
    a copied cell, from the result it was copied from.
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
        codes = None if source else RunCodes(RunFolder(os.path.join(root, record["run_dir"])))
        added = []
        if not record.get("selected_epoch"):
            epoch = (read_json(os.path.join(root, source)).get("selected_epoch") if source else
                     selected_epoch(codes.folder))
            if epoch:
                record["selected_epoch"] = epoch
                added.append("selected epoch")
        if not record.get("curves"):
            if source:
                curves = read_json(os.path.join(root, source)).get("curves")
            else:
                try:
                    curves = codes.curves() if codes.folder.is_scored() else None
                except SaehError as error:
                    log(f"{record['cell']}: {error}")
                    curves = None
            if curves:
                record["curves"] = curves
                added.append("curves")
            else:
                lacking.append(record["cell"])
        if MAP_TIES_AVERAGED[MAP] not in record["scores"]:
            if source:
                scores = read_json(os.path.join(root, source))["scores"]
                ties = {name: scores[name] for name in MAP_TIES_AVERAGED.values() if name in scores}
            else:
                try:
                    ties = codes.tie_averaged_scores() if codes.folder.is_scored() else {}
                except SaehError as error:
                    log(f"{record['cell']}: {error}")
                    ties = {}
            if ties:
                record["scores"].update(ties)
                added.append("tie-averaged mAP")
        if added:  # one write per file, whatever it gained
            write_json(path, record, overwrite=True)
            changed.append(path)
            log(f"{record['cell']}: {' and '.join(added)} added")
    if lacking:
        log(f"no codes to draw the curves of {len(lacking)} cell(s) from (their run folders are gone): "
            f"{', '.join(lacking)}")
    message = f"results: curves, selected epochs or tie-averaged mAP of {len(changed)} cell(s)"
    if commit and commit_files(root, changed, message):
        log("committed")
    return changed
