"""Named, seeded retrieval protocols: which images train the model, which select it, which are the queries and
which form the database searched.

Every split takes a seed; nothing here splits without one. The validation set used for model selection is carved
from the training part with that seed. ``select_on_test=True`` instead makes the validation set the query set, as
the original SAEH code watched the test set as its validation data (and kept a best-by-test-accuracy checkpoint
beside the last epoch's model it used): a leak of the queries into model selection, kept only to reproduce the
original (`--original`) and off by default.

Protocols (sizes on CIFAR-10's 50,000/10,000 and MNIST's 60,000/10,000 train/test images, validation_size=0.1):

- ``ssdh`` (default): SSDH's protocol. Query = the test set, database = the training set, model trained on the
  training set minus the validation images. CIFAR-10: 10,000 queries, 50,000 database, 45,000 train, 5,000
  validation; MNIST: 10,000 / 60,000 / 54,000 / 6,000. It is the default because SAEH's headline table reports
  mAP@1000 against SSDH* (its strongest baseline, evaluated this way) and the SAEH paper states no split of its own.
  The validation images stay in the database: they are training-set images, which is what the database holds.
- ``dpsh``: DPSH's and ADSH's protocol. Train and test are pooled; query = 100 images per class (1,000 random
  images for multi-label data), database = the rest of the pool, train = 500 images per class (5,000 random for
  multi-label data) drawn from the database. The validation set is drawn from the database outside those training
  images, so the 5,000 stay intact; its size is `validation_size` times the training set (500). CIFAR-10: 1,000
  queries, 59,000 database, 5,000 train, 500 validation; MNIST: 1,000 / 69,000 / 5,000 / 500. The counts assume
  classes of at least 6,000 images as in CIFAR-10; with smaller classes they shrink to CIFAR-10's proportions of
  the smallest class (1/60 of it as queries, 1/12 as training images, at least one each), and `Split.describe`
  says so. Example: the bundled MNIST sample (600 images per class) gets 10 queries and 50 training images per
  class.
- ``dsh``: DSH's protocol. Query = database = the test set (each query finds itself at distance 0); model trained
  on the training set minus the validation images. CIFAR-10: 10,000 queries and database, 45,000 train, 5,000
  validation.

A dataset that comes with a database set of its own (`LabelledData.database`: list files' ``database.txt``) fixes
its queries (the test set) and its database: ``ssdh`` searches that database instead of the training set (the
validation set is still carved from the training set with the seed, and `Split.describe` says where each set came
from); ``dpsh`` and ``dsh``, which would replace that database with sets of their own, refuse such a dataset.
"""

import dataclasses
import numbers

import numpy as np

from saeh import defaults
from saeh.data.files import concatenate_images
from saeh.data.types import ImageSet, LabelledData
from saeh.errors import SaehError
from saeh.validation import non_negative_int

PROTOCOL_NAMES = ("ssdh", "dpsh", "dsh")
DEFAULT_PROTOCOL = defaults.PROTOCOL

# DPSH/ADSH counts, and the per-class size of CIFAR-10 (train + test) they were defined on.
DPSH_QUERIES_PER_CLASS = 100
DPSH_TRAIN_PER_CLASS = 500
DPSH_QUERIES_MULTI_LABEL = 1000
DPSH_TRAIN_MULTI_LABEL = 5000
DPSH_REFERENCE_CLASS_SIZE = 6000
DPSH_REFERENCE_POOL_SIZE = 60000

_LEAK_NOTE = "the query set itself: select_on_test leaks the queries into model selection"


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """A protocol applied to a dataset: the four image sets and how they were made.

    `validation_is_query` is True only with ``select_on_test``, where `validation` is the very `query` object.
    `note` records anything unusual (scaled-down counts).
    """

    protocol: str
    seed: int
    train: ImageSet
    validation: ImageSet
    query: ImageSet
    database: ImageSet
    validation_is_query: bool = False
    dataset: str = ""
    note: str = ""
    # For each training image, its row in the database (-1 where it is not there), or None when unknown; the same for
    # each validation image. An asymmetric method's learned codes (one per training image, then one per validation
    # image) stand for these database rows (`saeh.run_codes.learned_database_rows`).
    train_in_database: object = None
    validation_in_database: object = None
    # True when the database is the dataset's own database set (`LabelledData.database`), not one the protocol made.
    database_given: bool = False

    def describe(self):
        """One line for logs: the protocol, the seed and each set's size and origin."""
        origins = _ORIGINS[self.protocol]
        if self.database_given:
            origins = {**origins, "database": _GIVEN_DATABASE_ORIGIN}
        validation = _LEAK_NOTE if self.validation_is_query else origins["validation"]
        parts = [
            f"train {len(self.train)} ({origins['train'] if not self.validation_is_query else origins['train_all']})",
            f"validation {len(self.validation)} ({validation})",
            f"query {len(self.query)} ({origins['query']})",
            f"database {len(self.database)} ({origins['database']})",
        ]
        head = f"{self.dataset}: " if self.dataset else ""
        tail = f"; {self.note}" if self.note else ""
        return f"{head}protocol {self.protocol}, seed {self.seed}: " + ", ".join(parts) + tail


