"""The `saeh` console command installed with the package: one subcommand per script or module, with the same flags.

    saeh train ...       = python hash_su_ae_train.py ...
    saeh generate ...    = python generate_hash.py ...
    saeh evaluate ...    = python evaluate.py ...
    saeh search ...      = python -m saeh.cli.search ...
    saeh index ...       = python -m saeh.cli.index ...
    saeh serve ...       = python -m saeh.cli.serve ...
    saeh reproduce ...   = python -m saeh.reproduce ...
    saeh presets         = python -m saeh.presets
    saeh methods         = python -m baselines
    saeh pretrained ...  = python -m saeh.pretrained ...
    saeh cache ...       = python -m saeh.cli.cache ...
"""

import difflib
import importlib
import inspect
import sys

from saeh.cli import run
from saeh.errors import SaehError

# name: (module with main, what it does). main takes argv, or nothing (a listing).
SUBCOMMANDS = {
    "train": ("saeh.cli.train", "train a method, dump and score its codes (hash_su_ae_train.py)"),
    "generate": ("saeh.cli.generate", "dump a trained model's query and database codes (generate_hash.py)"),
    "evaluate": ("saeh.cli.evaluate", "score code dumps: mAP, precision in a Hamming radius, curves (evaluate.py)"),
    "search": ("saeh.cli.search", "query a model's database or a saved index with an image, draw the results"),
    "index": ("saeh.cli.index", "index a folder of images (or the dumped database codes) into a saved index"),
    "serve": ("saeh.cli.serve", "browse what models retrieve in a web page: query, upload, compare side by side"),
    "reproduce": ("saeh.reproduce.cli", "run the result tables' cells and render RESULTS.md"),
    "presets": ("saeh.presets", "list the presets and how each departs from the paper"),
    "methods": ("baselines.__main__", "list the registered hashing methods and their hyperparameters"),
    "pretrained": ("saeh.pretrained", "list (or ship) the trained models of pretrained/"),
    "cache": ("saeh.cli.cache", "write the decoded copy of an image dataset ahead of streaming it"),
}
PROGRAM = "saeh"


def usage():
    width = max(map(len, SUBCOMMANDS))
    return "\n".join([f"usage: {PROGRAM} COMMAND [flags]   ({PROGRAM} COMMAND --help for its flags)", "", "commands:"]
                     + [f"  {name:{width}s}  {text}" for name, (_, text) in SUBCOMMANDS.items()])


def subcommand(name):
    """The main function of subcommand `name`, called with its argv."""
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
        raise SaehError(f"unknown command {name!r}" + (f" (did you mean {close[0]}?)" if close else "")
                        + f"; expected one of {', '.join(SUBCOMMANDS)}")
    main = importlib.import_module(SUBCOMMANDS[name][0]).main
    if inspect.signature(main).parameters:
        return main

    def listing(argv):
        if argv:
            raise SaehError(f"{PROGRAM} {name} takes no arguments; got {' '.join(argv)}")
        return main()

    return listing


def main(argv=None):
    """The `saeh` console command (setup.py's console_scripts): dispatch to a subcommand; its errors are one line,
    `saeh COMMAND: error: ...`, as the scripts print theirs."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    program = sys.argv
    sys.argv = [f"{PROGRAM} {name}" if name in SUBCOMMANDS else PROGRAM, *rest]  # error lines are named after it
    try:
        return run(lambda arguments: subcommand(name)(arguments), rest)
    finally:
        sys.argv = program


if __name__ == "__main__":
    sys.exit(main())
