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

One module a job: `tables` (the tables, their cells and each cell's training command), `layout` (where a clone keeps
the script, result files, run folders and figures), `provenance` (the code's commit and the machine), `records` (a
result file's content, and reading them back), `runner` (running, resuming, collecting and committing cells; curves
for older result files), `report` (RESULTS.md's section) and `cli` (the command line above).
"""
