"""Tiny image folders the tests write: `root/{train,test}/class<c>/*`, RGB noise with a bright band whose position
is the class, so that a network can tell the classes apart in an epoch."""

import os

import numpy as np


def write_class_folders(root, classes, train_per_class, test_per_class, side, seed=0, gray=False, rgba=False,
                        jpeg=False):
    """Write the folder; `gray` / `rgba` add one grayscale / RGBA image to the training set (the loaders convert
    both to RGB), `jpeg` writes JPEGs instead of PNGs. Returns `root` as a string."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    suffix = ".jpg" if jpeg else ".png"
    band = side // classes
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label in range(classes):
            folder = os.path.join(root, split, f"class{label}")
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                image = rng.integers(0, 60, (side, side, 3)).astype(np.uint8)
                image[label * band:(label + 1) * band] += 150
                Image.fromarray(image).save(os.path.join(folder, f"{index:03d}{suffix}"))
    if gray:
        picture = rng.integers(0, 255, (side, side)).astype(np.uint8)
        Image.fromarray(picture, mode="L").save(os.path.join(root, "train", "class0", f"gray{suffix}"))
    if rgba:
        picture = rng.integers(0, 255, (side, side, 4)).astype(np.uint8)
        Image.fromarray(picture, mode="RGBA").save(os.path.join(root, "train", "class1", "rgba.png"))
    return str(root)
