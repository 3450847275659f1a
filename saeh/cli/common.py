"""Argument parsing the command-line scripts share: the data flags, and the help text of a flag with a stated default.
The work they start is the library's (`saeh.run_data`, `saeh.run_codes`, `saeh.dumps`, `saeh.retrieval`)."""

import os

from saeh import defaults
from saeh.data.cache import CACHE_DIR_ENV
from saeh.data.files import MEMORY_BUDGET_ENV
from saeh.run_data import AUTO_ON_OFF, DATA_SETTINGS

DATA_DIR_ENV = "SAEH_DATA_DIR"


def stated_default(help_text):
    """`help_text`, which states its flag's default in words, marked so that argparse's ArgumentDefaultsHelpFormatter
    adds no "(default: None)" of its own: that formatter skips help holding '%(default)', and '%(default).0s'
    prints nothing under any formatter."""
    return help_text + "%(default).0s"


def add_unsafe_load_argument(parser):
    """--unsafe-load: the flag of every command that loads a model file."""
    parser.add_argument("--unsafe-load", action="store_true",
                        help="turn Keras safe mode off (allows Lambda layers: only for model files you trust)")


def add_data_arguments(parser, which_data=None, from_run=False):
    """--which-data, --data-dir, --image-size, --protocol, --seed, --validation-size, --select-on-test, --stream,
    --memory-budget, --cache-dir.

    Each help states its default, and reads the same under any help formatter. With `from_run`, flags left out take
    the values of the run.json beside the model (generate_hash.py, search), and the help says so; the training-only
    --select-on-test is left out.
    """
    recorded = "as in the model's run.json, else " if from_run else ""
    dataset_default = "as in the model's run.json" if from_run else which_data
    parser.add_argument("--which-data", default=which_data,
                        help=stated_default("dataset: mnist-sample (bundled), mnist, cifar10, svhn, folder, list, or a "
                                            f"folder path (default: {dataset_default})"))
    parser.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV),
                        help=stated_default(f"where the dataset files are (default: ${DATA_DIR_ENV} if set, else "
                                            f"{recorded}the Keras cache)"))
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help=stated_default(f"resize images of folder/list datasets to this size (default: "
                                            f"{recorded}their own size)"))
    parser.add_argument("--protocol", default=None,
                        help=stated_default(f"retrieval protocol: ssdh, dpsh or dsh (default: {recorded}"
                                            f"{defaults.PROTOCOL})"))
    parser.add_argument("--seed", type=int, default=None,
                        help=stated_default(f"seed of the split and training (default: {recorded}{defaults.SEED})"))
    parser.add_argument("--validation-size", type=float, default=None,
                        help=stated_default("fraction (or count, if > 1) of the training part held out for model "
                                            f"selection (default: {recorded}{defaults.VALIDATION_SIZE})"))
    if not from_run:  # model selection is over once a model is trained: its run.json's value holds
        parser.add_argument("--select-on-test", action="store_true", default=None,
                            help=stated_default("choose the best epoch on the query (test) set, which the original "
                                                "code watched as validation (its whole procedure is --original) "
                                                "(default: off, because it leaks the test set into model "
                                                "selection)"))
    # Not recorded in run.json: streamed and in-memory images are the same pixels, so a run may resume either way.
    parser.add_argument("--stream", choices=tuple(AUTO_ON_OFF), default="auto",
                        help="folder/list datasets: decode the images batch by batch from their files (on), into "
                        "memory (off), or stream only when the decoded images would exceed --memory-budget (auto) "
                        "(default: %(default)s)")
    parser.add_argument("--memory-budget", default=None, metavar="SIZE",
                        help=stated_default("bytes the decoded images may take before --stream auto streams them, "
                                            f"like 8G or 512M (default: ${MEMORY_BUDGET_ENV} if set, else half of the "
                                            "machine's memory)"))
    parser.add_argument("--cache-dir", default=os.environ.get(CACHE_DIR_ENV), metavar="DIR",
                        help=stated_default("read streamed images from their decoded copy in this folder, written "
                                            "there once when missing (`python -m saeh.cli.cache` writes it ahead) "
                                            f"(default: ${CACHE_DIR_ENV} if set, else none: decode every batch)"))


def model_argument(path):
    """A --load-path or --model value as the file it names: a run folder or a shipped model's name becomes its
    model.keras (`saeh.api.hash_model.model_file`); any other path is left to the loader's own checks."""
    from saeh.shipped import shipped_folder

    if path and (os.path.isdir(path) or shipped_folder(path)):
        from saeh.api.hash_model import model_file

        return model_file(path)
    return path


def data_overrides(args):
    """The data flags of `args` parsed with `add_data_arguments(from_run=True)`, as `saeh.run_data.split_of_run`'s
    overrides (None: not given, the run's value stays)."""
    return {name: getattr(args, name, None) for name in DATA_SETTINGS}  # None as well for a flag not offered
