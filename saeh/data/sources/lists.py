"""List files (``list``), the layout of the field's PyTorch hashing code: in `data_dir`, ``train.txt`` (the training
images), ``test.txt`` (the queries) and, optionally, ``database.txt`` (the database searched), one
``relative/path label...`` per line, integer class ids or multi-hot rows, and an optional ``classes.txt``.
"""

import dataclasses
import os

import numpy as np

from saeh.data.sources import LOAD_ARGUMENTS, register_source
from saeh.data.sources.image_files import checked_root, labelled_images, visible_entries
from saeh.errors import MissingDataError, SaehError

TRAIN_LIST_NAME = "train.txt"
DATABASE_LIST_NAME = "database.txt"
TRAIN_LIST_NAMES = (TRAIN_LIST_NAME, DATABASE_LIST_NAME)  # either marks a folder as list files
TEST_LIST_NAME = "test.txt"
CLASSES_FILE_NAME = "classes.txt"


@dataclasses.dataclass(frozen=True, eq=False)
class ListEntries:
    """The lines of one list file: absolute image paths, labels ((N,) int64 class ids or (N, C) uint8 multi-hot
    rows), the number of label columns, and each entry's line number in `list_file`."""

    list_file: str
    paths: list
    labels: np.ndarray
    width: int
    line_numbers: list

    def same_as(self, other):
        """True when both list the same images with the same labels, in the same order."""
        return ([os.path.normpath(path) for path in self.paths] == [os.path.normpath(path) for path in other.paths]
                and np.array_equal(self.labels, other.labels))


@register_source("list", rank=60, takes=LOAD_ARGUMENTS, needs_data_dir=True)
def load_list_files(root, image_size=None, name=None, stream=False, memory_budget=None, log=None,
                    cache_dir=None):
    """Images named in list files under `root`: ``train.txt`` (the training set), ``test.txt`` (the test set: the
    queries) and ``database.txt`` (the database set searched), every one honoured.

    Without ``database.txt``, the protocols search the training set as for any dataset. A ``database.txt`` that
    lists other images than ``train.txt`` is kept as given (`LabelledData.database`, with each training image's row
    in it); one listing the same images and labels in the same order is the training set. A ``database.txt`` with no
    ``train.txt`` is the training set, searched as the database.

    Each line is ``relative/path label`` (an integer class id) or ``relative/path l_1 ... l_C`` (a multi-hot row of
    0/1, NUS-WIDE/COCO style); paths are relative to `root` (or absolute) and contain no spaces; blank lines and
    lines starting with ``#`` are skipped. Every file must use the same label format. An optional ``classes.txt``
    (one name per line) names the classes and bounds the ids; without it, classes are ``0`` .. ``max id`` (or one per
    column). Multi-hot rows with no label are allowed: such an image is relevant to no query. A malformed line, an
    image missing or labelled differently in two files raises SaehError quoting ``file:line``.

    `stream`, `memory_budget`, `log`, `cache_dir`: as for `load_dataset` (True: the images stay in their files,
    `ImageFiles`).
    """
    root, image_size = checked_root(root, image_size, "list-file folder")
    train_list, database_list, test_list = (os.path.join(root, list_name) for list_name in
                                            (TRAIN_LIST_NAME, DATABASE_LIST_NAME, TEST_LIST_NAME))
    has_train, has_database = os.path.isfile(train_list), os.path.isfile(database_list)
    if not os.path.isfile(test_list) or not (has_train or has_database):
        missing = train_list if os.path.isfile(test_list) else test_list
        raise MissingDataError(
            f"{missing} does not exist: {root} needs the list files {TEST_LIST_NAME} (the queries) and "
            f"{TRAIN_LIST_NAME} (the training images); {DATABASE_LIST_NAME} (the database searched) is optional, and "
            f"alone it stands in for {TRAIN_LIST_NAME}. Lines: 'relative/path label...'; found: "
            + (", ".join(visible_entries(root)) or "nothing")
        )
    train = _read_list_file(train_list if has_train else database_list, root)
    test = _read_list_file(test_list, root, reference=train)
    database = _read_list_file(database_list, root, reference=train) if has_train and has_database else None
    if database is not None and database.same_as(train):
        if log is not None:
            log(f"{database_list} lists the same images as {train_list}: the training set is the database")
        database = None
    every_list = (train, test) if database is None else (train, test, database)
    class_names = _class_names(root, every_list)
    if database is not None:
        _check_same_labels(database, (train, test))
    data = labelled_images(root, name, *((entries.paths, entries.labels) for entries in (train, test)), class_names,
                           image_size, stream, memory_budget, log, cache_dir,
                           database=None if database is None else (database.paths, database.labels))
    if database is not None and log is not None:
        log(f"{database_list}: the database searched, {len(data.database)} images as given ({train_list}: "
            f"{len(data.train)} training images, {np.count_nonzero(data.train_in_database >= 0)} of them in the "
            "database)")
    return data


def _class_names(root, every_list):
    """The class names: classes.txt's lines, else one per label column (multi-hot) or ``0`` .. the highest id;
    a class id beyond classes.txt raises SaehError naming its line."""
    width = every_list[0].width
    classes_file = os.path.join(root, CLASSES_FILE_NAME)
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as handle:
            class_names = tuple(line.strip() for line in handle if line.strip())
        if width > 1 and len(class_names) != width:
            raise SaehError(f"{classes_file} names {len(class_names)} classes but the lists have {width} label columns")
    elif width > 1:
        class_names = tuple(str(column) for column in range(width))
    else:
        highest = max(int(entries.labels.max()) for entries in every_list)
        class_names = tuple(str(label) for label in range(highest + 1))
    if width == 1:
        for entries in every_list:
            too_big = np.flatnonzero(entries.labels >= len(class_names))
            if too_big.size:
                first = too_big[0]
                raise SaehError(
                    f"{entries.list_file}:{entries.line_numbers[first]}: label {entries.labels[first]} is out of "
                    f"range; {classes_file} names {len(class_names)} classes (0..{len(class_names) - 1})"
                )
    return class_names


def _check_same_labels(database, others):
    """Refuse an image that `database` and another list label differently, naming both lines."""
    row_of = {}
    for row, path in enumerate(database.paths):
        row_of.setdefault(os.path.normpath(path), row)
    for entries in others:
        for index, path in enumerate(entries.paths):
            row = row_of.get(os.path.normpath(path))
            if row is not None and not np.array_equal(entries.labels[index], database.labels[row]):
                raise SaehError(
                    f"{entries.list_file}:{entries.line_numbers[index]}: {path} is labelled "
                    f"{_label_text(entries.labels[index])}, but {database.list_file}:{database.line_numbers[row]} "
                    f"labels it {_label_text(database.labels[row])}; an image must have the same labels in every list"
                )


def _label_text(labels):
    return " ".join(str(label) for label in np.atleast_1d(labels))


def _read_list_file(list_file, root, reference=None):
    """Parse one list file → `ListEntries`; with `reference` (the entries of another list file), every line must
    have as many labels as that file's."""
    paths, rows, line_numbers = [], [], []
    width = None if reference is None else reference.width
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
            elif len(values) != width and reference is not None:
                raise SaehError(f"{where}: {len(values)} label(s), but {reference.list_file} has {width} per line; "
                                "all list files must use the same label format")
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
    return ListEntries(list_file, paths, labels, width, line_numbers)
