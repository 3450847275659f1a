"""Why DH (Liong et al.) scores chance on CIFAR-10's raw pixels: fit it on a class-balanced subsample under several
settings and print, for each, mAP@1000 (ties by index and tie-averaged), the distinct database codes and the codes'
effective rank (RESULTS.md, "DH's collapse").

    python tools/dh_collapse.py --data-dir DIR [--train-per-class 500] [--test-per-class 100]

DIR holds CIFAR-10 as JPEG folders, DIR/{train,test}/<class>/*.jpg (`saeh.data`'s cifar10 layout). The subsample
takes the first images of each class folder in name order; the database is the training subsample.
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ({"n_iter": 1}, {}, {"lambda1": 0.0}, {"lambda2": 0.1, "lambda3": 0.1}, {"lambda2": 1.0},
            {"learning_rate": 0.1}, {"learning_rate": 0.01}, {"learning_rate": 0.001})


def load_subsample(data_dir, split, per_class):
    from PIL import Image

    folder = os.path.join(data_dir, split)
    if not os.path.isdir(folder):
        raise SystemExit(f"--data-dir {data_dir}: no {split}/ folder (expected {split}/<class>/*.jpg)")
    images, labels = [], []
    for label, name in enumerate(sorted(os.listdir(folder))):
        files = sorted(os.listdir(os.path.join(folder, name)))[:per_class]
        images += [np.asarray(Image.open(os.path.join(folder, name, file)).convert("RGB")) for file in files]
        labels += [label] * len(files)
    return np.stack(images), np.array(labels)


def describe(query, database, query_labels, database_labels):
    from saeh.retrieval import map_at_k

    signed = 2.0 * database - 1.0
    singular = np.linalg.svd(signed - signed.mean(0), compute_uv=False)
    pair = (query, database, query_labels, database_labels)
    by_index, averaged = map_at_k(*pair, k=1000), map_at_k(*pair, k=1000, ties="average")
    rank = singular.sum() ** 2 / (singular ** 2).sum()
    return (f"mAP@1000 {100 * by_index:.2f} tie-averaged {100 * averaged:.2f} | distinct "
            f"{len(np.unique(database, axis=0))} | effective rank {rank:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from baselines.liong_dh import DH
    from baselines.shallow import features_from_images

    train_images, train_labels = load_subsample(args.data_dir, "train", args.train_per_class)
    test_images, test_labels = load_subsample(args.data_dir, "test", args.test_per_class)
    train, test = features_from_images(train_images), features_from_images(test_images)
    print(f"{len(train)} training images (the database), {len(test)} queries, 32 bits")
    rng = np.random.default_rng(0)
    print("random codes:", describe(rng.integers(0, 2, (len(test), 32)), rng.integers(0, 2, (len(train), 32)),
                                    test_labels, train_labels))
    for setting in SETTINGS:
        started = time.time()
        hasher = DH(hash_bits=32, seed=0, **setting)
        hasher.fit(train)
        print(f"DH {setting or 'defaults'}: J {hasher.objective_[0]:.3g} -> {hasher.objective_[-1]:.3g} in "
              f"{len(hasher.objective_)} steps, {time.time() - started:.0f} s | "
              + describe(hasher.encode(test), hasher.encode(train), test_labels, train_labels), flush=True)


if __name__ == "__main__":
    main()
