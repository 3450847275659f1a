"""The dataset types every source returns: `ImageSet` (one split's images and row-aligned labels) and
`LabelledData` (a train and a test `ImageSet`, a database `ImageSet` where the source gives one, class names and
where they came from), each checked on construction.

Images are (N, H, W, C) uint8 with C = 1 (grayscale) or 3 (RGB), in memory or left in their files
(`saeh.data.files.ImageFiles`), pixel values untouched (scaling to [0, 1] is the input pipeline's job); labels are
(N,) int64 class ids or (N, num_classes) uint8 multi-hot rows.
"""

import dataclasses

import numpy as np

from saeh.data.files import ImageFiles, describe_array
from saeh.errors import SaehError


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """One split: images (N, H, W, C) uint8 with C in (1, 3), in memory or left in their files (`ImageFiles`), and
    row-aligned labels.

    Labels are (N,) int64 class ids or (N, num_classes) uint8 multi-hot rows (0/1). Integer label arrays of other
    dtypes are converted; anything else is refused.

    `paths`: the file each image came from, (N,) str, where the images came from files (None otherwise); images left
    in their files carry theirs, so it need not be given for them.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray = None

    def __post_init__(self):
        images = self.images
        if not isinstance(images, (np.ndarray, ImageFiles)) or images.dtype != np.uint8 or images.ndim != 4:
            raise SaehError(
                f"images must be a uint8 array of shape (N, H, W, C); got {describe_array(images)}"
            )
        if images.shape[-1] not in (1, 3):
            raise SaehError(f"images must have 1 or 3 channels (last axis); got shape {images.shape}")
        labels = np.asarray(self.labels)
        if labels.ndim not in (1, 2) or len(labels) != len(images):
            raise SaehError(
                f"labels must be (N,) class ids or (N, num_classes) multi-hot with N = {len(images)}; "
                f"got shape {labels.shape}"
            )
        if labels.size and not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
            raise SaehError(f"labels must be integers; got dtype {labels.dtype}")
        if labels.ndim == 1:
            labels = labels.astype(np.int64, copy=False)
        else:
            if labels.size and not np.all((labels == 0) | (labels == 1)):
                raise SaehError("multi-hot labels (N, num_classes) must hold only 0 and 1")
            labels = labels.astype(np.uint8, copy=False)
        object.__setattr__(self, "labels", labels)
        paths = images.paths if self.paths is None and isinstance(images, ImageFiles) else self.paths
        if paths is not None:
            paths = np.asarray(paths, dtype=str)
            if paths.shape != (len(images),):
                raise SaehError(f"paths must be (N,) file names with N = {len(images)}; got shape {paths.shape}")
        object.__setattr__(self, "paths", paths)

    def __len__(self):
        return len(self.images)

    @property
    def multi_label(self):
        """True when labels are (N, num_classes) multi-hot rows."""
        return self.labels.ndim == 2

    @property
    def image_shape(self):
        """(H, W, C) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, indices):
        """The images and labels at `indices` (integer positions or a boolean mask), copied, in that order."""
        indices = np.asarray(indices)
        if indices.dtype == np.bool_:
            if indices.shape != (len(self),):
                raise SaehError(f"a boolean mask must have shape ({len(self)},); got {indices.shape}")
        elif indices.size == 0:
            indices = indices.astype(np.int64)
        elif not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise SaehError(f"indices must be a 1-D integer array or a boolean mask; got {describe_array(indices)}")
        elif indices.min() < -len(self) or indices.max() >= len(self):
            raise SaehError(
                f"indices must lie in [0, {len(self)}); got values from {indices.min()} to {indices.max()}"
            )
        paths = None if self.paths is None else self.paths[indices]
        return ImageSet(images=self.images[indices], labels=self.labels[indices], paths=paths)


@dataclasses.dataclass(frozen=True, eq=False)
class LabelledData:
    """A dataset as a loader returns it: train and test sets, class names, where it came from, and the database
    set where the source gives one of its own.

    `database`: the images to search, as the source lists them (list files' ``database.txt``), or None when the
    source has none (the protocols then search the training or test set). `train_in_database`: with `database`, each
    training image's row in it (-1 where it is not there), int64 (len(train),).

    Checked on construction: every set non-empty, same image shape, same kind of labels, at least two classes,
    every label in [0, num_classes).
    """

    name: str
    train: ImageSet
    test: ImageSet
    class_names: tuple
    source: str = ""
    database: ImageSet = None
    train_in_database: np.ndarray = None

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        sets = (("train", self.train), ("test", self.test))
        if self.database is not None:
            sets += (("database", self.database),)
        for split, image_set in sets:
            if not isinstance(image_set, ImageSet):
                raise SaehError(f"{split} must be an ImageSet; got {type(image_set).__name__}")
            if len(image_set) == 0:
                raise SaehError(f"the {split} split has no images")
        for split, image_set in sets[1:]:
            if image_set.image_shape != self.train.image_shape:
                raise SaehError(
                    f"train images are {self.train.image_shape} but {split} images are {image_set.image_shape}; "
                    "every split needs the same (H, W, C)"
                )
            if image_set.multi_label != self.train.multi_label:
                raise SaehError(f"train and {split} labels must be of the same kind (class ids or multi-hot rows)")
        self._check_train_in_database()
        num_classes = len(self.class_names)
        if num_classes < 2:
            raise SaehError(
                f"a retrieval dataset needs at least 2 classes; got {num_classes} ({', '.join(self.class_names)})"
            )
        for split, image_set in sets:
            labels = image_set.labels
            if image_set.multi_label:
                if labels.shape[1] != num_classes:
                    raise SaehError(
                        f"{split} multi-hot labels have {labels.shape[1]} columns; expected {num_classes} "
                        "(one per class name)"
                    )
            elif labels.min() < 0 or labels.max() >= num_classes:
                raise SaehError(
                    f"{split} labels must lie in 0..{num_classes - 1} ({num_classes} classes); "
                    f"got values from {labels.min()} to {labels.max()}"
                )
        present = np.count_nonzero(self.train.labels.sum(axis=0)) if self.train.multi_label else len(
            np.unique(self.train.labels)
        )
        if present < 2:
            raise SaehError("the training labels hold a single class; a retrieval dataset needs at least 2")

    def _check_train_in_database(self):
        rows = self.train_in_database
        if self.database is None:
            if rows is not None:
                raise SaehError("train_in_database names rows of a database set, but the data has none")
            return
        rows = np.asarray(rows if rows is not None else np.full(len(self.train), -1))
        if rows.shape != (len(self.train),) or not np.issubdtype(rows.dtype, np.integer):
            raise SaehError(f"train_in_database must hold one integer row per training image ({len(self.train)}); "
                            f"got {describe_array(rows)}")
        if rows.size and (rows.min() < -1 or rows.max() >= len(self.database)):
            raise SaehError(f"train_in_database rows must lie in -1..{len(self.database) - 1} (the database's rows, "
                            f"-1 for none); got values from {rows.min()} to {rows.max()}")
        object.__setattr__(self, "train_in_database", rows.astype(np.int64, copy=False))

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        """(H, W, C) of one image."""
        return self.train.image_shape

    @property
    def multi_label(self):
        return self.train.multi_label


def labelled_data(name, train, test, class_names, source, database=None, train_in_database=None):
    """`LabelledData`, with `source` (a file or folder) named in front of any error it raises."""
    try:
        return LabelledData(name=name, train=train, test=test, class_names=tuple(class_names), source=source,
                            database=database, train_in_database=train_in_database)
    except SaehError as error:
        raise SaehError(f"{source}: {error}") from error
