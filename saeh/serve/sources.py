"""What the retrieval page serves, loaded once at start: a `Source` is a trained model (a run folder, a `.keras` file
or a shipped model's name) with the database codes and images of the data it was trained for, or a saved index
(`saeh.api.code_index.CodeIndex`, a `.npz` of `python -m saeh.cli.index`) with its images' files; each with its query
set, its run's scores and settings, and its images as PNG thumbnails, encoded once and cached."""

import functools
import io
import json
import os
import threading

import numpy as np

from saeh.errors import SaehError

THUMBNAIL_SIDE = 128  # longest side of a thumbnail; smaller images are served at their own size
THUMBNAIL_CACHE = 65536  # thumbnails kept per set: all of a CIFAR-10 or MNIST database's
QUERY_CODE_CACHE = 65536  # codes of query-set images kept per source (a few bytes each)


def png_bytes(image):
    """One (H, W, C) or (H, W) uint8 image as PNG bytes, shrunk (keeping its aspect) to at most THUMBNAIL_SIDE."""
    from PIL import Image

    image = np.asarray(image)
    picture = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    if max(picture.size) > THUMBNAIL_SIDE:
        picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def read_scores(run_dir):
    """The scores.json of a run folder as a dict, or {} when there is none."""
    from saeh.run_folder import RunFolder

    path = RunFolder(run_dir).scores
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return dict(json.load(handle))
    except (OSError, ValueError, TypeError) as error:
        raise SaehError(f"{path} is not a readable scores file ({error}); score the run again with evaluate.py")


class Source:
    """One model or index as the page shows it.

    name: what the page calls it. settings: its run.json (a model) or the identity its index records. scores: its
    run's scores.json ({} when unscored). index: the database's `CodeIndex`. database_images, query_images: the
    images (uint8 (N, H, W, C), in memory or in files) by row, or None where only files are known (`*_paths`).
    query_labels: the query set's labels or None. model: the `HashModel` that encodes image queries, or None until
    an index's recorded model is first needed.
    """

    def __init__(self, name, settings, scores, index, database_images=None, database_paths=None, query_images=None,
                 query_labels=None, query_paths=None, query_codes=None, model=None):
        self.name = name
        self.settings = dict(settings)
        self.scores = dict(scores)
        self.index = index
        self.database_images, self.database_paths = database_images, database_paths
        self.query_images, self.query_labels, self.query_paths = query_images, query_labels, query_paths
        self.query_codes = query_codes  # an index's own rows are its queries: their codes are known
        self._model = model
        self._encoding = threading.Lock()  # one prediction at a time: Keras traces its predict function once
        self.database_png = functools.lru_cache(maxsize=THUMBNAIL_CACHE)(self._database_png)
        self.query_png = functools.lru_cache(maxsize=THUMBNAIL_CACHE)(self._query_png)
        self.code_of_query = functools.lru_cache(maxsize=QUERY_CODE_CACHE)(self._code_of_query)

    @property
    def class_names(self):
        return self.index.class_names

    @property
    def bits(self):
        return self.index.bits

    @property
    def query_count(self):
        for values in (self.query_images, self.query_paths, self.query_codes):
            if values is not None:
                return len(values)
        return 0

    @property
    def model(self):
        """The `HashModel` that encodes image queries (an index's is loaded from the path it records, once)."""
        if self._model is None:
            with self._encoding:
                if self._model is None:
                    self._model = self.index.model_for_images()
        return self._model

    def image_shape(self):
        """(H, W, C) of the images the source's model takes."""
        if self._model is None and self.index.model.get("image_shape"):
            return tuple(self.index.model["image_shape"])
        return self.model.image_shape

    def encode(self, pixels):
        """The 0/1 code (1, bits) of one image (1, H, W, C) uint8 (converted and resized to the model's input)."""
        model = self.model
        with self._encoding:
            return model.encode(pixels).hash_bin

    def search(self, code, top_k=None, radius=None):
        """The `Neighbours` of one code (1, bits) in the database (`CodeIndex.query`; concurrent searches are safe: the
        scanner's work buffers are per thread)."""
        (found,) = self.index.query(code, top_k=top_k, radius=radius)
        return found

    def check_query_row(self, row):
        if not 0 <= row < self.query_count:
            raise SaehError(f"query index must lie in [0, {self.query_count - 1}] (the query set of {self.name}); "
                            f"got {row}")
        return row

    def query_pixels(self, row):
        """Query image `row` as (1, H, W, C) uint8."""
        from saeh.user_images import read_images

        self.check_query_row(row)
        if self.query_images is not None:
            return np.asarray(self.query_images[row:row + 1])
        if self.query_paths is None:
            raise SaehError(f"{self.name} holds the codes of its images but not their files: its queries cannot be "
                            "shown or encoded by another model")
        return read_images([self.query_paths[row]], self.image_shape())

    def query_code(self, row):
        """The code (1, bits) of query image `row`: the index's own where it holds it, else encoded now."""
        self.check_query_row(row)
        if self.query_codes is not None:
            return self.query_codes[row:row + 1]
        return self.encode(self.query_pixels(row))

    def _code_of_query(self, row, query_source):
        """The code (1, bits) by this source's model of image `row` of `query_source`'s query set (cached: a query
        asked again, say with another radius, is not encoded again)."""
        if query_source is self:
            return self.query_code(row)
        return self.encode(query_source.query_pixels(row))

    def query_label(self, row):
        return None if self.query_labels is None else self.query_labels[self.check_query_row(row)]

    def query_rows_of_class(self, class_id):
        """The query rows labelled `class_id` (single labels) or holding it (multi-hot)."""
        if self.query_labels is None:
            raise SaehError(f"the query set of {self.name} has no labels to pick a class from")
        labels = self.query_labels
        return np.flatnonzero(labels == class_id if labels.ndim == 1 else labels[:, class_id] == 1)

    def _image(self, images, paths, row):
        from saeh.data.decoding import decode_image

        if images is not None:
            return np.asarray(images[row:row + 1])[0]
        if paths is not None:
            return decode_image(str(paths[row]))[0]
        return None

    def _database_png(self, row):
        if not 0 <= row < len(self.index):
            return None
        image = self._image(self.database_images, self.database_paths, row)
        return None if image is None else png_bytes(image)

    def _query_png(self, row):
        if not 0 <= row < self.query_count:
            return None
        image = self._image(self.query_images, self.query_paths, row)
        return None if image is None else png_bytes(image)

    def summary(self):
        """The JSON-ready description the page shows: name, bits, sizes, class names, scores and settings."""
        return {"name": self.name, "bits": self.bits, "database_size": len(self.index),
                "query_size": self.query_count, "class_names": list(self.class_names or ()),
                "scores": self.scores, "settings": self.settings}


