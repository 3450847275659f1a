"""ITQ and KSH on full MNIST: mAP@1000 and fit/encode times.

Protocol: features are raw pixels scaled to [0, 1] (784 dims). Queries are the 10,000 test images, the database
the 60,000 training images. ITQ is fitted on all 60,000 training images; KSH draws its 300 anchors and its 2,000
labelled samples (seeded) from the training images and uses only those 2,000 labels (its kernel width and kernel
mean use all training images, as the authors' code does). mAP@1000: Hamming ranking with ties broken by database
index; AP normalised by the relevant items within the top 1000; relevant = same digit.

    python benchmarks/shallow_mnist.py [path/to/mnist.npz] [--bits 32] [--seed 0] [--output results.json]

The path defaults to $SAEH_MNIST_NPZ, then to <repo>/../shared/datasets/mnist.npz. Takes about 40 s with
OPENBLAS_NUM_THREADS=1 and up to 2.5 min on a busy 2-core machine with threaded BLAS (many small BLAS calls in
KSH's refinement suffer from thread contention). Measured (seed 0, 32 bits): ITQ 0.7684, KSH 0.8712 (2 BLAS
threads) / 0.8777 (1 thread).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from baselines.itq import ITQ  # noqa: E402
from baselines.ksh import KSH  # noqa: E402
from baselines.shallow import features_from_images  # noqa: E402
from saeh.atomic import write_json  # noqa: E402


def map_at_k_by_index(query_codes, query_labels, database_codes, database_labels, k=1000, chunk=500):
    """mAP@k over Hamming ranking, ties broken by database index (stable), AP normalised within the top k."""
    bits = query_codes.shape[1]
    database_signs = database_codes.astype(np.float32) * 2 - 1
    n_database = len(database_codes)
    positions = np.arange(1, k + 1)
    scores = []
    for start in range(0, len(query_codes), chunk):
        query_signs = query_codes[start : start + chunk].astype(np.float32) * 2 - 1
        distances = np.rint((bits - query_signs @ database_signs.T) / 2).astype(np.int64)
        keys = distances * n_database + np.arange(n_database)  # unique keys: distance first, then index
        top = np.argpartition(keys, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
        relevant = database_labels[top] == query_labels[start : start + chunk, None]
        hits = np.cumsum(relevant, axis=1)
        totals = relevant.sum(axis=1)
        precision_sums = (relevant * hits / positions).sum(axis=1)
        scores.append(np.where(totals > 0, precision_sums / np.maximum(totals, 1), 0.0))
    return float(np.concatenate(scores).mean())


def evaluator_maps(query_codes, query_labels, database_codes, database_labels):
    """The package evaluator's mAP@1000 (ties by index, and tie-averaged) if it is available, else None."""
    try:
        from saeh.retrieval.metrics import map_at_k
    except ImportError:
        return None
    arguments = (query_codes, database_codes, query_labels, database_labels)
    return {
        "ties_by_index": map_at_k(*arguments, k=1000, ties="index"),
        "ties_averaged": map_at_k(*arguments, k=1000, ties="average"),
    }


def run(hasher, train_x, train_y, test_x, test_y, fit_labels):
    started = time.perf_counter()
    hasher.fit(train_x, fit_labels)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    database_codes = hasher.encode(train_x)
    query_codes = hasher.encode(test_x)
    encode_seconds = time.perf_counter() - started
    result = {
        "method": hasher.name,
        "config": hasher.get_config(),
        "fit_seconds": round(fit_seconds, 2),
        "encode_70000_seconds": round(encode_seconds, 2),
        "map_at_1000": map_at_k_by_index(query_codes, test_y, database_codes, train_y, k=1000),
        "bit_balance": [round(float(value), 3) for value in database_codes.mean(axis=0)],
    }
    evaluator = evaluator_maps(query_codes, test_y, database_codes, train_y)
    if evaluator is not None:
        result["evaluator_map_at_1000"] = evaluator
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("SAEH_MNIST_NPZ") or os.path.join(os.path.dirname(REPO), "shared", "datasets", "mnist.npz")
    parser.add_argument("path", nargs="?", default=default, help="mnist.npz (Keras layout)")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="itq,ksh", help="comma-separated subset of itq,ksh")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.path):
        print(f"mnist.npz not found at {args.path}; pass its path or set SAEH_MNIST_NPZ", file=sys.stderr)
        return 2
    with np.load(args.path) as archive:
        train_x, train_y = features_from_images(archive["x_train"]), archive["y_train"].astype(np.int64)
        test_x, test_y = features_from_images(archive["x_test"]), archive["y_test"].astype(np.int64)
    results = []
    for name in args.methods.split(","):
        if name == "itq":
            hasher, fit_labels = ITQ(hash_bits=args.bits, seed=args.seed), None
        elif name == "ksh":
            hasher, fit_labels = KSH(hash_bits=args.bits, seed=args.seed), train_y
        else:
            parser.error(f"unknown method {name!r}; choose from itq, ksh")
        result = run(hasher, train_x, train_y, test_x, test_y, fit_labels)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.output:
        write_json(args.output, {"dataset": args.path, "bits": args.bits, "seed": args.seed, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
