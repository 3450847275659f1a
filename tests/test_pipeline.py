"""The tf.data pipeline: every per-sample target travels with its own image through the shuffle (a popular CNNH
port scores chance because its stage-1 codes do not), epochs are permutations drawn from (seed, epoch), a resumed
run sees the batches an uninterrupted run would have seen, and augmentation keeps images and targets together."""

import itertools
import os

import numpy as np
import pytest

from saeh.data import ImageFiles, pipeline
from saeh.errors import SaehError

COUNT = 200  # each image is filled with its own index, so a batch says which images it holds


def indexed_images(count=COUNT, side=12):
    return np.repeat(np.arange(count, dtype=np.uint8), side * side).reshape(count, side, side, 1)


def index_targets(images, batch):
    return {"hash_x": batch["code"], "y_predict": batch["label"]}


def per_sample(count=COUNT):
    return {"code": np.arange(count, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32),
            "label": pipeline.label_matrix(np.arange(count) % 5, 5)}


def epochs_of(dataset, steps, epochs):
    """Per epoch, the list of (image indices, target indices, label rows) of its batches."""
    batches = [(np.rint(images.numpy()[:, 6, 6, 0] * 255).astype(int), targets["hash_x"].numpy()[:, 0].astype(int),
                targets["y_predict"].numpy()) for images, targets in dataset]
    assert len(batches) == steps * epochs
    return [batches[start:start + steps] for start in range(0, len(batches), steps)]


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augmented"])
def test_targets_travel_with_their_images_through_the_shuffle(augment):
    dataset, steps = pipeline.training_batches(indexed_images(), per_sample(), index_targets, batch_size=32, seed=3,
                                               epochs=3, augment=augment)
    assert steps == 7  # ceil(200 / 32); the last batch of an epoch is smaller
    orders = []
    for epoch in epochs_of(dataset, steps, 3):
        seen = []
        for image_index, target_index, labels in epoch:
            np.testing.assert_array_equal(image_index, target_index)
            np.testing.assert_array_equal(labels.argmax(axis=1), image_index % 5)
            seen.extend(image_index)
        assert sorted(seen) == list(range(COUNT))  # each epoch is a permutation
        orders.append(seen)
    for first, second in itertools.combinations(range(len(orders)), 2):
        assert orders[first] != orders[second], f"epochs {first} and {second} have the same order"
    assert orders[0] != list(range(COUNT))


def test_same_seed_same_batches_and_a_resumed_run_sees_the_same_epochs():
    images, samples = indexed_images(), per_sample()
    whole, steps = pipeline.training_batches(images, samples, index_targets, 32, seed=5, epochs=4)
    again, _ = pipeline.training_batches(images, samples, index_targets, 32, seed=5, epochs=4)
    resumed, _ = pipeline.training_batches(images, samples, index_targets, 32, seed=5, epochs=4, initial_epoch=2)
    other, _ = pipeline.training_batches(images, samples, index_targets, 32, seed=6, epochs=4)
    first = [np.concatenate([batch[0] for batch in epoch]) for epoch in epochs_of(whole, steps, 4)]
    second = [np.concatenate([batch[0] for batch in epoch]) for epoch in epochs_of(again, steps, 4)]
    tail = [np.concatenate([batch[0] for batch in epoch]) for epoch in epochs_of(resumed, steps, 2)]
    seeded_otherwise = [np.concatenate([batch[0] for batch in epoch]) for epoch in epochs_of(other, steps, 4)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first[2:], tail):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], seeded_otherwise[0])


def shifted(image, dy, dx):
    """`image` moved down by dy and right by dx pixels, zero-filled: what pad-and-crop produces."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = image[
        max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return out


def test_augmentation_flips_and_shifts_each_image_within_the_padding():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 16, 16, 3), dtype=np.uint8)  # no zero pixels: the padding shows as zeros
    dataset, _ = pipeline.training_batches(
        images, {"index": np.arange(64, dtype=np.int64)[:, None]},
        lambda batch_images, batch: {"y_predict": batch["index"]}, 64, seed=0, epochs=1, augment=True)
    augmented, targets = next(iter(dataset))
    augmented, indices = augmented.numpy(), targets["y_predict"].numpy()[:, 0]
    assert augmented.shape == (64, 16, 16, 3) and 0 <= augmented.min() and augmented.max() <= 1
    moved = 0
    for picture, index in zip(augmented, indices):
        source = images[index].astype(np.float32) / 255
        matches = [(flip, dy, dx) for flip in (False, True) for dy in range(-4, 5) for dx in range(-4, 5)
                   if np.allclose(shifted(source[:, ::-1] if flip else source, dy, dx), picture)]
        assert matches, f"augmented image {index} is no flip and shift of its own source"
        moved += matches[0] != (False, 0, 0)
    assert moved > 48  # nearly every image was flipped or shifted (1 in 162 stays put)


def test_evaluation_batches_keep_order_and_targets():
    dataset = pipeline.evaluation_batches(indexed_images(), per_sample(), index_targets, batch_size=64)
    images = np.concatenate([np.rint(batch[0].numpy()[:, 6, 6, 0] * 255) for batch in dataset])
    codes = np.concatenate([batch[1]["hash_x"].numpy()[:, 0] for batch in dataset])
    np.testing.assert_array_equal(images, np.arange(COUNT))
    np.testing.assert_array_equal(codes, np.arange(COUNT))
    scaled = np.concatenate([batch.numpy() for batch in pipeline.image_batches(indexed_images(), 64)])
    np.testing.assert_allclose(scaled[:, 0, 0, 0], np.arange(COUNT) / 255, rtol=1e-6)


def test_label_matrix_and_bad_batches():
    np.testing.assert_array_equal(pipeline.label_matrix(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    multi_hot = np.array([[1, 0, 1], [0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(pipeline.label_matrix(multi_hot, 3), multi_hot)
    with pytest.raises(SaehError, match=r"labels must lie in \[0, 2\]; got values from 0 to 3"):
        pipeline.label_matrix(np.array([0, 3]), 3)
    with pytest.raises(SaehError, match="multi-hot labels have 3 columns; expected num_classes=4"):
        pipeline.label_matrix(multi_hot, 4)
    with pytest.raises(SaehError, match="batch_size 300 is larger than the training set"):
        pipeline.training_batches(indexed_images(), per_sample(), index_targets, 300, seed=0, epochs=1)
    with pytest.raises(SaehError, match="batch_size must be a positive integer; got 0"):
        pipeline.evaluation_batches(indexed_images(), per_sample(), index_targets, 0)


def reference_augment(images, seed):
    """The augmentation as first written, with TensorFlow's own batch flip: `augment_batch` must keep its draws (a
    run resumed across the change, and every published number, saw these)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    images = tf.image.stateless_random_flip_left_right(images, seeds[0])
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pipeline.PAD] * 2, [pipeline.PAD] * 2, [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], seeds[1], maxval=2 * pipeline.PAD + 1, dtype=tf.int32)
    cropped = tf.gather(padded, offsets[:, :1] + tf.range(height)[None, :], axis=1, batch_dims=1)
    return tf.gather(cropped, offsets[:, 1:] + tf.range(width)[None, :], axis=2, batch_dims=1)


