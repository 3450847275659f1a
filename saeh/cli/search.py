"""Search a database of hash codes with a query image; print the results (id, file, label or class name, Hamming
distance) and draw the query and its top-k results as a PNG grid.

A saved index of your own images (`python -m saeh.cli.index`), queried by an image file or by one of its rows:

    python -m saeh.cli.search --index index.npz --image q.jpg --top-k 10 --out grid.png
    python -m saeh.cli.search --index index.npz --query-index 3 --radius 2

The database a model was trained for (its run.json; the data flags override it, e.g. --data-dir where your copy of
the dataset is), its images read from the dataset:

    python -m saeh.cli.search --model runs/RUN/model.keras --image photo.jpg --out grid.png
    python -m saeh.cli.search --model runs/RUN/model.keras --query-index 7 --top-k 20 --out grid.png
    python -m saeh.cli.search --model runs/RUN/model.keras --query-index 7 --rerank 100 --out grid.png

Its codes are read from `--database` (a dump of generate_hash.py), else from the codes/database.npz dumped beside the
model when it covers the database, else encoded on the fly.
With --query-index the query is an image of the query set (of the index, with --index), so results are framed by
relevance (green: shares a label) when labels are known; a query image from a file has no label, so results are
framed neutrally.
With --rerank POOL the search is coarse-to-fine, as DLBHC's retrieval (Lin et al., CVPRW 2015): the POOL nearest
database items by Hamming distance (ties by database index), re-ranked by the Euclidean distance between the deep
features that feed the model's hash layer (DLBHC's fc7; the encoder's features, or a classifier's probabilities,
here), of the query and of each candidate; equal feature distances keep the Hamming order. DLBHC's coarse step keeps
the items within a Hamming radius; a fixed pool size is our choice, since that radius is not given.
"""

import argparse

import numpy as np

