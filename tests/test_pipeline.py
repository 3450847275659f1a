"""The tf.data pipeline: every per-sample target travels with its own image through the shuffle (a popular CNNH
port scores chance because its stage-1 codes do not), epochs are permutations drawn from (seed, epoch), a resumed
run sees the batches an uninterrupted run would have seen, and augmentation keeps images and targets together."""

import itertools

import numpy as np
import pytest

from saeh.data import pipeline
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
