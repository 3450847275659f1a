"""Index a folder of images (flat, or one sub-folder per class) with a trained model, once, into a saved index that
`python -m saeh.cli.search --index` queries:

    python -m saeh.cli.index --model runs/RUN --images photos/ --out index.npz
    python -m saeh.cli.index --model runs/RUN --out database.npz    # the database codes dumped beside it

The index holds each image's code, id (its row), file and label (a class folder's name; none for a flat folder),
and the model's identity. Without --images it holds the database codes already dumped beside the model
(codes/database.npz, written by training or generate_hash.py), used as they are.
"""

import argparse

from saeh.cli import common
from saeh.errors import SaehError


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.cli.index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="a run folder, a .keras file, or a shipped model's name (pretrained/NAME)")
    parser.add_argument("--images",
                        help="a folder of images (flat, or one sub-folder per class) or one image file to index "
                             "(default: the database codes dumped beside the model)")
    parser.add_argument("--out", required=True, help="the index file to write (.npz)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index file")
    common.add_unsafe_load_argument(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from saeh.api.code_index import CodeIndex
    from saeh.api.hash_model import load_model
    from saeh.atomic import check_writable

    if not args.out.endswith(".npz"):
        raise SaehError(f"--out {args.out}: expected a file name ending in .npz")
    check_writable(args.out, args.overwrite)
    model = load_model(args.model, safe_mode=not args.unsafe_load)
    if args.images:
        index = CodeIndex.from_images(model, args.images)
        source = args.images
    else:
        index = CodeIndex.from_run(model)
        source = "the database codes dumped beside the model"
    index.save(args.out, overwrite=args.overwrite)
    labels = ("no labels" if index.codes.label is None
              else f"{len(index.class_names)} classes" if index.class_names else "labels")
    print(f"indexed {len(index)} images of {source} ({index.bits} bits, {labels}) with {model.path}: wrote "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    import sys

    from saeh.cli import run

    sys.exit(run(main))
