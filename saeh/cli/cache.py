"""`python -m saeh.cli.cache`: decode a folder or list dataset once into the cache file that streamed training
reads from (`saeh.data.cache`), ahead of training."""

import argparse
import os
import sys

from saeh.data.cache import CACHE_DIR_ENV
from saeh.errors import SaehError


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m saeh.cli.cache",
        description="Decode a folder or list dataset once into a cache file that streamed training reads from.")
    parser.add_argument("--which-data", default="folder", help="folder, list, or a folder path (default: folder)")
    parser.add_argument("--data-dir", help="the folder holding the data (needed by folder and list)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="resize the images to this size, as training will (default: their own size)")
    parser.add_argument("--cache-dir", default=os.environ.get(CACHE_DIR_ENV),
                        help=f"where the cache file goes (default: ${CACHE_DIR_ENV})")
    return parser


def main(argv=None):
    from saeh.data import load_dataset

    args = build_parser().parse_args(argv)
    if not args.cache_dir:
        raise SaehError(f"no cache folder given; pass --cache-dir or set ${CACHE_DIR_ENV}")
    data = load_dataset(args.which_data, args.data_dir, tuple(args.image_size) if args.image_size else None,
                        stream=True, cache_dir=args.cache_dir, log=print)
    print(f"{data.name}: {len(data.train)} training and {len(data.test)} test images of {data.image_shape} in "
          f"{data.train.images.cache_file}")
    return 0


if __name__ == "__main__":
    from saeh.cli import run

    sys.exit(run(main))
