"""Code dumps: a run's query and database codes encoded (`saeh.run_codes`) and written as `.mat` and `.npz`
files, or as the original procedure's test-set dump."""

import contextlib
import dataclasses
import os

import numpy as np

from saeh.atomic import check_writable, scratch_path
from saeh.run_codes import method_of_run, run_code_sets
from saeh.run_folder import original_dump_name

CODE_SETS = ("query", "database")
CODE_FORMATS = (".mat", ".npz")


def code_paths(out_dir, names=CODE_SETS, formats=CODE_FORMATS):
    """Every file `write_codes` writes into `out_dir`."""
    return [os.path.join(out_dir, f"{name}{suffix}") for name in names for suffix in formats]


def check_codes_writable(out_dir, overwrite, names=CODE_SETS, formats=CODE_FORMATS):
    """Refuse before any work (and before any file is written) when a dump exists and `overwrite` is false, so that
    old and new dumps are never mixed in one folder."""
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


@contextlib.contextmanager
def streamed_outputs(model, split, out_dir):
    """{set: (N, bits) float32 array} for each code set whose images are left in their files: a memory-mapped
    temporary .npy in `out_dir` that the encoder fills chunk by chunk, deleted when the block ends (the dumps are
    converted from it first)."""
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


def with_image_ids(codes, image_set):
    """`codes` of `image_set` with the images' ids (row numbers in the set) and, for images that came from files,
    their paths (for images that did not, the paths `codes` may already hold stay)."""
    paths = codes.paths if image_set.paths is None else image_set.paths
    return dataclasses.replace(codes, ids=np.arange(len(codes), dtype=np.int64), paths=paths)


def dump_run_codes(model, split, settings, out_dir, overwrite=False, batch_size=None, log=print, state_arrays=None):
    """Encode and write the codes of a run, as its procedure (`settings["procedure"]`) dumps them, with its
    method's threshold (and, for an asymmetric method, its learned database codes: `run_code_sets`).

    Default procedure: the query and database sets, each as `.mat` and `.npz` in `out_dir`. Original procedure: the
    test (query) set only, in the original script's file name and types, in `out_dir`; it is then both the queries
    and the database of the scores (protocol dsh). The default dumps carry ids and paths (`with_image_ids`).
    Returns ({"query": Codes, "database": Codes}, {set: path}).
    """
    from saeh.codes import save_original_dump
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_bits

    batch_size = batch_size or ENCODE_BATCH_SIZE
    if settings.get("procedure") != "original":
        with streamed_outputs(model, split, out_dir) as outs:
            codes = run_code_sets(model, split, settings, state_arrays, batch_size, outs)
            codes = {name: with_image_ids(set_codes, getattr(split, name)) for name, set_codes in codes.items()}
            paths = write_codes(codes, out_dir, overwrite=overwrite, log=log)
            # The real outputs of a streamed set are still mapped from the scratch file: copy them (N x bits, small).
            codes = {name: dataclasses.replace(set_codes, hash_org=np.array(set_codes.hash_org))
                     for name, set_codes in codes.items()}
        return codes, paths
    path = os.path.join(out_dir, original_dump_name(split.dataset, hash_bits(model)))
    check_writable(path, overwrite)
    test = codes_for(model, split.query, batch_size, method_of_run(settings), progress="auto")
    save_original_dump(path, test, original_label_layout(test.label, split.dataset), overwrite=overwrite)
    log(f"wrote the test set's codes ({len(test)} x {test.bits} bits) to {path}, as the original generate_hash.py")
    return {"query": test, "database": test}, {"query": path, "database": path}
