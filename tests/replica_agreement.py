"""Run by tests/test_distributed.py in a process of its own (logical devices are configured at start): one training
step of SAEH on one global batch with one replica, and with two replicas (MirroredStrategy over two logical CPUs) at
half the batch each, then again with two replicas whose balance term is computed per replica (what the rules
forbid). Prints one JSON line: the largest weight differences and the two runs' histories.

One step: float rounding (a sum split in two) is then the only difference; later steps amplify it. The steps run
eagerly (half the time of tracing three models; the same loss and cross-replica reductions): the traced path under
two workers is tests/test_distributed.py's killed-and-restarted run.

    python tests/replica_agreement.py OUT_DIR
"""

import json
import os
import sys

import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from saeh import distributed, registry, training  # noqa: E402
from saeh.data import ImageSet, Split, load_dataset  # noqa: E402
from saeh.training import loop  # noqa: E402

GLOBAL_BATCH = 32


def tiny_split():
    data = load_dataset("mnist-sample")
    train = ImageSet(data.train.images[:GLOBAL_BATCH], data.train.labels[:GLOBAL_BATCH])
    validation = ImageSet(data.test.images[:GLOBAL_BATCH], data.test.labels[:GLOBAL_BATCH])
    return Split(protocol="ssdh", seed=0, train=train, validation=validation, query=validation, database=train,
                 dataset="tiny")


def synchronized_build(build):
    """`saeh.training.compiled_model.build_compiled` with batch norm computing its statistics as several replicas do
    (sums reduced across replicas; on one replica the same formula over the one batch), so that the comparison is of
    the distribution and not of two float formulas for a variance."""

    def build_synchronized(*args, **kwargs):
        model = build(*args, **kwargs)
        distributed.synchronize_batch_norm(model)
        return model

    return build_synchronized


def run(split, out, strategy, batch_size):
    # A strong balance term (beta) so that computing it per replica shows.
    trained = training.train(registry.get("saeh"), split, 10, out, stack_num=1, epochs=1, batch_size=batch_size,
                             seed=0, learning_rate=0.01, hyperparameters={"beta": 10.0}, verbose=0, strategy=strategy,
                             run_eagerly=True, log=lambda line: None)
    return trained.model.get_weights(), trained.history


def largest_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))


def main(out_dir):
    split = tiny_split()
    loop.build_compiled = synchronized_build(loop.build_compiled)  # where `train` looks it up
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one, one_history = run(split, os.path.join(out_dir, "one"), tf.distribute.OneDeviceStrategy("/cpu:0"),
                           GLOBAL_BATCH)
    two, two_history = run(split, os.path.join(out_dir, "two"), mirrored, GLOBAL_BATCH // 2)
    local_mean = distributed.batch_mean
    distributed.batch_mean = lambda values: keras.ops.mean(values, axis=0)
    try:
        import saeh.losses
        saeh.losses.batch_mean = distributed.batch_mean
        per_replica, _ = run(split, os.path.join(out_dir, "per_replica"), mirrored, GLOBAL_BATCH // 2)
    finally:
        distributed.batch_mean = saeh.losses.batch_mean = local_mean
    print(json.dumps({"agreement": largest_difference(one, two),
                      "per_replica_balance": largest_difference(one, per_replica),
                      "one": one_history, "two": two_history}))


if __name__ == "__main__":
    main(sys.argv[1])
