"""Training on several replicas (GPUs of one machine, or worker processes on several machines) with tf.distribute.

Which strategy: several workers named by the standard ``TF_CONFIG`` environment variable train one model under
`tf.distribute.MultiWorkerMirroredStrategy`; several GPUs of one machine under `MirroredStrategy`; one GPU under
`OneDeviceStrategy`; a CPU under the default strategy.

The rules every replica count obeys (so that N replicas train the model one replica would on the same global batches):

- `batch_size` is per replica; the global batch is `batch_size x replicas`. The learning rate is not rescaled: N
  replicas at batch B train as one replica at batch N*B with the same rate (pass --learning-rate to scale it).
- Every worker draws the same seeded global batches (order, augmentation) and reads, decodes and augments only its
  replicas' consecutive rows of each (`replica_batches`), so the split of a global batch is the same whatever the
  replica count. With more than one replica the last, partial global batch of an epoch is dropped (every replica
  needs a full slice).
- SAEH's balance term, a statistic of the batch, is computed over the global batch: `batch_mean` averages across
  replicas (its gradient is routed back to each replica by the all-reduce).
- Batch normalisation uses the global batch's statistics (`synchronize_batch_norm`), so its moving averages are the
  same on every worker.
- Only the chief writes the run folder; the other workers write what training writes to a scratch folder of their
  own (`SAEH_WORKER_DIR`, else a temporary folder removed at the end) and read the chief's checkpoint to resume,
  which needs the run folder on a filesystem every worker sees.

Keras 3.15's `model.fit` does not run under MultiWorkerMirroredStrategy on TF 2.21 (keras-team/keras issue 20585:
the trainer's symbolic build is fed per-replica values, and its scalar logs are reduced along axis 0).
`patch_for_multi_worker` is the narrow workaround, applied to the model instance only and only under that strategy.
"""

import json
import os
import socket

import keras
import tensorflow as tf

from saeh import peers
from saeh.errors import SaehError

WORKER_DIR_VARIABLE = "SAEH_WORKER_DIR"


def cluster_from_environment(environ=None):
    """The cluster of ``TF_CONFIG`` as {task type: [addresses]}; {} when unset. A malformed value is a SaehError."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
        cluster = config.get("cluster", {})
        task = config.get("task", {})
        valid = (isinstance(cluster, dict) and all(isinstance(hosts, list) for hosts in cluster.values())
                 and (not cluster or (task.get("type") in cluster
                                      and 0 <= int(task.get("index", -1)) < len(cluster[task["type"]]))))
    except (ValueError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise SaehError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": '
                        f'{{"type": "worker", "index": 0}}}} with the task one of the cluster\'s; got {text!r}')
    return cluster


def own_task(environ=None):
    """(task type, index) of this process in ``TF_CONFIG``'s cluster; None when unset."""
    environ = os.environ if environ is None else environ
    if not cluster_from_environment(environ):
        return None
    task = json.loads(environ["TF_CONFIG"])["task"]
    return task["type"], int(task["index"])


def localhost_tf_configs(count):
    """`TF_CONFIG` values (JSON text) for `count` worker processes of one cluster on this machine, on free ports:
    start the same training command once with each (tests and benchmarks do)."""
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("localhost", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(count)]


def worker_count(environ=None):
    """Processes that train together according to ``TF_CONFIG`` (chief and workers; 1 when unset)."""
    cluster = cluster_from_environment(environ)
    return max(1, sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")))


def strategy_for_machine():
    """MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers; else MirroredStrategy over all GPUs when
    there are several; OneDeviceStrategy on a single GPU, whose distributed dataset copies the next batches to the
    GPU while the current one trains; else the default strategy (CPU).

    Create it before anything else runs on TensorFlow: collective operations are configured at program start."""
    if worker_count() > 1:
        # TensorFlow's own wait for the peers is silent and deaf to SIGTERM and SIGINT: meet them first.
        peers.wait_for_peers(cluster_from_environment(), *own_task())
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise SaehError("TF_CONFIG names several workers but TensorFlow was already running when the "
                            f"multi-worker strategy was created ({error}); create it first") from error
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if gpus:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()


def is_multi_worker(strategy):
    """Whether `strategy` trains across several worker processes: it has more replicas than devices of its own."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def is_default_strategy(strategy):
    """Whether `strategy` is TensorFlow's default, which distributes nothing: a model built in its scope has no
    strategy of its own (the test Keras makes when a model is created)."""
    with strategy.scope():
        return not tf.distribute.has_strategy()


def is_chief(strategy):
    """Whether this process writes the run folder: the chief task, or worker 0 of a cluster without one; the only
    process of a single-machine run."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def task_name(strategy):
    """'worker 1', 'chief 0', ...; 'local' outside a cluster."""
    if not is_multi_worker(strategy):
        return "local"
    return f"{strategy.cluster_resolver.task_type} {strategy.cluster_resolver.task_id}"


def barrier_value(strategy, value):
    """Every worker waits here for the others and gets the chief's `value` (an int): a collective sum of the
    chief's value and zeros."""
    if not is_multi_worker(strategy):
        return int(value)
    mine = tf.constant(int(value) if is_chief(strategy) else 0, tf.int64)
    return int(strategy.reduce("SUM", strategy.run(lambda: tf.identity(mine)), axis=None).numpy())


def batch_mean(values):
    """Mean over the batch axis of `values`, over the global batch when several replicas train: the mean of the
    replicas' means (their batches are equal), through an all-reduce that is differentiable."""
    mean = keras.ops.mean(values, axis=0)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return mean
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, mean)


def synchronize_batch_norm(model):
    """Make every BatchNormalization layer of `model` normalise by the statistics of the global batch (an
    all-reduce per layer), so that N replicas compute what one replica does and keep the same moving averages.
    Returns the number of layers changed."""
    changed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed


def replica_batches(batches_of_part, strategy, batch_size):
    """The strategy's distributed dataset of global batches of batch_size x replicas rows: replica r of the cluster
    gets rows r*batch_size .. (r+1)*batch_size - 1 of each. `batches_of_part((first, rows))` makes the dataset of
    those rows of every global batch (see `pipeline.training_batches`): each worker reads, decodes and augments
    only its replicas' rows.

    Keras cannot read the length of such a dataset: give `fit` its steps (`steps_per_epoch`, `validation_steps`),
    or it takes one more step, of empty batches, at the end of the data."""
    replicas = strategy.num_replicas_in_sync

    def for_pipeline(context):
        local = replicas // context.num_input_pipelines
        part = (context.input_pipeline_id * local * batch_size, local * batch_size)
        # Each part becomes `local` consecutive batches, which the strategy hands to the local replicas in order.
        return batches_of_part(part).rebatch(batch_size).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(for_pipeline)


def patch_for_multi_worker(model, sample_batch):
    """The workaround for keras-team/keras issue 20585, on this model instance only.

    1. Build the model's, losses' and metrics' state now from `sample_batch` (a local batch of the training
       data), and make the trainer's own symbolic build, which would be fed per-replica values, a no-op.
    2. Return each log value of a training/test step with shape (1,) instead of (): the trainer reduces logs
       under a multi-worker strategy by a mean along axis 0, which a scalar has not; the mean of the replicas'
       (1,) values is the scalar the log should be.
    """
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step, test_step = model.train_step, model.test_step

    def as_vectors(logs):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    model.train_step = lambda data: as_vectors(train_step(data))
    model.test_step = lambda data: as_vectors(test_step(data))
