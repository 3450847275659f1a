"""Trained models shipped in the repository (`pretrained/<name>/`), and how one is cut from a finished cell.

    python -m saeh.pretrained ship results/<TABLE>/<cell id>.json --name NAME [--overwrite]
    python -m saeh.pretrained list       (from a clone, or an installed package: see `saeh.shipped`)

A shipped folder is the cell's run folder cut to what using the model needs:

- `model.keras`: the trained network without the optimiser's state (half the size; nobody resumes it);
- `run.json`: the run's settings, its data folder removed (it named a folder of the machine that trained it), so
  that generate_hash.py and search read the dataset from --data-dir, $SAEH_DATA_DIR or the Keras cache;
- `scores.json`: the scores the run reached, and `result.json`: the cell's result file (command, machine, commit).

`pretrained/README.md` is rendered from the folders by `ship` and `list --write`; nobody types its numbers.
"""

import argparse
import json
import os
import shutil
import sys

from saeh.atomic import atomic_path, write_json
from saeh.errors import SaehError
from saeh.run_folder import RunFolder
from saeh.shipped import PRETRAINED, RESULT
INDEX = "README.md"
NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def default_root():
    from saeh.reproduce.layout import default_repository

    return default_repository()


def listed_root():
    """The first folder of `saeh.shipped.shipped_roots` with a pretrained/ folder: a clone, or an installed
    package's data."""
    from saeh.shipped import shipped_roots, where_to_find

    for root in shipped_roots():
        if os.path.isdir(os.path.join(root, PRETRAINED)):
            return root
    raise SaehError(f"no shipped models: {where_to_find()}")


def check_name(name):
    if not name or not set(name) <= NAME_CHARACTERS:
        raise SaehError(f"--name must be lower-case letters, digits, '-' and '_'; got {name!r}")
    return name


def ship(result_path, name, *, repo_root=None, overwrite=False, log=print):
    """Copy the run of the result file `result_path` into `pretrained/<name>/`; returns that folder."""
    import keras

    from saeh.inference import load_hash_model

    root = os.path.abspath(repo_root or default_root())
    name = check_name(name)
    if not os.path.isfile(result_path):
        raise SaehError(f"result file {result_path} does not exist; expected results/<TABLE>/<cell id>.json")
    with open(result_path) as handle:
        record = json.load(handle)
    if record.get("reused_from"):
        raise SaehError(f"{result_path} is a copy of {record['reused_from']}; ship that cell instead")
    folder = RunFolder(os.path.join(root, record["run_dir"]))
    if not os.path.isfile(folder.model):
        raise SaehError(f"{result_path}'s run folder {folder.run_dir} holds no model.keras (a shallow method, or "
                        "the run folder is gone); only deep models are shipped")
    destination = os.path.join(root, PRETRAINED, name)
    if os.path.exists(destination):
        if not overwrite:
            raise SaehError(f"{destination} already exists; pass --overwrite to replace it")
        shutil.rmtree(destination)
    os.makedirs(destination)
    model = load_hash_model(folder.model)  # compile=False: the optimiser's state is not carried over
    with atomic_path(os.path.join(destination, "model.keras")) as temporary:
        keras.saving.save_model(model, temporary)
    settings = {key: value for key, value in folder.settings().items() if key != "data_dir"}
    RunFolder(destination).record.write(settings)
    shutil.copyfile(folder.scores, os.path.join(destination, "scores.json"))
    write_json(os.path.join(destination, RESULT), record)
    log(f"shipped {record['cell']} as {destination}")
    write_index(root)
    return destination


def shipped(root):
    """[(name, result record)] of the shipped folders, by name."""
    directory = os.path.join(root, PRETRAINED)
    found = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else ():
        path = os.path.join(directory, name, RESULT)
        if os.path.isfile(path):
            with open(path) as handle:
                found.append((name, json.load(handle)))
    return found


def wall_time(record):
    """A result's training wall time in minutes; a resumed run's record holds its last attempt's only."""
    minutes = f"{record['wall_seconds'] / 60:.0f} min"
    return f"at least {minutes} (resumed; its last attempt)" if record.get("resumed") else minutes


def render_index(models):
    """The Markdown of pretrained/README.md for `models` ([(name, result record)])."""
    lines = ["# Trained models", "",
             "Rendered by `python -m saeh.pretrained list --write` from each folder's `result.json`; do not edit by "
             "hand.", "Each folder is a run folder cut to what using the model needs (see `saeh/pretrained.py`). "
             "Dump its codes, or search with it:", "", "```",
             "python generate_hash.py --load-path pretrained/NAME/model.keras --data-dir DIR",
             "python -m saeh.cli.search --model pretrained/NAME/model.keras --data-dir DIR --query-index 0 --out "
             "grid.png", "```", "",
             "Scores in % under the protocol of the row (query and database sizes given).", "",
             "| model | method | data | bits | preset | seed | mAP@1000 | precision r≤2 | protocol | queries × "
             "database | trained on | wall time |", "|" + "---|" * 12]
    for name, record in models:
        scores, machine = record["scores"], record.get("machine", {})
        lines.append(
            f"| `{name}` | {record['method']} | {record['dataset']} | {record['bits']} | {record['preset']} | "
            f"{record['seed']} | {100 * scores['map@1000']:.2f} | {100 * scores['precision@r2']:.2f} | "
            f"{record['protocol']} | {scores.get('n_query')} × {scores.get('n_database')} | "
            f"{machine.get('cpu')} ({machine.get('cpu_count')} cores) | {wall_time(record)} |")
    lines += ["", "The commands that made them (run from the repository root, commit in each `result.json`):", ""]
    lines += [f"- `{name}`: `{record['command']}`" for name, record in models]
    return "\n".join(lines) + "\n"


def write_index(root):
    path = os.path.join(root, PRETRAINED, INDEX)
    text = render_index(shipped(root))
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
    return path


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.pretrained", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ship_parser = commands.add_parser("ship", help="copy a finished cell's model into pretrained/NAME/")
    ship_parser.add_argument("result", help="the cell's result file, results/<TABLE>/<cell id>.json")
    ship_parser.add_argument("--name", required=True, help="the folder name under pretrained/")
    ship_parser.add_argument("--overwrite", action="store_true", help="replace a shipped folder of that name")
    list_parser = commands.add_parser("list", help="list the shipped models")
    list_parser.add_argument("--write", action="store_true", help="also render pretrained/README.md")
    for sub in (ship_parser, list_parser):
        sub.add_argument("--repo-root", default=None, help="the clone holding pretrained/ (default: this one)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "ship":
        ship(args.result, args.name, repo_root=os.path.abspath(args.repo_root or default_root()),
             overwrite=args.overwrite)
    else:
        root = os.path.abspath(args.repo_root or listed_root())
        for name, record in shipped(root):
            print(f"{name}: {record['cell']} mAP@1000 {100 * record['scores']['map@1000']:.2f}")
        if args.write:
            print(f"wrote {write_index(root)}")
    return 0


if __name__ == "__main__":
    from saeh.cli import run

    sys.exit(run(main))
