"""Pieces the command-line scripts share: data flags, loading a split, writing and scoring codes."""

import contextlib
import dataclasses
import os

import numpy as np

from saeh import defaults
from saeh.data.cache import CACHE_DIR_ENV
from saeh.data.files import MEMORY_BUDGET_ENV
from saeh.errors import SaehError

DATA_DIR_ENV = "SAEH_DATA_DIR"


def stated_default(help_text):
    """`help_text`, which states its flag's default in words, marked so that argparse's ArgumentDefaultsHelpFormatter
    adds no "(default: None)" of its own: that formatter skips help holding '%(default)', and '%(default).0s'
    prints nothing under any formatter."""
    return help_text + "%(default).0s"


# --stream and --jit-compile: the word on the command line, and the value the library takes ("auto" lets it choose)
AUTO_ON_OFF = {"auto": "auto", "on": True, "off": False}


def add_data_arguments(parser, which_data=None, from_run=False):
    """--which-data, --data-dir, --image-size, --protocol, --seed, --validation-size, --select-on-test, --stream,
    --memory-budget, --cache-dir.

    Each help states its default, and reads the same under any help formatter. With `from_run`, flags left out take
    the values of the run.json beside the model (generate_hash.py), and the help says so.
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
    parser.add_argument("--select-on-test", action="store_true", default=None,
                        help=stated_default("choose the best epoch on the query (test) set, which the original code "
                                            "watched as validation (its whole procedure is --original) (default: "
                                            f"{recorded}off, because it leaks the test set into model selection)"))
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


def load_split(which_data, data_dir=None, image_size=None, protocol=defaults.PROTOCOL, seed=defaults.SEED,
               validation_size=defaults.VALIDATION_SIZE, select_on_test=False, stream="auto", memory_budget=None,
               log=print, cache_dir=None):
    """Load a dataset and apply a protocol: (LabelledData, Split). `stream`: "auto", "on", "off" (the --stream
    values) or "auto", True, False (`load_dataset`'s); `memory_budget`, `cache_dir` as for `load_dataset`."""
    from saeh.data import load_dataset, make_split

    if not which_data:
        raise SaehError("no dataset given; pass --which-data")
    data = load_dataset(which_data, data_dir=data_dir, image_size=tuple(image_size) if image_size else None,
                        stream=AUTO_ON_OFF.get(stream, stream), memory_budget=memory_budget, log=log,
                        cache_dir=cache_dir)
    if validation_size is not None and validation_size >= 1 and float(validation_size).is_integer():
        validation_size = int(validation_size)  # a count of images rather than a fraction
    split = make_split(data, protocol=protocol, seed=seed, validation_size=validation_size,
                       select_on_test=bool(select_on_test))
    return data, split


DATA_SETTINGS = ("which_data", "data_dir", "image_size", "protocol", "seed", "validation_size", "select_on_test")


def run_settings(model_path):
    """The settings recorded in the run.json of the run folder a trained model belongs to, or {}."""
    from saeh.run_folder import RunFolder

    return RunFolder.of_model(model_path).settings()


def split_of_run(model_path, overrides=None, stream="auto", memory_budget=None, cache_dir=None):
    """The (data, split) a model was trained for: the data settings of its run.json, where `overrides` (flags the
    user gave; None means not given) do not replace them. `stream`, `memory_budget`, `cache_dir`: as for
    `load_split`."""
    recorded = run_settings(model_path)
    settings = {name: recorded.get(name) for name in DATA_SETTINGS}
    settings.update({name: value for name, value in (overrides or {}).items() if value is not None})
    if not settings["which_data"]:
        raise SaehError(f"no run.json beside {model_path} says which data it was trained on; pass --which-data")
    return load_split(
        settings["which_data"], settings["data_dir"], settings["image_size"], settings["protocol"] or defaults.PROTOCOL,
        defaults.SEED if settings["seed"] is None else settings["seed"],
        defaults.VALIDATION_SIZE if settings["validation_size"] is None else settings["validation_size"],
        bool(settings["select_on_test"]), stream=stream, memory_budget=memory_budget, cache_dir=cache_dir)


CODE_SETS = ("query", "database")
CODE_FORMATS = (".mat", ".npz")


def code_paths(out_dir, names=CODE_SETS, formats=CODE_FORMATS):
    """Every file `write_codes` writes into `out_dir`."""
    return [os.path.join(out_dir, f"{name}{suffix}") for name in names for suffix in formats]


def check_codes_writable(out_dir, overwrite, names=CODE_SETS, formats=CODE_FORMATS):
    """Refuse before any work (and before any file is written) when a dump exists and `overwrite` is false, so that
    old and new dumps are never mixed in one folder."""
    from saeh.atomic import check_writable

    for path in code_paths(out_dir, names, formats):
        check_writable(path, overwrite)


def write_codes(codes_by_set, out_dir, overwrite=False, formats=CODE_FORMATS, log=print):
    """Write each set's codes as `<out_dir>/<set>.mat` and `.npz`; return {set: npz path}."""
    from saeh.codes import save_codes

    check_codes_writable(out_dir, overwrite, tuple(codes_by_set), formats)
    paths = {}
    for name, codes in codes_by_set.items():
        for suffix in formats:
            path = os.path.join(out_dir, f"{name}{suffix}")
            save_codes(path, codes, overwrite=overwrite)
            paths[name] = path
        log(f"wrote {name} codes ({len(codes)} x {codes.bits} bits) to {os.path.join(out_dir, name)}"
            f".{{{','.join(s.lstrip('.') for s in formats)}}}")
    return paths


# Datasets whose Keras loader gives single labels as (N,) (MATLAB reads them as a 1 x N row); the others' loaders
# (CIFAR-10, SVHN) give (N, 1). The original's dump wrote the labels as its loader gave them.
ROW_LABEL_DATASETS = ("mnist", "mnist-sample")


def original_label_layout(labels, dataset):
    """`labels` ((N,) class ids or (N, C) multi-hot) in the shape the original's dataset loader gave them, and in
    Keras's uint8 where the class ids fit."""
    if labels.ndim == 2:
        return labels
    if labels.size and labels.max() < 256:
        labels = labels.astype(np.uint8)
    return labels if dataset in ROW_LABEL_DATASETS else labels[:, None]


def method_of_run(settings):
    """The registered method a run's settings name, or None (a model file without run.json)."""
    name = settings.get("method")
    if not name:
        return None
    from saeh.registry import get

    return get(name)


def run_state_arrays(folder, settings):
    """The method state beside a run's model (method_state.npz) when its method keeps one, else None."""
    method = method_of_run(settings)
    if method is None or getattr(method, "state", None) is None or not os.path.exists(folder.method_state):
        return None
    from saeh.method_state import load_arrays

    return load_arrays(folder.method_state)


def learned_database_rows(method, split):
    """The database row of each code an asymmetric `method` learns (its training images, then its validation
    images), once it is checked that together they are the whole database.

    The rule: an asymmetric method's database holds its learned codes only, never a mix of learned codes and network
    codes (the network's codes of the database images it did not learn sit near the queries' and swamp the
    ranking). ADSH learns a code for every image of its database, which is its training set; here it learns one
    for every training and validation image of the run (a validation image's code comes from its labels alone, as
    for a training image not sampled yet: `baselines.adsh`). So the database must hold those images and no other:
    protocol ssdh (database = the training set = training + validation images). Under dpsh (59,000 database images,
    5,500 of them training or validation) and dsh (the test set) a SaehError says so, before training
    (`hash_su_ae_train.py`) and when the codes are made. The validation set must not be the query set
    (select_on_test, --original): the queries' labels would then make codes."""
    name, protocol = method.name, split.protocol
    if split.validation_is_query:
        raise SaehError(f"method {name!r} learns a database code for every validation image from its labels; with "
                        "the query set as the validation set (select_on_test, --original) it would learn the "
                        "queries' labels: use a validation set carved from the training images (the default)")
    parts = []
    for what, images, rows in (("training", split.train, split.train_in_database),
                               ("validation", split.validation, split.validation_in_database)):
        if rows is None or len(rows) != len(images):
            raise SaehError(f"method {name!r} learns the database codes of its {what} images, but this split does "
                            f"not say where its {len(images)} {what} images are in the database")
        parts.append(np.asarray(rows, np.int64))
    rows = np.concatenate(parts)
    covered = np.zeros(len(split.database), bool)
    covered[rows[rows >= 0]] = True
    missing = int(np.count_nonzero(~covered))
    if missing:
        raise SaehError(
            f"method {name!r} is asymmetric: its database codes are the codes it learns for its training and "
            f"validation images, but under protocol {protocol!r} {missing} of the {len(split.database)} database "
            "images are neither, and their network codes would be mixed with the learned ones. Use --protocol ssdh, "
            "whose database is the training set (training + validation images), or a symmetric method")
    return rows


def run_database_codes(model, split, settings, state_arrays=None, batch_size=None, out=None, encoder=None):
    """The database codes of a run: the network's codes at its method's threshold; for an asymmetric method, the
    codes it learned (`state_arrays`, its state) and only those: each database image takes the learned code of the
    training or validation image it is (`learned_database_rows`, which refuses a database holding any other image;
    the network encodes no database image). `out` and `encoder`: as for `saeh.inference.encode`."""
    from saeh.codes import make_codes
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_threshold

    batch_size = batch_size or ENCODE_BATCH_SIZE
    method = method_of_run(settings)
    if method is None or not getattr(method, "asymmetric", False):
        return codes_for(model, split.database, batch_size, method, out=out, encoder=encoder)
    if state_arrays is None:
        raise SaehError(f"method {method.name!r} learns its database codes, but its state was not found (the run "
                        "folder's method_state.npz)")
    rows = learned_database_rows(method, split)
    learned = np.asarray(method.database_codes(state_arrays), np.float32)
    if len(learned) != len(rows):
        raise SaehError(f"the run's learned database codes cover {len(learned)} images but this split has "
                        f"{len(split.train)} training and {len(split.validation)} validation images: use the data "
                        "settings the model was trained with (a run whose codes cover its training images alone "
                        "predates the codes of the validation images: train it again)")
    codes = np.empty((len(split.database), learned.shape[1]), np.float32)
    inside = rows >= 0
    codes[rows[inside]] = learned[inside]
    return make_codes(codes, split.database.labels, hash_threshold(model, method))


def run_code_sets(model, split, settings, state_arrays=None, batch_size=None, outs=None):
    """{"query": Codes, "database": Codes} of a run (`run_database_codes` for the database). `outs`: optional
    {set: array} to encode a set into (see `saeh.inference.encode`)."""
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_encoder

    batch_size = batch_size or ENCODE_BATCH_SIZE
    outs = outs or {}
    encoder = hash_encoder(model)  # one for both sets: each new one traces its prediction again
    return {"query": codes_for(model, split.query, batch_size, method_of_run(settings), out=outs.get("query"),
                               encoder=encoder),
            "database": run_database_codes(model, split, settings, state_arrays, batch_size, out=outs.get("database"),
                                           encoder=encoder)}


@contextlib.contextmanager
def streamed_outputs(model, split, out_dir):
    """{set: (N, bits) float32 array} for each code set whose images are left in their files: a memory-mapped
    temporary .npy in `out_dir` that the encoder fills chunk by chunk, deleted when the block ends (the dumps are
    converted from it first)."""
    from saeh.atomic import scratch_path
    from saeh.data import ImageFiles
    from saeh.inference import hash_bits

    with contextlib.ExitStack() as stack:
        outs = {}
        for name in CODE_SETS:
            images = getattr(split, name).images
            if isinstance(images, ImageFiles):
                path = stack.enter_context(scratch_path(out_dir, f"{name}_outputs.npy"))
                outs[name] = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                                       shape=(len(images), hash_bits(model)))
        yield outs
        outs.clear()  # drop the maps before their files are deleted


