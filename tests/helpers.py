"""What the tests share besides fixtures (those are in tests/conftest.py): small images whose labels are written in
their pixels, the settings of a brief training, a split of one training step, and a crash after an epoch."""

import itertools

import keras
import numpy as np

# A brief training of a small model: `training.train(method, split, classes, run_dir, epochs=E, **BRIEF_TRAINING)`.
BRIEF_TRAINING = dict(hash_bits=8, stack_num=1, batch_size=40, verbose=0, log=lambda message: None)


def separable_images(count, classes=4, side=16, seed=0):
    """Images whose class is a bright quadrant (one per class) over uniform noise: easy to separate."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, side, side, 1), dtype=np.uint8)
    half = side // 2
    for index, label in enumerate(labels):
        row, column = divmod(int(label) % 4, 2)
        images[index, row * half:(row + 1) * half, column * half:(column + 1) * half] += 150
    return images, labels


def separable_multi_hot_images(count, classes=4, side=16, seed=0):
    """Multi-hot images: each has one or two of `classes` (at most 4) labels, every single and every pair equally
    often, and a bright quadrant per label over uniform noise, so the label set is written in the pixels."""
    rng = np.random.default_rng(seed)
    label_sets = [*itertools.combinations(range(classes), 1), *itertools.combinations(range(classes), 2)]
    drawn = np.arange(count) % len(label_sets)
    rng.shuffle(drawn)
    labels = np.zeros((count, classes), np.uint8)
    images = rng.integers(0, 60, size=(count, side, side, 1), dtype=np.uint8)
    half = side // 2
    for index, which in enumerate(drawn):
        for label in label_sets[which]:
            labels[index, label] = 1
            row, column = divmod(label, 2)
            images[index, row * half:(row + 1) * half, column * half:(column + 1) * half] += 150
    return images, labels


def cluttered_pattern_images(count, classes=4, side=16, seed=0, multi_hot=False):
    """Images whose labels are faint fixed patterns (one +-40 sign pattern per class, summed over an image's labels)
    under three bright rectangles at random places: the rectangles dominate pixel distances, so an untrained
    network's codes retrieve near chance (mAP@100 +0.10 over random codes single-label, +0.08 multi-hot) and only a
    network that learned the patterns retrieves well. multi_hot: one or two labels an image, every single and every
    pair equally often (labels (count, classes) uint8); else one label an image (labels (count,))."""
    patterns = np.sign(np.random.default_rng(12345).normal(size=(classes, side, side))) * 40
    rng = np.random.default_rng(seed)
    label_sets = ([*itertools.combinations(range(classes), 1), *itertools.combinations(range(classes), 2)]
                  if multi_hot else [(label,) for label in range(classes)])
    drawn = np.arange(count) % len(label_sets)
    rng.shuffle(drawn)
    labels = np.zeros((count, classes), np.uint8)
    images = rng.uniform(0, 40, (count, side, side))
    for index, which in enumerate(drawn):
        for _ in range(3):
            height, width = rng.integers(3, 9, 2)
            row, column = rng.integers(0, side - height), rng.integers(0, side - width)
            images[index, row:row + height, column:column + width] += rng.uniform(60, 140)
        for label in label_sets[which]:
            labels[index, label] = 1
            images[index] += patterns[label]
    # The same offset for one label as for two: brightness must not tell how many labels an image has.
    images = np.clip(images + 40 * len(label_sets[-1]), 0, 255).astype(np.uint8)[..., None]
    return (images, labels) if multi_hot else (images, labels.argmax(axis=1))


def banded_images(count, classes=3, side=16, seed=0):
    """(count, side, side) uint8 grayscale images (no channel axis, as mnist.npz holds them) whose class is the
    position of a bright band, and the labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    images = rng.integers(0, 60, (count, side, side)).astype(np.uint8)
    band = side // classes
    for index, label in enumerate(labels):
        images[index, label * band:(label + 1) * band] += 150
    return images, labels


def tiny_split(train=16, held_out=16):
    """The separable images at their smallest: one step of 16 and a validation pass. Every set has the batch's 16
    images, so that one traced prediction serves the query and the database."""
    from saeh.data import ImageSet, Split

    images = ImageSet(*separable_images(train, seed=1))
    return Split(protocol="ssdh", seed=0, train=images, validation=ImageSet(*separable_images(held_out, seed=2)),
                 query=ImageSet(*separable_images(held_out, seed=3)), database=images, dataset="separable",
                 train_in_database=np.arange(train), validation_in_database=np.full(held_out, -1))


class Crash(Exception):
    pass


class CrashAfterEpoch(keras.callbacks.Callback):
    """Simulate a crash right after epoch `epoch` (1-based) was checkpointed."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Crash