def load_model_source(spec, data_overrides=None, stream="auto", memory_budget=None, cache_dir=None,
                      safe_mode=True, backend="numpy", log=print):
    """A `Source` of a trained model (run folder, .keras file or shipped model's name) and the data its run.json
    names (`data_overrides` as `saeh.run_data.split_of_run` takes them): its query set, and its database's codes
    as `saeh search` finds them (dumped beside the model, else encoded now)."""
    from saeh.api.code_index import CodeIndex
    from saeh.api.hash_model import load_model
    from saeh.cli.search import database_codes
    from saeh.run_data import split_of_run

    model = load_model(spec, safe_mode=safe_mode)
    scores = read_scores(model.run_dir)
    data, split = split_of_run(model.path, data_overrides, stream=stream, memory_budget=memory_budget,
                               cache_dir=cache_dir)
    log(f"{spec}: {len(split.database)} database and {len(split.query)} query images of {split.dataset}; "
        "finding the database codes")
    index = CodeIndex(database_codes(model, split, log=log), class_names=data.class_names, model=model,
                      backend=backend)
    return Source(os.path.basename(os.path.normpath(model.run_dir)), model.settings, scores, index,
                  database_images=split.database.images, query_images=split.query.images,
                  query_labels=split.query.labels, model=model)


def load_index_source(path, backend="numpy"):
    """A `Source` of a saved index: its images are its database and its query set (as `saeh search --index
    --query-index` queries it), shown from their files; its recorded model encodes uploads."""
    from saeh.api.code_index import CodeIndex
    from saeh.run_folder import RunFolder

    index = CodeIndex.load(path, backend=backend)
    model_path = index.model.get("path")
    scores = read_scores(RunFolder.of_model(model_path).run_dir) if model_path and os.path.isfile(model_path) else {}
    codes = index.codes
    return Source(os.path.basename(path), index.model, scores, index, database_paths=codes.paths,
                  query_labels=codes.label, query_paths=codes.paths, query_codes=codes.hash_bin)


def load_sources(specs, log=print, **options):
    """A `Source` per spec, in order (a `.npz` file is a saved index; anything else a model, `load_model_source`
    with `options`); names made unique."""
    sources = []
    for spec in specs:
        if str(spec).endswith(".npz"):
            source = load_index_source(spec, backend=options.get("backend", "numpy"))
        else:
            source = load_model_source(spec, log=log, **options)
        taken = {other.name for other in sources}
        if source.name in taken:
            source.name = next(f"{source.name} ({number})" for number in range(2, len(specs) + 2)
                               if f"{source.name} ({number})" not in taken)
        sources.append(source)
        log(f"serving {source.name}: {len(source.index)} database codes of {source.bits} bits, "
            f"{source.query_count} queries")
    return sources
