"""Cut the MNIST sample bundled as saeh/data/mnist_sample.npz from a full Keras-layout mnist.npz.

    python tools/make_mnist_sample.py ../shared/datasets/mnist.npz

The sample is stratified and seeded: for each digit, `--train-per-class` training and `--test-per-class` test images
drawn without replacement with numpy's default_rng(--seed), kept in their original order. The output has the keys
of mnist.npz (x_train, y_train, x_test, y_test) plus train_index and test_index, each image's position in the
original release, so every image can be traced back. Running it again with the same arguments gives the same arrays.
"""

import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):
    # Run as a script from a checkout: make the repository's `saeh` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from saeh.atomic import atomic_path  # noqa: E402
from saeh.errors import SaehError  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPOSITORY, "saeh", "data", "mnist_sample.npz")


def stratified_indices(labels, per_class, rng):
    """`per_class` positions of each class, drawn without replacement, returned sorted (original order)."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise SaehError(f"class {label} has {len(members)} images; cannot draw {per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def make_sample(source, output, train_per_class=500, test_per_class=100, seed=0, overwrite=True):
    """Write the sample of `source` (a Keras-layout mnist.npz) to `output`; returns the arrays written."""
    if not os.path.isfile(source):
        raise SaehError(f"{source} does not exist; expected the full MNIST as a Keras-layout mnist.npz")
    with np.load(source, allow_pickle=False) as archive:
        x_train, y_train, x_test, y_test = (archive[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    rng = np.random.default_rng(seed)
    train_index = stratified_indices(y_train, train_per_class, rng)
    test_index = stratified_indices(y_test, test_per_class, rng)
    arrays = {
        "x_train": x_train[train_index],
        "y_train": y_train[train_index],
        "x_test": x_test[test_index],
        "y_test": y_test[test_index],
        "train_index": train_index.astype(np.int64),
        "test_index": test_index.astype(np.int64),
    }
    with atomic_path(output, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="path of the full mnist.npz (Keras layout)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the sample (default: %(default)s)")
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        arrays = make_sample(args.source, args.output, args.train_per_class, args.test_per_class, args.seed)
    except SaehError as error:
        print(f"make_mnist_sample: error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.output}: {len(arrays['x_train'])} training and {len(arrays['x_test'])} test images, "
        f"{os.path.getsize(args.output)} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
