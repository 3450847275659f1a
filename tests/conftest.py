"""Shared fixtures: small separable image data, and where the real datasets are (for tests that use them)."""

import os

# KSH's many small BLAS calls slow down badly with 2 OpenBLAS threads on a busy 2-core machine, and the thread count
# changes KSH's last digits: one thread keeps the tests fast and their numbers stable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATASETS = os.path.join(os.path.dirname(REPO), "shared", "datasets")


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


@pytest.fixture(scope="session")
def separable_split():
    from saeh.data import ImageSet, Split

    train = ImageSet(*separable_images(240, seed=1))
    validation = ImageSet(*separable_images(40, seed=2))
    query = ImageSet(*separable_images(40, seed=3))
    return Split(protocol="ssdh", seed=0, train=train, validation=validation, query=query, database=train,
                 dataset="separable")


@pytest.fixture(scope="session")
def shared_datasets():
    if not os.path.isdir(SHARED_DATASETS):
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