from saeh.cli import common
from saeh.errors import SaehError


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.cli.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    database = parser.add_mutually_exclusive_group(required=True)
    database.add_argument("--model", help="a trained model (.keras) with its run.json beside it: search the database "
                                          "it was trained for")
    database.add_argument("--index", help="an index written by python -m saeh.cli.index: search its images")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", help="a query image file (resized to the model's input)")
    query.add_argument("--query-index", type=int,
                       help="the position of a query-set image (with --index: of an image of the index)")
    common.add_data_arguments(parser, from_run=True)
    parser.add_argument("--database",
                        help="database codes written by generate_hash.py (default: the model's codes/database.npz "
                             "when it covers the database, else encode the database set)")
    parser.add_argument("--top-k", type=int, default=10, help="how many results to show (default: %(default)s)")
    parser.add_argument("--radius", type=int, default=None,
                        help="--index only: show only results within this Hamming distance (default: any distance)")
    parser.add_argument("--rerank", type=int, metavar="POOL",
                        help="coarse-to-fine: re-rank the POOL nearest items by Hamming distance by the Euclidean "
                             "distance of the deep features that feed the hash layer; POOL >= --top-k (default: "
                             "Hamming ranking only)")
    parser.add_argument("--backend", choices=("numpy", "faiss", "auto"), default="numpy",
                        help="Hamming search: numpy, faiss (pip install faiss-cpu) or auto (faiss when installed); "
                             "the results are the same (default: %(default)s)")
    parser.add_argument("--out", default=None, help="the PNG grid to write (default: print the results only)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    common.add_unsafe_load_argument(parser)
    return parser


def read_query_image(path, shape):
    """Decode one image file to the model's (1, H, W, C) uint8 input (`saeh.user_images.read_images`)."""
    from saeh.user_images import read_images

    return read_images([path], shape)


def rerank(model, query_image, database_images, ids, distances, top_k):
    """Coarse-to-fine: the Hamming pool `ids` (with their Hamming `distances`, in Hamming order) re-ranked by the
    Euclidean distance between the hash layer's input features of `query_image` (1, H, W, C) and of each candidate,
    a stable sort (equal feature distances keep the Hamming order). Returns the top `top_k` (ids, Hamming
    distances, feature distances)."""
    from saeh.inference import hash_layer_inputs

    query = hash_layer_inputs(model, query_image)[0].astype(np.float64)
    pool = hash_layer_inputs(model, database_images[ids]).astype(np.float64)
    feature_distances = np.sqrt(np.sum(np.square(pool - query), axis=1))
    order = np.argsort(feature_distances, kind="stable")[:top_k]
    return ids[order], distances[order], feature_distances[order]


def relevance(database_labels, ids, query_label):
    """Per result, whether it shares a label with the query; None each when the query's label is unknown."""
    if query_label is None or database_labels is None:
        return [None] * len(ids)
    if database_labels.ndim == 2:
        return [bool(np.any(database_labels[i] & query_label)) for i in ids]
    return [bool(database_labels[i] == query_label) for i in ids]


def draw(query_image, result_images, distances, relevant, args):
    """The grid of the query and its results, when --out is given."""
    from saeh.retrieval import plot_retrieval_grid

    if args.out is None:
        return
    squeeze = (lambda image: image[..., 0]) if query_image.shape[-1] == 1 else (lambda image: image)
    plot_retrieval_grid(squeeze(query_image[0]), [squeeze(image) for image in result_images], distances, relevant,
                        args.out, overwrite=args.overwrite)


def database_codes(model, split, dump=None, log=print):
    """The codes of the database set `split.database` of a `HashModel`, with the images' ids (and files): read from
    `dump` (a file of generate_hash.py) when given, else the codes/database.npz dumped beside the model when it
    covers the database, else encoded now as the model's method makes them (`saeh.run_codes`)."""
    from saeh.codes import load_codes
    from saeh.dumps import with_image_ids
    from saeh.run_codes import run_database_codes, run_state_arrays
    from saeh.run_folder import RunFolder

    if dump:
        database = load_codes(dump)
        if len(database) != len(split.database):
            raise SaehError(f"{dump} holds {len(database)} codes but the database set has "
                            f"{len(split.database)} images; dump it with generate_hash.py for this model")
    else:
        database = model.dumped_database_codes()
        if database is not None and len(database) == len(split.database):
            log(f"database codes: {RunFolder.of_model(model.path).code_path('database')} (dumped beside the model)")
        else:
            folder = RunFolder.of_model(model.path)
            database = run_database_codes(model.keras_model, split, model.settings,
                                          run_state_arrays(folder, model.settings))
    return with_image_ids(database, split.database)


def check_arguments(args):
    if args.top_k <= 0:
        raise SaehError(f"--top-k must be a positive integer; got {args.top_k}")
    if args.rerank is not None and args.rerank < args.top_k:
        raise SaehError(f"--rerank POOL must be at least --top-k ({args.top_k}): the pool is what is re-ranked; "
                        f"got {args.rerank}")
    if args.index and (args.rerank is not None or args.database):
        raise SaehError("--rerank and --database search a model's database (--model); an index holds its own codes")
    if args.radius is not None and not args.index:
        raise SaehError("--radius is for an index (--index); with --model use --top-k")
    if args.radius is not None and args.radius < 0:
        raise SaehError(f"--radius must be a non-negative integer; got {args.radius}")


def search_index(args):
    """--index: query a saved `CodeIndex` by an image file or by one of its own rows."""
    from saeh.api.code_index import CodeIndex
    from saeh.api.hash_model import load_model
    from saeh.user_images import read_images

    index = CodeIndex.load(args.index, backend=args.backend)
    if args.query_index is not None:
        if not 0 <= args.query_index < len(index):
            raise SaehError(f"--query-index must lie in [0, {len(index) - 1}] (the index's rows); got "
                            f"{args.query_index}")
        query_codes = index.codes.hash_bin[args.query_index:args.query_index + 1]
        query_label = None if index.codes.label is None else index.codes.label[args.query_index]
        query_path = None if index.codes.paths is None else index.codes.paths[args.query_index]
    else:
        query_codes, query_label, query_path = None, None, args.image
    model = None
    if query_codes is None:
        path = index.model.get("path")
        if not path:
            raise SaehError(f"{args.index} records no model to encode --image with; query it with --query-index")
        model = load_model(path, safe_mode=not args.unsafe_load)
        query_codes = model.encode(args.image).hash_bin
    (found,) = index.query(query_codes, top_k=args.top_k, radius=args.radius)
    for line in found.lines():
        print(line)
    if not len(found):
        print(f"no image of the index lies within Hamming distance {args.radius}")
    if args.out is not None:
        if found.paths is None or query_path is None:
            raise SaehError(f"{args.index} holds no image files to draw (an index of dumped codes); search the "
                            "model's database with --model to draw the grid")
        shape = model.image_shape if model is not None else tuple(index.model.get("image_shape") or (64, 64, 3))
        draw(read_images([query_path], shape), read_images(found.paths, shape) if len(found) else [],
             found.distances, relevance(index.codes.label, found.rows, query_label), args)
        print(f"wrote {args.out}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    from saeh.atomic import check_writable

    check_arguments(args)
    if args.out is not None:
        check_writable(args.out, args.overwrite)
    if args.index:
        return search_index(args)
    from saeh.api.code_index import CodeIndex
    from saeh.api.hash_model import load_model
    from saeh.inference import encode
    from saeh.run_data import split_of_run

    model = load_model(args.model, safe_mode=not args.unsafe_load)
    data, split = split_of_run(model.path, common.data_overrides(args), stream=args.stream,
                               memory_budget=args.memory_budget, cache_dir=args.cache_dir)
    database = database_codes(model, split, args.database)
    if args.query_index is not None:
        if not 0 <= args.query_index < len(split.query):
            raise SaehError(f"--query-index must lie in [0, {len(split.query) - 1}]; got {args.query_index}")
        query_image = split.query.images[args.query_index:args.query_index + 1]
        query_label = split.query.labels[args.query_index]
    else:
        query_image = read_query_image(args.image, model.image_shape)
        query_label = None
    query_code = (encode(model.keras_model, query_image) > model.threshold).astype(np.uint8)
    index = CodeIndex(database, class_names=data.class_names, model=model, backend=args.backend)
    (found,) = index.query(query_code, top_k=args.top_k if args.rerank is None else args.rerank)
    lines, ids, distances = found.lines("database image"), found.rows, found.distances
    if args.rerank is not None:
        ids, distances, feature_distances = rerank(model.keras_model, query_image, split.database.images, found.rows,
                                                   found.distances, args.top_k)
        line_of = {row: line.split(". ", 1)[1] for row, line in zip(found.rows, lines)}
        lines = [f"{rank:3d}. {line_of[row]}, feature distance {distance:.6g}"
                 for rank, (row, distance) in enumerate(zip(ids, feature_distances), start=1)]
        print(f"re-ranked the {args.rerank} nearest database images by Hamming distance by the Euclidean distance "
              "of their deep features (the hash layer's input)")
    for line in lines:
        print(line)
    draw(query_image, [split.database.images[i] for i in ids], distances,
         relevance(split.database.labels, ids, query_label), args)
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    from saeh.cli import run

    sys.exit(run(main))
