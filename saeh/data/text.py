"""Texts as the data layer carries them: a tokeniser, a vocabulary built from the training texts, and token ids
packed into uint8 arrays of the image layout (N, H, W, 1), so that a text set is an `ImageSet` that the one input
pipeline, training loop, encoder and code dumps carry unchanged.

Packing: a text of at most `length` tokens becomes its token ids (0 = padding, 1 = a word outside the vocabulary,
2... = the vocabulary by falling frequency), each id two bytes little-endian, the 2 * length bytes laid out
`ROW_BYTES` to a row: an array (length / 4, 8, 1). `length` is a multiple of `LENGTH_STEP` (32 tokens: 8 rows,
the smallest the image checks accept). The pipeline scales the bytes to [0, 1] (x / 255) as it does pixels; a text
model undoes it: `unpack_token_ids` here, its Keras twin in baselines/cnn_text.py.
"""

import collections
import re

import numpy as np

from saeh.errors import SaehError

PADDING_ID = 0
UNKNOWN_ID = 1
FIRST_WORD_ID = 2
BYTES_PER_TOKEN = 2
ROW_BYTES = 8
TOKENS_PER_ROW = ROW_BYTES // BYTES_PER_TOKEN
LENGTH_STEP = 32
VOCABULARY_CAPACITY = 256**BYTES_PER_TOKEN  # ids that two bytes hold, padding and unknown included
MAX_LENGTH = 512  # longer texts are cut (20 Newsgroups posts run to thousands of words)

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenise(text):
    """Lower-cased words: runs of letters and digits (an inner apostrophe kept: "don't"); punctuation and
    underscores separate words."""
    return _WORD.findall(str(text).lower())


def build_vocabulary(token_lists, capacity=VOCABULARY_CAPACITY):
    """{word: id} of the words of `token_lists` (the training texts'), most frequent first (ties alphabetical), ids
    from FIRST_WORD_ID; at most `capacity` - FIRST_WORD_ID words (the rarest are left out and read as unknown)."""
    counts = collections.Counter(word for tokens in token_lists for word in tokens)
    ranked = sorted(counts, key=lambda word: (-counts[word], word))[:capacity - FIRST_WORD_ID]
    return {word: FIRST_WORD_ID + rank for rank, word in enumerate(ranked)}


def packed_length(token_lists, max_length=MAX_LENGTH):
    """The token length of the packed texts: the longest of `token_lists` rounded up to LENGTH_STEP, at most
    `max_length` (a multiple of LENGTH_STEP)."""
    if max_length % LENGTH_STEP:
        raise SaehError(f"max_length must be a multiple of {LENGTH_STEP}; got {max_length}")
    longest = max((len(tokens) for tokens in token_lists), default=0)
    return min(max_length, max(LENGTH_STEP, -(-longest // LENGTH_STEP) * LENGTH_STEP))


def token_ids(token_lists, vocabulary, length):
    """(N, length) int64 ids of `token_lists` under `vocabulary`: unknown words UNKNOWN_ID, cut or padded with
    PADDING_ID to `length`."""
    ids = np.full((len(token_lists), length), PADDING_ID, np.int64)
    for row, tokens in enumerate(token_lists):
        words = tokens[:length]
        ids[row, :len(words)] = [vocabulary.get(word, UNKNOWN_ID) for word in words]
    return ids


def pack_token_ids(ids):
    """(N, length) ids -> (N, length / TOKENS_PER_ROW, ROW_BYTES, 1) uint8, two bytes per id, low byte first."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] % LENGTH_STEP:
        raise SaehError(f"token ids must be (N, length) with length a multiple of {LENGTH_STEP}; got {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= VOCABULARY_CAPACITY):
        raise SaehError(f"token ids must lie in 0..{VOCABULARY_CAPACITY - 1}; got {ids.min()}..{ids.max()}")
    digits = np.stack([(ids >> (8 * place)) & 0xFF for place in range(BYTES_PER_TOKEN)], axis=-1)
    return digits.astype(np.uint8).reshape(len(ids), -1, ROW_BYTES, 1)


def unpack_token_ids(packed):
    """The inverse of `pack_token_ids`: (N, H, ROW_BYTES, 1) uint8 -> (N, H * TOKENS_PER_ROW) int64 ids."""
    packed = np.asarray(packed)
    if packed.ndim != 4 or packed.shape[2:] != (ROW_BYTES, 1):
        raise SaehError(f"packed texts must be (N, H, {ROW_BYTES}, 1); got shape {packed.shape}")
    digits = packed.reshape(len(packed), -1, BYTES_PER_TOKEN).astype(np.int64)
    return sum(digits[..., place] << (8 * place) for place in range(BYTES_PER_TOKEN))


def is_packed_text_shape(shape):
    """True for the per-item shape (H, W, C) of packed texts: W = ROW_BYTES, C = 1, H a multiple of 8."""
    shape = tuple(shape)
    return (len(shape) == 3 and shape[1:] == (ROW_BYTES, 1)
            and shape[0] % (LENGTH_STEP // TOKENS_PER_ROW) == 0)