_ORIGINS = {
    "ssdh": {
        "train": "training set minus validation",
        "train_all": "whole training set",
        "validation": "carved from the training set",
        "query": "test set",
        "database": "training set",
    },
    "dpsh": {
        "train": "drawn from the database",
        "train_all": "drawn from the database",
        "validation": "drawn from the database outside the training images",
        "query": "drawn from train+test",
        "database": "rest of train+test",
    },
    "dsh": {
        "train": "training set minus validation",
        "train_all": "whole training set",
        "validation": "carved from the training set",
        "query": "test set",
        "database": "test set, the same images as the queries",
    },
}


_GIVEN_DATABASE_ORIGIN = "the dataset's own database set, as given"


def protocol_names():
    """The protocol names `make_split` understands; the first is the default."""
    return PROTOCOL_NAMES


def make_split(data, protocol=DEFAULT_PROTOCOL, seed=defaults.SEED, validation_size=defaults.VALIDATION_SIZE,
               select_on_test=False):
    """Apply a named retrieval protocol (see the module docstring) to `data` with `seed`.

    `validation_size`: a fraction in (0, 1) of the training part, or a number of images (int >= 1). It is ignored
    with `select_on_test`, where the validation set is the query set and the whole training part trains.
    The same data, protocol, seed and sizes always give the same split.
    """
    if not isinstance(data, LabelledData):
        raise SaehError(f"data must be LabelledData (from load_dataset); got {type(data).__name__}")
    if not isinstance(protocol, str) or protocol.strip().lower() not in PROTOCOL_NAMES:
        raise SaehError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOL_NAMES)}")
    protocol = protocol.strip().lower()
    if seed is None:
        raise SaehError("seed must be given: every split is seeded so that it can be reproduced; got None")
    seed = non_negative_int(seed, "seed")
    _check_validation_size(validation_size)
    if not isinstance(select_on_test, bool):
        raise SaehError(f"select_on_test must be True or False; got {select_on_test!r}")
    if data.database is not None and protocol != "ssdh":
        raise SaehError(
            f"{data.name} comes with its own database set ({len(data.database)} images, e.g. list files' "
            f"database.txt) and its own queries (the test set); protocol {protocol!r} would replace them with sets "
            "of its own. Use protocol ssdh (--protocol ssdh), which searches the given database"
        )
    rng = np.random.default_rng(seed)
    if protocol == "dpsh":
        return _dpsh_split(data, seed, rng, validation_size, select_on_test)
    query = data.test
    database = data.train if protocol == "ssdh" else data.test
    if data.database is not None:
        database = data.database
    if select_on_test:
        train, validation = data.train, query
        train_index = np.arange(len(data.train))
    else:
        train_index, validation_index = _carve(len(data.train), validation_size, rng, "the training set")
        train, validation = data.train.subset(train_index), data.train.subset(validation_index)
    # ssdh: the database is the training set, so a training (or validation) image's database row is its row there;
    # dsh: the database is the test set, which holds no training image (and, with select_on_test, the validation set
    # is the query set, which is not in the database under ssdh). A given database: each training image's row in it
    # is the data's (-1 where it is not there).
    train_rows = np.arange(len(data.train), dtype=np.int64) if data.database is None else data.train_in_database
    in_database = train_rows[train_index] if protocol == "ssdh" else np.full(len(train), -1, np.int64)
    if protocol == "ssdh" and not select_on_test:
        validation_in_database = train_rows[validation_index]
    elif protocol == "dsh" and select_on_test:
        validation_in_database = np.arange(len(validation), dtype=np.int64)
    else:
        validation_in_database = np.full(len(validation), -1, np.int64)
    return Split(
        protocol=protocol,
        seed=seed,
        train=train,
        validation=validation,
        query=query,
        database=database,
        validation_is_query=select_on_test,
        dataset=data.name,
        train_in_database=in_database,
        validation_in_database=validation_in_database,
        database_given=data.database is not None,
    )


