"""Running the top-level scripts from tests: in this process (as `__main__`), and reading their one error line."""

import os
import re
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(script, args, monkeypatch, capsys):
    """Run a top-level script in this process (as `__main__`); returns (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *args])
    capsys.readouterr()
    try:
        runpy.run_path(os.path.join(REPO, script), run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err, script):
    """The one line a script prints for a user's mistake; fails unless stderr is exactly that line (apart from
    Python warnings, which are shown or not depending on what ran before in this process)."""
    lines = [line for line in err.strip().splitlines()
             if not re.match(r"^\S+:\d+: \w*Warning: ", line) and not line.startswith("  ")]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), err
    return lines[0]


def training_call(args, monkeypatch, capsys, script="hash_su_ae_train.py"):
    """Run the training script up to its call of `saeh.training.train`, which is stopped; returns (exit status,
    stdout, the split it would train on, the keyword arguments it was given)."""
    from saeh import training

    seen = {}

    def stop_before_training(method, split, num_classes, run_dir, **kwargs):
        seen.update(split=split, kwargs=kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", stop_before_training)
    code, out, _ = run_script(script, args, monkeypatch, capsys)
    return code, out, seen.get("split"), seen.get("kwargs", {})


def trained_map_and_chance(args, monkeypatch, capsys, run_dir):
    """Train through the training script with `args` into `run_dir` (its --save-dir and --run-name are added);
    returns (the run's mAP@1000 from scores.json, mAP@1000 of random codes of the same shape and labels)."""
    import json

    import numpy as np

    from saeh.codes import load_codes
    from saeh.retrieval import map_at_k

    code, _, err = run_script("hash_su_ae_train.py", [*args, "--save-dir", os.path.dirname(run_dir), "--run-name",
                                                      os.path.basename(run_dir)], monkeypatch, capsys)
    assert code == 0, err
    with open(os.path.join(run_dir, "scores.json")) as handle:
        learned = json.load(handle)["map@1000"]
    query, database = (load_codes(os.path.join(run_dir, "codes", f"{name}.npz")) for name in ("query", "database"))
    rng = np.random.default_rng(0)
    chance = map_at_k(rng.integers(0, 2, query.hash_bin.shape), rng.integers(0, 2, database.hash_bin.shape),
                      query.label, database.label, k=1000)
    return learned, chance
