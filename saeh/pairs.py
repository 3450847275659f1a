"""Pairs and triplets of images by their labels, for the pairwise and triplet losses and solvers: whether two images
share a label (class ids or multi-hot rows), the pairs of one batch without self-pairs, and triplets (anchor,
positive, negative) drawn from a batch's labels.

`share_a_label` and `off_diagonal` work on numpy arrays (the solvers' and shallow methods' similarity matrices); the
others on tensors (Keras ops), inside a loss.
"""

import keras
import numpy as np
from keras import ops

from saeh.errors import SaehError
from saeh.retrieval.metrics import pack_label_sets, packed_share_a_label


def share_a_label(labels_a, labels_b, names=("labels_a", "labels_b")):
    """(A, B) bool numpy matrix: True where image i of `labels_a` and image j of `labels_b` share at least one label.

    Labels: (N,) class ids or (N, C) multi-hot rows (0 and 1), the same kind for both; `names` name them in errors.
    """
    arrays = np.asarray(labels_a), np.asarray(labels_b)
    for name, array in zip(names, arrays):
        if array.ndim not in (1, 2) or len(array) == 0:
            raise SaehError(f"{name} must be (N,) class ids or (N, C) multi-hot with N >= 1; got shape {array.shape}")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise SaehError(f"{name} must hold integers; got dtype {array.dtype}")
        if array.ndim == 2 and not np.all((array == 0) | (array == 1)):
            raise SaehError(f"{name} given as a matrix must be multi-hot (0 and 1 only)")
    first, second = arrays
    if first.ndim != second.ndim:
        raise SaehError(f"{names[0]} and {names[1]} must both be class ids or both multi-hot; got shapes "
                        f"{first.shape} and {second.shape}")
    if first.ndim == 1:
        return first[:, None] == second[None, :]
    if first.shape[1] != second.shape[1]:
        raise SaehError(f"{names[0]} has {first.shape[1]} classes but {names[1]} has {second.shape[1]}; they must "
                        "match")
    # The evaluator's definition, so that training and scoring call the same images similar.
    return packed_share_a_label(pack_label_sets(first, names[0])[:, None, :], pack_label_sets(second, names[1])[None])


def off_diagonal(matrix):
    """The entries (i, j), i != j, of a square numpy matrix, row by row: its values over pairs of two items."""
    matrix = np.asarray(matrix)
    return matrix[~np.eye(len(matrix), dtype=bool)]


def similar_pairs(labels_a, labels_b):
    """s_ij = 1 when row i of `labels_a` and row j of `labels_b` (one-hot or multi-hot rows) share a label, else 0:
    a float32 tensor of len(labels_a) x len(labels_b)."""
    labels_a = ops.cast(ops.convert_to_tensor(labels_a), "float32")
    labels_b = ops.cast(ops.convert_to_tensor(labels_b), "float32")
    for name, labels in (("labels_a", labels_a), ("labels_b", labels_b)):
        if len(labels.shape) != 2 or 0 in labels.shape:
            raise SaehError(f"{name} must be a non-empty matrix (images x classes); got shape {tuple(labels.shape)}")
    width_a, width_b = labels_a.shape[1], labels_b.shape[1]
    if width_a is not None and width_b is not None and width_a != width_b:
        raise SaehError(f"labels_a and labels_b must have the same number of classes (columns); got labels_a of "
                        f"shape {tuple(labels_a.shape)} and labels_b of shape {tuple(labels_b.shape)}")
    return ops.cast(ops.matmul(labels_a, ops.transpose(labels_b)) > 0, "float32")


def ordered_pairs(count):
    """The ordered pairs (i, j), i != j, of `count` images (one batch against itself without self-pairs), as a
    float32 count x count matrix: 1 off the diagonal, 0 on it."""
    return 1.0 - ops.eye(count, dtype="float32")


def unordered_pairs(count):
    """The unordered pairs {i, j}, i != j, of `count` images, each once: a count x count matrix, 1 above the
    diagonal (i < j), 0 elsewhere."""
    return ops.triu(ops.ones((count, count)), k=1)


def sample_triplets(labels, seed):
    """One triplet per image of a batch: the image (anchor), a positive (another image sharing a label with it) and
    a negative (an image sharing none), each drawn uniformly among those the batch holds.

    `labels`: the batch's one-hot or multi-hot rows; `seed`: an int (the same triplets for the same labels) or a
    `keras.random.SeedGenerator` (new triplets at each call). Returns (anchors, positives, negatives, valid): int
    tensors of the batch's length, and a float32 mask, 1 for the anchors that have both a positive and a negative
    (the others' positive or negative is meaningless: leave them out of the loss).
    """
    similar = similar_pairs(labels, labels)
    count = ops.shape(similar)[0]
    candidates = ops.stack([similar * ordered_pairs(count), 1.0 - similar])  # positives, negatives
    # The largest of independent uniform draws over the candidates is a uniform choice among them.
    draws = keras.random.uniform(ops.shape(candidates), seed=seed)
    chosen = ops.argmax(ops.where(candidates > 0, draws, -1.0), axis=2)
    valid = ops.cast(ops.all(ops.max(candidates, axis=2) > 0, axis=0), "float32")
    return ops.arange(count), chosen[0], chosen[1], valid
