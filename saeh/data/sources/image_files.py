"""What the sources of image files (folder, list) share: their arguments checked, their images made into
`LabelledData`, decoded into memory or left in their files (`ImageFiles`, read through the decoded cache when one is
given), and listing a folder.
"""

import os

import numpy as np

from saeh.data.cache import cached_images
from saeh.data.decoding import check_image_size, decode_images
from saeh.data.files import decoded_bytes, format_bytes, scan_image_files
from saeh.data.files import memory_budget as budget_bytes  # the name `memory_budget` is the argument's
from saeh.data.types import ImageSet, labelled_data
from saeh.errors import MissingDataError, SaehError

STREAM_CHOICES = ("auto", True, False)


def checked_root(root, image_size, what):
    """`root` as a path and `image_size` checked, for a source of image files; MissingDataError naming the source
    (`what`: "image folder", "list-file folder") when `root` is not a folder."""
    root = os.fspath(root)
    image_size = check_image_size(image_size)
    if not os.path.isdir(root):
        raise MissingDataError(f"{what} {root} does not exist")
    return root, image_size


def labelled_images(root, name, train, test, class_names, image_size, stream, memory_budget, log, cache_dir,
                    database=None):
    """`LabelledData` named `name` (default: the folder's name) of the images under `root` listed in `train`,
    `test` and, where given, `database` (each (paths, labels)); `stream` and the rest as for `load_dataset`."""
    name = name or os.path.basename(os.path.normpath(root))
    if database is not None:
        return _with_database(root, name, train, test, database, class_names, image_size, stream, memory_budget, log,
                              cache_dir)
    # Decode (or scan) both splits in one go so the channel and size decisions are the same for both.
    images = _images_of(train[0] + test[0], image_size, root, stream, memory_budget, log, cache_dir)
    count = len(train[0])
    train = ImageSet(images[:count], train[1], paths=train[0])
    test = ImageSet(images[count:], test[1], paths=test[0])
    return labelled_data(name, train, test, class_names, root)


def _with_database(root, name, train, test, database, class_names, image_size, stream, memory_budget, log,
                   cache_dir):
    """`labelled_images` with a database set: each file is decoded once, in one go. The database comes first and
    stays one slice of the decoded images (it is usually the largest set and holds the training images); the
    training and test images it lacks follow, and those two sets are gathered from their rows."""
    paths = list(database[0])
    row_of = {}
    for row, path in enumerate(paths):
        row_of.setdefault(os.path.normpath(path), row)
    rows_by_set = []
    for set_paths in (train[0], test[0]):
        rows = []
        for path in set_paths:
            key = os.path.normpath(path)
            if key not in row_of:
                row_of[key] = len(paths)
                paths.append(path)
            rows.append(row_of[key])
        rows_by_set.append(np.asarray(rows, np.int64))
    images = _images_of(paths, image_size, root, stream, memory_budget, log, cache_dir)
    count = len(database[0])
    train_rows, test_rows = rows_by_set
    paths = np.asarray(paths, dtype=str)  # a file listed twice is named as it was first (the database's spelling)
    return labelled_data(name, ImageSet(images[train_rows], train[1], paths[train_rows]),
                         ImageSet(images[test_rows], test[1], paths[test_rows]), class_names, root,
                         database=ImageSet(images[:count], database[1], paths[:count]),
                         train_in_database=np.where(train_rows < count, train_rows, -1))


def _images_of(paths, image_size, source, stream, memory_budget, log, cache_dir=None):
    """The images of `paths`: decoded into memory, or scanned into `ImageFiles` when `stream` is True, or "auto"
    and the decoded images would exceed the memory budget; streamed ones are read from `cache_dir` if given."""
    if stream not in STREAM_CHOICES:
        raise SaehError(f"stream must be True, False or 'auto'; got {stream!r}")
    if stream == "auto":
        budget = budget_bytes(memory_budget)
        needed = decoded_bytes(len(paths), paths[0], image_size) if paths else 0
        stream = needed > budget
        why = (f"decoded, {len(paths)} images would take {format_bytes(needed)}, "
               f"{'over' if stream else 'within'} the memory budget of {format_bytes(budget)}")
    else:
        why = "as asked (stream " + ("on" if stream else "off") + ")"
    if log is not None:
        log(f"{source}: " + ("streaming the images from their files" if stream else "decoding the images into memory")
            + f": {why}")
    if stream:
        files = scan_image_files(paths, image_size=image_size, source=source)
        return files if cache_dir is None else cached_images(files, cache_dir, log)
    if cache_dir is not None and log is not None:
        log(f"{source}: the cache folder {cache_dir} is not used: it holds streamed images")
    return decode_images(paths, image_size=image_size, source=source)


def visible_entries(folder):
    """The names in `folder` that do not start with a dot."""
    return [entry for entry in os.listdir(folder) if not entry.startswith(".")]
