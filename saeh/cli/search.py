"""Search a trained model's database with a query image and draw the query and its top-k results as a PNG grid.

    python -m saeh.cli.search --model runs/RUN/model.keras --image photo.jpg --out grid.png
    python -m saeh.cli.search --model runs/RUN/model.keras --query-index 7 --top-k 20 --out grid.png
    python -m saeh.cli.search --model runs/RUN/model.keras --query-index 7 --rerank 100 --out grid.png

The database is the one the model was trained for (its run.json; the data flags override it, e.g. --data-dir where
your copy of the dataset is): its codes are read from `--database` (a dump of generate_hash.py, e.g.
runs/RUN/codes/database.npz) or encoded on the fly, and its images come from the dataset.
With --query-index the query is an image of the query set, so results are framed by relevance (green: shares a
label); a query image from a file has no label, so results are framed neutrally.
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
    parser.add_argument("--model", required=True, help="a trained model (.keras) with its run.json beside it")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", help="a query image file (resized to the model's input)")
    query.add_argument("--query-index", type=int, help="the position of a query-set image")
    common.add_data_arguments(parser, from_run=True)
    parser.add_argument("--database",
                        help="database codes written by generate_hash.py (default: encode the database set)")
    parser.add_argument("--top-k", type=int, default=10, help="how many results to show (default: %(default)s)")
    parser.add_argument("--rerank", type=int, metavar="POOL",
                        help="coarse-to-fine: re-rank the POOL nearest items by Hamming distance by the Euclidean "
                             "distance of the deep features that feed the hash layer; POOL >= --top-k (default: "
                             "Hamming ranking only)")
    parser.add_argument("--backend", choices=("numpy", "faiss", "auto"), default="numpy",
                        help="Hamming search: numpy, faiss (pip install faiss-cpu) or auto (faiss when installed); "
                             "the results are the same (default: %(default)s)")
    parser.add_argument("--out", required=True, help="the PNG grid to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    parser.add_argument("--unsafe-load", action="store_true", help="turn Keras safe mode off (trusted files only)")
    return parser


def read_query_image(path, shape):
    """Decode one image file to the model's (H, W, C) uint8 input."""
    from saeh.data import decode_images, resize_images

    image = decode_images([path], source=path)
    if image.shape[-1] != shape[-1]:
        image = image.mean(axis=-1, keepdims=True).astype(np.uint8) if shape[-1] == 1 else np.repeat(image, 3, -1)
    if image.shape[1:3] != shape[:2]:
        image = resize_images(image, shape[:2])
    return image


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


def main(argv=None):
    args = build_parser().parse_args(argv)
    from saeh.atomic import check_writable
    from saeh.codes import load_codes
    from saeh.inference import encode, hash_threshold, image_shape, load_hash_model
    from saeh.retrieval import HammingIndex, plot_retrieval_grid
    from saeh.run_codes import method_of_run, run_database_codes, run_state_arrays
    from saeh.run_data import split_of_run

    if args.top_k <= 0:
        raise SaehError(f"--top-k must be a positive integer; got {args.top_k}")
    if args.rerank is not None and args.rerank < args.top_k:
        raise SaehError(f"--rerank POOL must be at least --top-k ({args.top_k}): the pool is what is re-ranked; "
                        f"got {args.rerank}")
    check_writable(args.out, args.overwrite)
    from saeh.run_folder import RunFolder, model_file

    args.model = model_file(args.model)
    model = load_hash_model(args.model, safe_mode=not args.unsafe_load)
    _, split = split_of_run(args.model, common.data_overrides(args), stream=args.stream,
                            memory_budget=args.memory_budget, cache_dir=args.cache_dir)
    folder = RunFolder.of_model(args.model)
    recorded = folder.settings()
    method = method_of_run(recorded)
    database = load_codes(args.database) if args.database else run_database_codes(
        model, split, recorded, run_state_arrays(folder, recorded))
    if len(database) != len(split.database):
        raise SaehError(f"{args.database} holds {len(database)} codes but the database set has "
                        f"{len(split.database)} images; dump it with generate_hash.py for this model")
    if args.query_index is not None:
        if not 0 <= args.query_index < len(split.query):
            raise SaehError(f"--query-index must lie in [0, {len(split.query) - 1}]; got {args.query_index}")
        query_image = split.query.images[args.query_index:args.query_index + 1]
        query_label = split.query.labels[args.query_index]
    else:
        query_image = read_query_image(args.image, image_shape(model))
        query_label = None
    query_code = (encode(model, query_image) > hash_threshold(model, method)).astype(np.uint8)
    hamming = HammingIndex(database.hash_bin, backend=args.backend)
    ids, distances = hamming.search(query_code, args.top_k if args.rerank is None else args.rerank)
    ids, distances = ids[0], distances[0]
    feature_distances = None
    if args.rerank is not None:
        ids, distances, feature_distances = rerank(model, query_image, split.database.images, ids, distances,
                                                   args.top_k)
        print(f"re-ranked the {args.rerank} nearest database images by Hamming distance by the Euclidean distance "
              "of their deep features (the hash layer's input)")
    if query_label is None:
        relevant = [None] * len(ids)
    elif split.database.labels.ndim == 2:
        relevant = [bool(np.any(split.database.labels[i] & query_label)) for i in ids]
    else:
        relevant = [bool(split.database.labels[i] == query_label) for i in ids]
    squeeze = (lambda image: image[..., 0]) if query_image.shape[-1] == 1 else (lambda image: image)
    plot_retrieval_grid(squeeze(query_image[0]), [squeeze(split.database.images[i]) for i in ids], distances,
                        relevant, args.out, overwrite=args.overwrite)
    for rank, (index, distance) in enumerate(zip(ids, distances), start=1):
        line = f"{rank:3d}. database image {index} at Hamming distance {distance}"
        if feature_distances is not None:
            line += f", feature distance {feature_distances[rank - 1]:.6g}"
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    from saeh.cli import run

    sys.exit(run(main))
