"""List files (``list``): ``train.txt`` (or ``database.txt``) and ``test.txt`` in `data_dir`, one
``relative/path label...`` per line, integer class ids or multi-hot rows, and an optional ``classes.txt``.
"""

import os

import numpy as np

from saeh.data.sources import LOAD_ARGUMENTS, register_source
from saeh.data.sources.image_files import checked_root, labelled_images, visible_entries
from saeh.errors import MissingDataError, SaehError

TRAIN_LIST_NAMES = ("train.txt", "database.txt")
TEST_LIST_NAME = "test.txt"
CLASSES_FILE_NAME = "classes.txt"


@register_source("list", rank=60, takes=LOAD_ARGUMENTS, needs_data_dir=True)
def load_list_files(root, image_size=None, name=None, stream=False, memory_budget=None, log=None,
                    cache_dir=None):
    """Images named in list files under `root`: ``train.txt`` (or ``database.txt`` when there is no
    ``train.txt``) and ``test.txt``.

    Each line is ``relative/path label`` (an integer class id) or ``relative/path l_1 ... l_C`` (a multi-hot row of
    0/1, NUS-WIDE/COCO style); paths are relative to `root` and contain no spaces; blank lines and lines starting
    with ``#`` are skipped. An optional ``classes.txt`` (one name per line) names the classes and bounds the ids;
    without it, classes are ``0`` .. ``max id`` (or one per column). Multi-hot rows with no label are allowed: such
    an image is relevant to no query. A malformed line raises SaehError quoting ``file:line``.

    `stream`, `memory_budget`, `log`, `cache_dir`: as for `load_dataset` (True: the images stay in their files,
    `ImageFiles`).
    """
    root, image_size = checked_root(root, image_size, "list-file folder")
    existing = [os.path.join(root, list_name) for list_name in TRAIN_LIST_NAMES]
    train_list = next((path for path in existing if os.path.isfile(path)), None)
    test_list = os.path.join(root, TEST_LIST_NAME)
    if train_list is None or not os.path.isfile(test_list):
        raise MissingDataError(
            f"{root} needs the list files {TEST_LIST_NAME} and {' or '.join(TRAIN_LIST_NAMES)} "
            "(lines 'relative/path label...'); found: " + (", ".join(visible_entries(root)) or "nothing")
        )
    train_entries = _read_list_file(train_list, root)
    test_entries = _read_list_file(test_list, root)
    widths = {train_entries[2], test_entries[2]}
    if len(widths) > 1:
        raise SaehError(
            f"{train_list} has {train_entries[2]} label column(s) per line but {test_list} has {test_entries[2]}; "
            "both must use the same label format"
        )
    width = widths.pop()
    classes_file = os.path.join(root, CLASSES_FILE_NAME)
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as handle:
            class_names = tuple(line.strip() for line in handle if line.strip())
        if width > 1 and len(class_names) != width:
            raise SaehError(f"{classes_file} names {len(class_names)} classes but the lists have {width} label columns")
    elif width > 1:
        class_names = tuple(str(column) for column in range(width))
    else:
        highest = max(int(labels.max()) for _, labels, _, _ in (train_entries, test_entries))
        class_names = tuple(str(label) for label in range(highest + 1))
    if width == 1:
        for list_file, (_, labels, _, line_numbers) in ((train_list, train_entries), (test_list, test_entries)):
            too_big = np.flatnonzero(labels >= len(class_names))
            if too_big.size:
                first = too_big[0]
                raise SaehError(
                    f"{list_file}:{line_numbers[first]}: label {labels[first]} is out of range; "
                    f"{classes_file} names {len(class_names)} classes (0..{len(class_names) - 1})"
                )
    train, test = (entries[:2] for entries in (train_entries, test_entries))
    return labelled_images(root, name, train, test, class_names, image_size, stream, memory_budget, log, cache_dir)


def _read_list_file(list_file, root):
    """Parse one list file → (absolute paths, labels (N,) int64 or (N, C) uint8, label columns, line numbers)."""
    paths, rows, line_numbers = [], [], []
    width = None
    with open(list_file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{list_file}:{line_number}"
            tokens = text.split()
            if len(tokens) < 2:
                raise SaehError(f"{where}: expected 'relative/path label...'; got {text!r}")
            try:
                values = [int(token) for token in tokens[1:]]
            except ValueError:
                raise SaehError(f"{where}: labels must be integers; got {' '.join(tokens[1:])!r}") from None
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise SaehError(f"{where}: {len(values)} label(s) but earlier lines have {width}")
            if width == 1 and values[0] < 0:
                raise SaehError(f"{where}: class ids must be non-negative; got {values[0]}")
            if width > 1 and any(value not in (0, 1) for value in values):
                raise SaehError(f"{where}: a multi-hot row must hold only 0 and 1; got {' '.join(tokens[1:])!r}")
            path = os.path.join(root, tokens[0])
            if not os.path.isfile(path):
                raise MissingDataError(f"{where}: image {path} does not exist")
            paths.append(path)
            rows.append(values)
            line_numbers.append(line_number)
    if not paths:
        raise SaehError(f"{list_file} lists no images; expected lines 'relative/path label...'")
    labels = np.asarray(rows, dtype=np.int64)
    labels = labels[:, 0] if width == 1 else labels.astype(np.uint8)
    return paths, labels, width, line_numbers