def dump_run_codes(model, split, settings, out_dir, overwrite=False, batch_size=None, log=print, state_arrays=None):
    """Encode and write the codes of a run, as its procedure (`settings["procedure"]`) dumps them, with its
    method's threshold (and, for an asymmetric method, its learned database codes: `run_code_sets`).

    Default procedure: the query and database sets, each as `.mat` and `.npz` in `out_dir`. Original procedure: the
    test (query) set only, in the original script's file name and types, in `out_dir`; it is then both the queries
    and the database of the scores (protocol dsh). Returns ({"query": Codes, "database": Codes}, {set: path}).
    """
    from saeh.codes import save_original_dump
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_bits
    from saeh.run_folder import original_dump_name

    batch_size = batch_size or ENCODE_BATCH_SIZE
    if settings.get("procedure") != "original":
        with streamed_outputs(model, split, out_dir) as outs:
            codes = run_code_sets(model, split, settings, state_arrays, batch_size, outs)
            paths = write_codes(codes, out_dir, overwrite=overwrite, log=log)
            # The real outputs of a streamed set are still mapped from the scratch file: copy them (N x bits, small).
            codes = {name: dataclasses.replace(set_codes, hash_org=np.array(set_codes.hash_org))
                     for name, set_codes in codes.items()}
        return codes, paths
    from saeh.atomic import check_writable

    path = os.path.join(out_dir, original_dump_name(split.dataset, hash_bits(model)))
    check_writable(path, overwrite)
    test = codes_for(model, split.query, batch_size, method_of_run(settings))
    save_original_dump(path, test, original_label_layout(test.label, split.dataset), overwrite=overwrite)
    log(f"wrote the test set's codes ({len(test)} x {test.bits} bits) to {path}, as the original generate_hash.py")
    return {"query": test, "database": test}, {"query": path, "database": path}


def score(query, database, top_k=defaults.TOP_K, radius=defaults.RADIUS):
    """mAP@top_k, precision within Hamming radius `radius` (and the fraction of empty balls), and mAP over the whole
    ranked database (`map@all`, the measure DPSH's and ADSH's papers report) of query codes against database codes."""
    from saeh.retrieval import map_at_k, precision_within_radius

    pair = (query.hash_bin, database.hash_bin, query.label, database.label)
    within = precision_within_radius(*pair, radius=radius)
    return {f"map@{top_k}": map_at_k(*pair, k=top_k), f"precision@r{radius}": within.precision,
            f"empty@r{radius}": within.empty_fraction, "map@all": map_at_k(*pair, k=len(database))}
