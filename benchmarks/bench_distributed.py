"""Multi-worker training throughput: the training loop (`saeh.training.train`, SAEH with its decoder) in one process,
against the same loop in two worker processes on this machine under MultiWorkerMirroredStrategy (TF_CONFIG on
localhost ports), at the same global batch and at twice it, all measured in one run.

Each row times whole training steps after a warm-up (tracing, the first batches) and gives images/s of the global
batch and the ratio to the one-process row. On one machine the two workers share its cores, so the table measures
what the collectives and the duplicated pipeline cost, not the speed-up of two machines; on two machines each
worker has its own cores. The CPU model is printed first.

    python benchmarks/bench_distributed.py                     # a few minutes on 2 cores
    python benchmarks/bench_distributed.py --stack-num 2 --steps 40
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import cpu_description, step_clock  # noqa: E402

WARM_UP_STEPS = 3


def train_and_time(batch_size, steps, stack_num, side, out_dir):
    """Steps/s of the training loop over `steps` steps (after the warm-up) of one epoch on random images."""
    import tensorflow as tf

    from saeh import registry, training
    from saeh.data import ImageSet, Split

    strategy = None
    if os.environ.get("TF_CONFIG"):
        from saeh import distributed

        strategy = distributed.strategy_for_machine()
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    rng = np.random.default_rng(0)
    count = (WARM_UP_STEPS + steps) * batch_size * replicas
    train = ImageSet(rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8), np.arange(count) % 10)
    validation = ImageSet(train.images[:batch_size * replicas], train.labels[:batch_size * replicas])
    split = Split(protocol="ssdh", seed=0, train=train, validation=validation, query=validation, database=train,
                  dataset="random")
    clock = step_clock()
    tf.get_logger().setLevel("ERROR")
    training.train(registry.get("saeh"), split, 10, out_dir, stack_num=stack_num, epochs=1, batch_size=batch_size,
                   verbose=0, callbacks=[clock], strategy=strategy, log=lambda line: None)
    timed = clock.ends[WARM_UP_STEPS - 1:]
    return (len(timed) - 1) / (timed[-1] - timed[0])


def run_workers(workers, batch_size, args):
    """Steps/s reported by the chief of `workers` processes (one process without TF_CONFIG when 1)."""
    from saeh import distributed

    configs = distributed.localhost_tf_configs(workers) if workers > 1 else [None]
    processes = []
    with tempfile.TemporaryDirectory() as scratch:
        for config in configs:
            env = dict(os.environ)
            if config:
                env["TF_CONFIG"] = config
            command = [sys.executable, os.path.abspath(__file__), "--worker", "--batch-size", str(batch_size),
                       "--steps", str(args.steps), "--stack-num", str(args.stack_num), "--image-side",
                       str(args.image_side), "--out", os.path.join(scratch, "run")]
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
        outputs = [process.communicate() for process in processes]
    for process, (out, err) in zip(processes, outputs):
        if process.returncode != 0:
            raise SystemExit(f"a worker failed:\n{err[-3000:]}")
    return float(outputs[0][0].strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-num", type=int, default=1)
    parser.add_argument("--image-side", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="the one-process batch (the reference)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row (after warm-up)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(train_and_time(args.batch_size, args.steps, args.stack_num, args.image_side, args.out))
        return

    model_name, _ = cpu_description()
    print(f"CPU: {model_name}; {os.cpu_count()} cores; SAEH stack_num {args.stack_num}, {args.image_side}x"
          f"{args.image_side} images; {time.strftime('%Y-%m-%d %H:%M')}")
    header = f"{'setup':34s} {'batch/replica':>13s} {'global batch':>12s} {'img/s':>8s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    reference = None
    half = args.batch_size // 2
    for label, workers, batch_size in (("one process", 1, args.batch_size),
                                       ("two workers, same global batch", 2, half),
                                       ("two workers, twice the batch", 2, args.batch_size)):
        rate = run_workers(workers, batch_size, args) * batch_size * workers
        reference = reference or rate
        print(f"{label:34s} {batch_size:13d} {batch_size * workers:12d} {rate:8.1f} {rate / reference:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
