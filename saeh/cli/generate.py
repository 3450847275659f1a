"""Dump the codes of a trained model: per set (query, database) a `.mat` with the original's fields `hash_org`,
`hash_bin` and `label`, and an `.npz` with the same arrays. A model of an `--original` run gets the original's
dump instead: the test set only, in the original's file name and types, in its run folder.

The data settings (dataset, protocol, seed, ...) default to those in the `run.json` beside the model, so the codes
cover exactly the query and database sets the model was trained for.
"""

import argparse

from saeh.cli import common
from saeh.errors import SaehError


def build_parser(load_path):
    parser = argparse.ArgumentParser(prog="generate_hash.py",
                                     description="Encode the query and database sets with a trained model.")
    where_set = "load_path at the top of generate_hash.py"
    parser.add_argument("--load-path", default=load_path,
                        help=f"the trained model (.keras, or its run folder) (default: %(default)s, from {where_set})"
                        if load_path else f"the trained model (.keras, or its run folder); needed unless {where_set} "
                        "names one")
    common.add_data_arguments(parser, from_run=True)
    parser.add_argument("--out", default=None,
                        help="output directory (default: the run folder's codes/, or the run folder itself for an "
                        "--original run)")
    parser.add_argument("--batch-size", type=int, default=1024, help="images per encoding batch (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing dumps")
    common.add_unsafe_load_argument(parser)
    return parser


def main(argv=None, load_path=None):
    args = build_parser(load_path).parse_args(argv)
    if not args.load_path:
        raise SaehError("no model given: set load_path at the top of generate_hash.py or pass --load-path")
    from saeh.dumps import check_codes_writable, dump_run_codes
    from saeh.inference import hash_bits, load_hash_model
    from saeh.run_codes import run_state_arrays
    from saeh.run_data import split_of_run
    from saeh.run_folder import RunFolder

    args.load_path = common.model_argument(args.load_path)
    folder = RunFolder.of_model(args.load_path)
    recorded = folder.settings()
    out_dir = args.out or folder.dump_directory(recorded.get("procedure"))
    model = load_hash_model(args.load_path, safe_mode=not args.unsafe_load)
    if recorded.get("procedure") != "original":
        check_codes_writable(out_dir, args.overwrite)
    data, split = split_of_run(args.load_path, common.data_overrides(args), stream=args.stream,
                               memory_budget=args.memory_budget, cache_dir=args.cache_dir)
    bits = recorded.get("hash_bits")
    if bits is not None and bits != hash_bits(model):
        raise SaehError(f"{args.load_path} has {hash_bits(model)} hash bits but its run.json says {bits}")
    print(split.describe())
    dump_run_codes(model, split, recorded, out_dir, overwrite=args.overwrite, batch_size=args.batch_size,
                   state_arrays=run_state_arrays(folder, recorded))
    return 0