def test_augmentation_keeps_its_draws_and_a_part_takes_its_rows_draws():
    import tensorflow as tf

    images = tf.constant(np.random.default_rng(0).random((24, 10, 10, 3)), tf.float32)
    seed = tf.constant([3, 11], tf.int64)
    whole = pipeline.augment_batch(images, seed).numpy()
    np.testing.assert_array_equal(whole, reference_augment(images, seed).numpy())
    for first, rows in ((0, 8), (8, 8), (16, 8), (5, 13)):
        part = pipeline.augment_batch(images[first:first + rows], seed, first, 24).numpy()
        np.testing.assert_array_equal(part, whole[first:first + rows])


class CountingFiles(ImageFiles):
    """`ImageFiles` that records how many rows each decode call asked for."""

    decoded = []

    def decode(self, rows):
        CountingFiles.decoded.append(len(rows))
        return super().decode(rows)


def png_folder(root, count=48, side=8):
    from PIL import Image

    paths = []
    for index in range(count):
        path = os.path.join(root, f"{index:03d}.png")
        Image.fromarray(np.full((side, side, 3), index, np.uint8)).save(path)
        paths.append(path)
    return CountingFiles(np.array(paths), side, side, 3)


@pytest.mark.parametrize("source", ["memory", "files"])
def test_the_parts_of_a_batch_are_its_rows_and_only_they_are_read(source, tmp_path):
    """One worker of several reads rows (first, rows) of every global batch: the parts put together are the whole
    batches, augmentation included, and a streamed part decodes only its own rows."""
    files = png_folder(str(tmp_path))
    images = files if source == "files" else np.stack([files[index] for index in range(len(files))])
    samples = {"code": np.arange(48, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32),
               "label": pipeline.label_matrix(np.arange(48) % 5, 5)}
    batch, parts = 16, ((0, 8), (8, 4), (12, 4))

    def batches(part=None):
        dataset, steps = pipeline.training_batches(images, samples, index_targets, batch, seed=2, epochs=2,
                                                   augment=True, drop_remainder=True, part=part)
        return [(x.numpy(), y["hash_x"].numpy()) for x, y in dataset], steps

    def validation(part=None):
        dataset = pipeline.validation_batches(images, samples, index_targets, batch, seed=2, drop_remainder=True,
                                              part=part)
        return [(x.numpy(), y["hash_x"].numpy()) for x, y in dataset]

    whole, steps = batches()
    CountingFiles.decoded.clear()
    pieces = [batches(part) for part in parts]
    assert all(part_steps == steps == 3 for _, part_steps in pieces)
    if source == "files":
        assert sorted(set(CountingFiles.decoded)) == [4, 8]  # never the whole batch of 16
    for step, (x, codes) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([piece[0][step][0] for piece in pieces]), x)
        np.testing.assert_array_equal(np.concatenate([piece[0][step][1] for piece in pieces]), codes)
    whole = validation()
    CountingFiles.decoded.clear()
    pieces = [validation(part) for part in parts]
    if source == "files":
        assert sorted(set(CountingFiles.decoded)) == [4, 8]
    for step, (x, codes) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([piece[step][0] for piece in pieces]), x)
        np.testing.assert_array_equal(np.concatenate([piece[step][1] for piece in pieces]), codes)


@pytest.mark.parametrize("part, drop, message", [
    ((0, 8), False, "needs whole batches"), ((12, 8), True, r"<= batch_size \(16\)"),
    ((0, 0), True, "0 < rows"), ((-1, 4), True, "0 <= first")])
def test_a_bad_part_is_refused(part, drop, message):
    with pytest.raises(SaehError, match=message):
        pipeline.training_batches(indexed_images(), per_sample(), index_targets, 16, seed=0, epochs=1,
                                  drop_remainder=drop, part=part)