def _dpsh_split(data, seed, rng, validation_size, select_on_test):
    both_have_paths = data.train.paths is not None and data.test.paths is not None
    pool = ImageSet(
        concatenate_images(data.train.images, data.test.images),
        np.concatenate([data.train.labels, data.test.labels]),
        paths=np.concatenate([data.train.paths, data.test.paths]) if both_have_paths else None,
    )
    note = ""
    if data.multi_label:
        query_index, train_index, note = _dpsh_multi_label(len(pool), rng)
    else:
        query_index, train_index, note = _dpsh_per_class(pool.labels, data.class_names, rng)
    database_index = np.setdiff1d(np.arange(len(pool)), query_index)  # sorted
    if select_on_test:
        validation_index = None
    else:
        candidates = np.setdiff1d(database_index, train_index)
        count = _validation_count(len(train_index), validation_size)
        if count > len(candidates):
            raise SaehError(
                f"validation_size={validation_size!r} asks for {count} validation images but only "
                f"{len(candidates)} database images lie outside the training images"
            )
        validation_index = np.sort(rng.choice(candidates, size=count, replace=False))
    query = pool.subset(query_index)
    return Split(
        protocol="dpsh",
        seed=seed,
        train=pool.subset(train_index),
        validation=query if select_on_test else pool.subset(validation_index),
        query=query,
        database=pool.subset(database_index),
        validation_is_query=select_on_test,
        dataset=data.name,
        note=note,
        # The training images are drawn from the database (database_index is sorted).
        train_in_database=np.searchsorted(database_index, train_index).astype(np.int64),
        # The validation images too are drawn from the database; with select_on_test they are the queries.
        validation_in_database=(np.full(len(query_index), -1, np.int64) if select_on_test
                                else np.searchsorted(database_index, validation_index).astype(np.int64)),
    )


def _dpsh_per_class(labels, class_names, rng):
    """Per class: draw queries, then training images from the rest (which stays in the database)."""
    class_sizes = np.bincount(labels, minlength=len(class_names))
    present = np.flatnonzero(class_sizes)
    smallest = int(class_sizes[present].min())
    queries, train, note = _dpsh_counts(
        DPSH_QUERIES_PER_CLASS, DPSH_TRAIN_PER_CLASS, smallest, DPSH_REFERENCE_CLASS_SIZE,
        "training images per class", f"smallest class: {smallest} images; the protocol assumes "
        f"{DPSH_REFERENCE_CLASS_SIZE} as in CIFAR-10")
    query_parts, train_parts = [], []
    for label in present:
        members = np.flatnonzero(labels == label)
        if len(members) < queries + train:
            raise SaehError(
                f"class {class_names[label]!r} has {len(members)} image(s); the dpsh protocol needs at least "
                f"{queries + train} per class ({queries} queries + {train} training images)"
            )
        drawn = rng.permutation(members)
        query_parts.append(drawn[:queries])
        train_parts.append(drawn[queries : queries + train])
    return np.sort(np.concatenate(query_parts)), np.sort(np.concatenate(train_parts)), note


def _dpsh_counts(queries, train, available, reference, unit, why):
    """DPSH's query and training counts, scaled by available / reference when the data is smaller than CIFAR-10's
    (at least 1 each); returns (queries, train, note), the note empty when nothing was scaled."""
    if available >= reference:
        return queries, train, ""
    scale = available / reference
    queries, train = max(1, round(queries * scale)), max(1, round(train * scale))
    return queries, train, f"dpsh counts scaled by {scale:.3g} to {queries} queries and {train} {unit} ({why})"


def _dpsh_multi_label(pool_size, rng):
    """Multi-label data: random queries and training images, scaled when the pool is smaller than CIFAR-10's."""
    queries, train, note = _dpsh_counts(
        DPSH_QUERIES_MULTI_LABEL, DPSH_TRAIN_MULTI_LABEL, pool_size, DPSH_REFERENCE_POOL_SIZE, "training images",
        f"pool: {pool_size} images; the protocol assumes {DPSH_REFERENCE_POOL_SIZE}")
    if pool_size < queries + train:
        raise SaehError(
            f"the dpsh protocol needs at least {queries + train} images ({queries} queries + {train} training); "
            f"the dataset has {pool_size}"
        )
    drawn = rng.permutation(pool_size)
    return np.sort(drawn[:queries]), np.sort(drawn[queries : queries + train]), note


def _check_validation_size(validation_size):
    if isinstance(validation_size, bool) or not isinstance(validation_size, numbers.Real):
        raise SaehError(
            f"validation_size must be a fraction in (0, 1) or a number of images; got {validation_size!r}"
        )
    if isinstance(validation_size, numbers.Integral):
        if validation_size < 1:
            raise SaehError(f"validation_size as a count must be at least 1; got {validation_size!r}")
    elif not 0 < validation_size < 1:
        raise SaehError(f"validation_size as a fraction must lie strictly between 0 and 1; got {validation_size!r}")


def _validation_count(total, validation_size):
    """`validation_size` of `total` images: round(fraction * total), at least 1; or the count itself."""
    if isinstance(validation_size, numbers.Integral):
        return int(validation_size)
    return max(1, int(round(validation_size * total)))


def _carve(total, validation_size, rng, what):
    """Random positions in range(total) → (training part, validation part), both sorted."""
    count = _validation_count(total, validation_size)
    if count >= total:
        raise SaehError(
            f"validation_size={validation_size!r} leaves no training images: {what} has {total} image(s)"
        )
    drawn = rng.permutation(total)
    return np.sort(drawn[count:]), np.sort(drawn[:count])
