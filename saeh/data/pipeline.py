"""tf.data pipelines: uint8 images, in memory or in their files, to batches of floats in [0, 1] with each method's
targets.

Training batches are shuffled by a permutation drawn from (seed, epoch), so a run resumed at epoch e sees exactly
the batches an uninterrupted run would have seen, and batches never straddle two epochs. Batches are built by
gathering rows of the in-memory arrays (one gather per batch, not per image) and prefetched; on a GPU, Keras's
distributed iterator copies the next batches to the device while the current one trains. Images left in their
files (`saeh.data.files.ImageFiles`) take the same order: each batch's rows are decoded by one
`tf.numpy_function` call, several batches in parallel, so a streamed batch equals the in-memory one exactly.
"""

import math

import numpy as np
import tensorflow as tf

from saeh.data.files import ImageFiles
from saeh import validation
from saeh.errors import SaehError

PAD = 4  # pixels of zero padding for the pad-and-crop augmentation (the usual CIFAR recipe)
PADDINGS = ("CONSTANT", "REFLECT")  # zero padding, or the image mirrored at its edges (tf.pad's modes)


def label_matrix(labels, num_classes):
    """Class ids (N,) to one-hot float32 (N, num_classes); multi-hot (N, C) labels pass through as float32."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise SaehError(f"multi-hot labels have {labels.shape[1]} columns; expected num_classes={num_classes}")
        return labels.astype(np.float32)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise SaehError(f"labels must lie in [0, {num_classes - 1}]; got values from {labels.min()} to {labels.max()}")
    return np.eye(num_classes, dtype=np.float32)[labels]


def scale_images(images):
    """uint8 pixels to float32 in [0, 1] (the original's x / 255)."""
    return tf.cast(images, tf.float32) / 255.0


def augment_batch(images, seed, first=0, drawn=None, pad=PAD, padding="CONSTANT"):
    """Random horizontal flip and pad-and-crop (a translation by up to `pad` pixels each way; the padding zeros or
    the mirrored image, `padding` one of `PADDINGS`), independently per image, from a stateless `seed` (2 ints).

    Draws are made for `drawn` images (default: this batch) and these images take draws `first`, `first` + 1, ...:
    the rows of a global batch that one worker reads are augmented as they would be in the whole batch.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    drawn = batch if drawn is None else drawn
    # tf.image.stateless_random_flip_left_right's draws, made here so that a part of a batch can take its own.
    flips = tf.round(tf.random.stateless_uniform([drawn], seeds[0], minval=0, maxval=1.0))[first:first + batch]
    images = tf.where(flips[:, None, None, None] > 0, tf.reverse(images, [2]), images)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=padding)
    offsets = tf.random.stateless_uniform([drawn, 2], seeds[1], maxval=2 * pad + 1, dtype=tf.int32)
    offsets = offsets[first:first + batch]
    rows = offsets[:, :1] + tf.range(height)[None, :]
    columns = offsets[:, 1:] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, columns, axis=2, batch_dims=1)


def row_gatherer(images):
    """A function of a batch's row indices (int tensor) to its uint8 images: a gather from the in-memory array, or
    the rows of an `ImageFiles` decoded from their files."""
    if not isinstance(images, ImageFiles):
        held = tf.constant(images)
        return lambda indices: tf.gather(held, indices)

    def decode(indices):
        batch = tf.numpy_function(images.decode, [indices], tf.uint8, stateful=False)
        batch.set_shape((None, *images.shape[1:]))
        return batch

    return decode


def _check_batch_size(batch_size, count, what):
    """SaehError unless `batch_size` is a positive integer and the `what` set of `count` images is not empty."""
    validation.positive_int(batch_size, "batch_size")
    if count == 0:
        raise SaehError(f"the {what} set is empty")


def _check_part(part, batch_size, drop_remainder):
    """`part` (first, rows) of a batch of `batch_size` rows; the whole batch when None."""
    if part is None:
        return 0, batch_size
    if not drop_remainder:
        raise SaehError("a part of each batch needs whole batches: pass drop_remainder=True with part")
    first, rows = part
    if not (0 <= first and 0 < rows and first + rows <= batch_size):
        raise SaehError(f"part must be (first, rows) with 0 <= first, 0 < rows and first + rows <= batch_size "
                        f"({batch_size}); got {part!r}")
    return first, rows


def training_batches(images, per_sample, targets, batch_size, seed, epochs, initial_epoch=0, augment=False,
                     sampler=None, inputs=None, drop_remainder=False, part=None, pad=PAD, padding="CONSTANT"):
    """Batches for `model.fit` covering epochs `initial_epoch` .. `epochs - 1`.

    Args:
        images: (N, H, W, C) uint8 array, or `ImageFiles`.
        per_sample: dict of arrays with N rows each (labels, and e.g. CNNH's target codes); each batch holds the
            rows of the same images, whatever the shuffle.
        targets: function (float images, dict of per-sample batch tensors) -> dict of targets per output.
        batch_size, seed, epochs, initial_epoch: as for `fit`; the last batch of an epoch may be smaller.
        augment: random flip and pad-and-crop, by up to `pad` pixels with `padding` (see `augment_batch`).
        sampler: optional function epoch -> the rows (int array) the epoch visits, in order, the same number every
            epoch (a method that trains on a sample per epoch); by default every row, in a permutation drawn from
            (seed, epoch).
        inputs: optional function (float images, batch) -> the model's inputs, for a model that takes more than
            the images in training (DSAH's labels); by default the images.
        drop_remainder: leave out the last, partial batch of each epoch (for several replicas, each of which needs
            a whole slice of every batch).
        part: (first, rows): yield only rows `first` .. `first + rows - 1` of each batch, the only ones gathered
            (decoded, for `ImageFiles`), augmented as in the whole batch (for one worker of several). Needs
            `drop_remainder`.

    Returns:
        (dataset, steps_per_epoch): pass both to `fit`.
    """
    count = len(images)
    _check_batch_size(batch_size, count, "training")
    if padding not in PADDINGS or isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise SaehError(f"augmentation padding must be one of {', '.join(PADDINGS)} with a non-negative integer pad; "
                        f"got {padding!r} with pad {pad!r}")
    if batch_size > count:
        raise SaehError(f"batch_size {batch_size} is larger than the training set ({count} images)")
    orders = None if sampler is None else sampled_orders(sampler, count, initial_epoch, epochs)
    visited = count if orders is None else orders.shape[1]
    if batch_size > visited:
        raise SaehError(f"batch_size {batch_size} is larger than the {visited} images an epoch visits")
    steps = steps_per_epoch(visited, batch_size, drop_remainder)
    first, rows = _check_part(part, batch_size, drop_remainder)
    gather_images = row_gatherer(images)
    per_sample = {name: tf.constant(values) for name, values in per_sample.items()}

    def epoch_order(epoch):
        if orders is not None:
            return tf.gather(tf.constant(orders), epoch - initial_epoch)
        return tf.argsort(tf.random.stateless_uniform([count], seed=tf.stack([tf.cast(seed, tf.int64), epoch])))

    def epoch_batches(epoch):
        batches = tf.data.Dataset.from_tensor_slices(epoch_order(epoch)).batch(batch_size, drop_remainder)
        return batches.enumerate().map(lambda step, indices: (epoch, step, indices))

    def gather(epoch, step, indices):
        drawn = tf.shape(indices)[0]
        indices = indices[first:first + rows]
        batch_images = scale_images(gather_images(indices))
        if augment:
            batch_images = augment_batch(batch_images, tf.stack([epoch, step]) + tf.cast(seed, tf.int64) * 7919,
                                         first, drawn, pad=pad, padding=padding)
        batch = {name: tf.gather(values, indices) for name, values in per_sample.items()}
        return model_inputs(inputs, batch_images, batch), targets(batch_images, batch)

    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE), steps


def steps_per_epoch(visited, batch_size, drop_remainder=False):
    """The batches of an epoch that visits `visited` images: the last partial one counted unless dropped."""
    return visited // batch_size if drop_remainder else math.ceil(visited / batch_size)


def sampled_orders(sampler, count, initial_epoch, epochs):
    """(epochs - initial_epoch, visited) int64 rows of each epoch from `sampler`, checked: in range, the same number
    every epoch."""
    orders = []
    for epoch in range(initial_epoch, epochs):
        order = np.asarray(sampler(epoch), dtype=np.int64)
        if order.ndim != 1 or not order.size or order.min() < 0 or order.max() >= count:
            raise SaehError(f"the method's sampler gave epoch {epoch + 1} rows outside [0, {count - 1}] or none")
        if orders and len(order) != len(orders[0]):
            raise SaehError(f"the method's sampler gave epoch {epoch + 1} {len(order)} rows but epoch "
                            f"{initial_epoch + 1} {len(orders[0])}; every epoch must visit as many")
        orders.append(order)
    return np.stack(orders) if orders else np.zeros((0, count), np.int64)


def model_inputs(inputs, batch_images, batch):
    """What the model is fed: the images, or `inputs(images, batch)` when a method takes more."""
    return batch_images if inputs is None else inputs(batch_images, batch)


def evaluation_batches(images, per_sample, targets, batch_size, inputs=None, drop_remainder=False, part=None):
    """Batches in order, with targets, for validation and `evaluate`; `part` as for `training_batches`."""
    _check_batch_size(batch_size, len(images), "evaluation")
    first, rows = _check_part(part, batch_size, drop_remainder)
    if isinstance(images, ImageFiles):
        gather_images = row_gatherer(images)
        row_ids = np.arange(len(images), dtype=np.int64)
        dataset = tf.data.Dataset.from_tensor_slices((row_ids, per_sample)).batch(batch_size, drop_remainder)
    else:
        gather_images = None
        dataset = tf.data.Dataset.from_tensor_slices((images, per_sample)).batch(batch_size, drop_remainder)

    def prepare(batch_images, batch):
        if part is not None:  # before the gather: only these rows are decoded
            batch_images, batch = tf.nest.map_structure(lambda values: values[first:first + rows],
                                                        (batch_images, batch))
        batch_images = scale_images(batch_images if gather_images is None else gather_images(batch_images))
        return model_inputs(inputs, batch_images, batch), targets(batch_images, batch)

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def validation_batches(images, per_sample, targets, batch_size, seed, inputs=None, drop_remainder=False, part=None):
    """Like `evaluation_batches`, in one mixed order drawn from `seed` (the same every epoch), so that no batch of
    data stored class by class holds a single class and batch statistics are those of a training batch."""
    _check_batch_size(batch_size, len(images), "validation")
    order = np.random.default_rng(seed).permutation(len(images))
    return evaluation_batches(images[order], {name: np.asarray(values)[order] for name, values in per_sample.items()},
                              targets, batch_size, inputs, drop_remainder, part)


def image_batches(images, batch_size):
    """Scaled images in order, for encoding."""
    _check_batch_size(batch_size, len(images), "image")
    if isinstance(images, ImageFiles):
        gather_images = row_gatherer(images)
        dataset = tf.data.Dataset.range(len(images)).batch(batch_size)
        return dataset.map(lambda rows: scale_images(gather_images(rows)), num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True).prefetch(tf.data.AUTOTUNE)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    return dataset.map(scale_images, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
