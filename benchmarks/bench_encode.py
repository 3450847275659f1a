"""Encoding throughput: `generate_hash.py`'s way against the original's, on the same model and images.

- original: the original generate_hash.py called `model.predict` on 10 images at a time and kept `hash_x` from the
  full model's outputs (classifier and decoder computed too);
- ours: `saeh.inference.encode`: one tf.data pipeline, batches of 1,024, only the encoder and the hash layer.

Both must give identical 0/1 codes. Prints a table with images/s and the ratio measured in this run.

    python benchmarks/bench_encode.py                       # MNIST-sample shape, stack_num 1
    python benchmarks/bench_encode.py --shape 32 32 3 --stack-num 18 --images 2000
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def original_way(model, images, per_call=10):
    """The original loop: predict a few images per call and keep the hash layer's output."""
    outputs = []
    for start in range(0, len(images), per_call):
        batch = images[start:start + per_call].astype(np.float32) / 255.0
        outputs.append(model.predict(batch, verbose=0)["hash_x"])
    return np.concatenate(outputs)


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=(28, 28, 1))
    parser.add_argument("--stack-num", type=int, default=1)
    parser.add_argument("--hash-bits", type=int, default=32)
    parser.add_argument("--images", type=int, default=2000, help="images encoded by each way")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    import tensorflow as tf

    from saeh import build_saeh
    from saeh.codes import binarize
    from saeh.inference import encode

    model = build_saeh(tuple(args.shape), 10, hash_bits=args.hash_bits, stack_num=args.stack_num)
    images = np.random.default_rng(0).integers(0, 256, (args.images, *args.shape), dtype=np.uint8)
    # Warm up both paths (tracing) on a few images so the table measures steady-state encoding.
    original_way(model, images[:20])
    encode(model, images[:20], args.batch_size)
    theirs, original_seconds = timed(original_way, model, images)
    ours, our_seconds = timed(encode, model, images, args.batch_size)
    same = np.array_equal(binarize(theirs), binarize(ours))
    largest = float(np.max(np.abs(theirs - ours)))

    print(f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, {os.cpu_count()} cores; "
          f"input {tuple(args.shape)}, stack_num {args.stack_num}, {args.hash_bits} bits, {args.images} images")
    print(f"{'way':54s} {'seconds':>8s} {'images/s':>9s} {'ratio':>6s}")
    print(f"{'original (predict 10 images per call)':54s} {original_seconds:8.2f} "
          f"{args.images / original_seconds:9.0f} {1.0:6.2f}")
    print(f"{f'generate_hash.py (tf.data, batch {args.batch_size}, encoder only)':54s} {our_seconds:8.2f} "
          f"{args.images / our_seconds:9.0f} {original_seconds / our_seconds:6.2f}")
    print(f"identical 0/1 codes: {same}; largest difference of hash_org: {largest:.2e}")
    if not same:
        raise SystemExit("the two ways gave different codes")


if __name__ == "__main__":
    main()
