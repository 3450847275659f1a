"""Serve the retrieval page: load one or more trained models (a run folder, a .keras file, a shipped model's name)
with the database of the data each was trained for, or saved indexes (`python -m saeh.cli.index`), once; then browse
what they retrieve in a web browser (`saeh.serve`):

    saeh serve pretrained/saeh_cifar10_32bits pretrained/saeh-minus_cifar10_32bits --data-dir ~/data/cifar10
    python -m saeh.cli.serve runs/RUN --port 8000      (or python -m saeh.serve runs/RUN)

Open the address it prints (http://127.0.0.1:8000 by default). The first source's query set is the page's: a query
is an image of it (by index, by class, at random) or an uploaded image file, and every source answers it with its own
model, side by side. The data flags apply to every model (e.g. --data-dir where your copy of the dataset is). It
listens on 127.0.0.1 (this machine only) unless --host says otherwise.
"""

import argparse

from saeh.cli import common
from saeh.errors import SaehError


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.cli.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a run folder, a .keras file, a shipped model's name (pretrained/NAME) or a saved index "
                             "(.npz); two or more are shown side by side")
    common.add_data_arguments(parser, from_run=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on; 0.0.0.0 opens the page to other machines (default: "
                             "%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=10, help="the page's default number of results (default: "
                                                              "%(default)s)")
    parser.add_argument("--max-upload", default="8M", metavar="SIZE",
                        help="the largest image file an upload may be, like 8M or 512K (default: %(default)s)")
    parser.add_argument("--backend", choices=("numpy", "faiss", "auto"), default="numpy",
                        help="Hamming search: numpy, faiss (pip install faiss-cpu) or auto (default: %(default)s)")
    common.add_unsafe_load_argument(parser)
    return parser


def build_app(args, log=print):
    """The app of parsed `args`: the sources loaded (a missing or corrupt one is a SaehError naming it)."""
    from saeh.data.files import parse_size
    from saeh.serve.app import create_app
    from saeh.serve.sources import load_sources

    if args.top_k <= 0:
        raise SaehError(f"--top-k must be a positive integer; got {args.top_k}")
    if not 0 < args.port < 65536:
        raise SaehError(f"--port must lie in [1, 65535]; got {args.port}")
    max_upload = parse_size(args.max_upload, "--max-upload")
    sources = load_sources(args.sources, log=log, data_overrides=common.data_overrides(args), stream=args.stream,
                           memory_budget=args.memory_budget, cache_dir=args.cache_dir,
                           safe_mode=not args.unsafe_load, backend=args.backend)
    return create_app(sources, top_k=args.top_k, max_upload_bytes=max_upload)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        import starlette  # noqa: F401  (saeh.serve.app's framework)
        import uvicorn
    except ImportError:
        raise SaehError('the retrieval page needs Starlette and uvicorn: pip install -e ".[serve]"') from None
    app = build_app(args)
    print(f"the retrieval page: http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    import sys

    from saeh.cli import run

    sys.exit(run(main))
