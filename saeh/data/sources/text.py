"""Labelled texts (``text``): a user's corpus file or folder, tokenised and packed by `saeh.data.text`.

Layouts of `data_dir`:

- a file of one text a line, ``label<TAB>text`` (blank lines skipped), e.g. SearchSnippets written that way;
- a folder with ``train.txt`` and ``test.txt`` in that format;
- a folder with one sub-folder per class of ``.txt`` files, one text a file;
- a folder with ``train/<class>/*.txt`` and ``test/<class>/*.txt``.

Where the source gives no test split (a single file, class folders), every fifth text of each class in file order
(its 5th, 10th, ...) is a test text: a fixed split, so that the vocabulary, built from the training texts alone,
never depends on the protocol's seed. Classes are the label names (or folder names) in alphabetical order.
"""

import os

import numpy as np

from saeh.data import text
from saeh.data.sources import register_source
from saeh.data.sources.image_files import visible_entries
from saeh.data.types import ImageSet, labelled_data
from saeh.errors import MissingDataError, SaehError

SPLIT_FILES = ("train.txt", "test.txt")
SPLIT_NAMES = ("train", "test")
TEST_EVERY = 5  # where the source has no test split: every fifth text of a class is a test text
TEXT_EXTENSION = ".txt"


def read_labelled_lines(path):
    """[(label, text)] of the file `path`, one ``label<TAB>text`` a line; blank lines skipped."""
    pairs = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, tab, body = line.partition("\t")
            if not tab or not label.strip():
                raise SaehError(f"{path}, line {number}: expected a label, a tab, then the text; got {line[:60]!r}")
            pairs.append((label.strip(), body))
    if not pairs:
        raise SaehError(f"{path} holds no texts; expected one 'label<TAB>text' a line")
    return pairs


def read_class_folders(root):
    """[(label, text)] of ``root/<class>/*.txt``, classes and files in sorted order."""
    classes = sorted(entry for entry in visible_entries(root) if os.path.isdir(os.path.join(root, entry)))
    if not classes:
        raise SaehError(f"{root} holds no class folders; expected {root}/<class>/*{TEXT_EXTENSION}")
    pairs = []
    for label in classes:
        folder = os.path.join(root, label)
        files = sorted(entry for entry in visible_entries(folder) if entry.lower().endswith(TEXT_EXTENSION))
        if not files:
            raise SaehError(f"class folder {folder} holds no {TEXT_EXTENSION} files")
        for entry in files:
            with open(os.path.join(folder, entry), encoding="utf-8", errors="replace") as handle:
                pairs.append((label, handle.read()))
    return pairs


def every_fifth_per_class(labels):
    """Boolean mask of the test texts: the TEST_EVERY-th, 2 TEST_EVERY-th, ... text of each class."""
    labels = np.asarray(labels)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        test[rows[TEST_EVERY - 1::TEST_EVERY]] = True
    return test


def read_corpus(data_dir):
    """(train pairs, test pairs) of `data_dir` in any of the module docstring's layouts."""
    data_dir = os.fspath(data_dir)
    if os.path.isfile(data_dir):
        pairs = read_labelled_lines(data_dir)
    elif not os.path.isdir(data_dir):
        raise MissingDataError(f"text corpus {data_dir} does not exist")
    elif all(os.path.isfile(os.path.join(data_dir, name)) for name in SPLIT_FILES):
        return tuple(read_labelled_lines(os.path.join(data_dir, name)) for name in SPLIT_FILES)
    elif all(os.path.isdir(os.path.join(data_dir, name)) for name in SPLIT_NAMES):
        return tuple(read_class_folders(os.path.join(data_dir, name)) for name in SPLIT_NAMES)
    else:
        pairs = read_class_folders(data_dir)
    test = every_fifth_per_class([label for label, _ in pairs])
    return [pair for pair, held in zip(pairs, test) if not held], [pair for pair, held in zip(pairs, test) if held]


@register_source("text", rank=70, takes=("data_dir",), needs_data_dir=True, data_kind="text")
def load_text(data_dir, max_length=text.MAX_LENGTH):
    """`LabelledData` of the labelled texts at `data_dir` (see the module docstring), each packed by
    `saeh.data.text` at the longest training text's length (at most `max_length` tokens) under the vocabulary of
    the training texts. A test text's label unknown to the training texts is an error."""
    train_pairs, test_pairs = read_corpus(data_dir)
    class_names = sorted({label for label, _ in train_pairs})
    unknown = sorted({label for label, _ in test_pairs} - set(class_names))
    if unknown:
        raise SaehError(f"{data_dir}: test label(s) {', '.join(unknown)} have no training texts")
    class_id = {name: index for index, name in enumerate(class_names)}
    train_tokens = [text.tokenise(body) for _, body in train_pairs]
    vocabulary = text.build_vocabulary(train_tokens)
    length = text.packed_length(train_tokens, max_length)

    def text_set(pairs, tokens):
        ids = text.token_ids(tokens, vocabulary, length)
        return ImageSet(text.pack_token_ids(ids), np.array([class_id[label] for label, _ in pairs], np.int64))

    train = text_set(train_pairs, train_tokens)
    test = text_set(test_pairs, [text.tokenise(body) for _, body in test_pairs])
    name = os.path.splitext(os.path.basename(os.path.normpath(os.fspath(data_dir))))[0]
    return labelled_data(name, train, test, class_names, os.fspath(data_dir))
