"""A saved, searchable index of hash codes: `CodeIndex` holds a database's codes with each image's id, file and
labels (where known) and the identity of the model that made them; it is built from images or from the codes dumped
beside a run, saved to one `.npz` and queried by codes or images (`saeh.retrieval.search.HammingIndex`: exact,
nearest first, ties broken by database index as the evaluator breaks them)."""

import dataclasses
import json
import os

import numpy as np

from saeh.api.hash_model import HashModel, load_model  # a model encodes image queries
from saeh.errors import SaehError

FORMAT = "saeh-code-index-1"  # written into every index file, so that another kind of .npz is refused by name


@dataclasses.dataclass(frozen=True, eq=False)
class Neighbours:
    """One query's results, nearest first: `rows` (positions in the index), `ids`, Hamming `distances`, and the
    images' `paths`, `labels` and the index's `class_names` where known (else None)."""

    rows: np.ndarray
    ids: np.ndarray
    distances: np.ndarray
    paths: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: tuple | None = None

    def __len__(self):
        return len(self.rows)

    def label_text(self, position):
        """The label of result `position` in words: its class name(s) where known, else its class id(s); None when
        the index holds no labels."""
        if self.labels is None:
            return None
        label = self.labels[position]
        classes = np.flatnonzero(label) if np.ndim(label) else [int(label)]
        names = self.class_names
        return ", ".join(names[index] if names and index < len(names) else str(index) for index in classes)

    def lines(self, what="image"):
        """One line per result: rank, `what` and the image's id, its file and label where known, and its distance:
        ``  1. image 12 photos/cat/3.png [cat] at Hamming distance 2``."""
        lines = []
        for position in range(len(self)):
            path = f" {self.paths[position]}" if self.paths is not None else ""
            label = self.label_text(position)
            label = f" [{label}]" if label is not None else ""
            lines.append(f"{position + 1:3d}. {what} {self.ids[position]}{path}{label} at Hamming distance "
                         f"{self.distances[position]}")
        return lines


class CodeIndex:
    """Codes of a database of images, searchable by Hamming distance.

    codes: `saeh.codes.Codes` of the database (their `ids`, `paths` and labels are the results'; ids default to the
    row numbers). class_names: the names of the label classes, or None. model: the identity of the model that made
    the codes (`HashModel.identity`), or a `HashModel` (kept, to encode image queries), or None.
    """

    def __init__(self, codes, class_names=None, model=None, backend="numpy"):
        from saeh.retrieval.search import HammingIndex

        if codes.ids is None:
            codes = dataclasses.replace(codes, ids=np.arange(len(codes), dtype=np.int64))
        self.codes = codes
        self.class_names = None if class_names is None else tuple(str(name) for name in class_names)
        self._model = model if isinstance(model, HashModel) else None
        self.model = dict(model.identity if isinstance(model, HashModel) else model or {})
        if self.model.get("hash_bits") not in (None, codes.bits):
            raise SaehError(f"the codes have {codes.bits} bits but the model that made them has "
                            f"{self.model['hash_bits']}")
        self._search = HammingIndex(codes.hash_bin, backend=backend)

    def __len__(self):
        return len(self.codes)

    def __repr__(self):
        return f"CodeIndex({len(self)} images, {self.bits} bits, model={self.model.get('path')!r})"

    @property
    def bits(self):
        return self.codes.bits

    @classmethod
    def from_images(cls, model, images, labels=None, class_names=None, backend="numpy"):
        """Encode `images` with `model` (a `HashModel`, or what `saeh.load_model` takes) and index them; `images`
        and `labels` as for `HashModel.encode` (a folder of class folders brings its labels and class names)."""
        from saeh.user_images import listing_of

        model = load_model(model)
        codes = model.encode(images, labels=labels)
        listing = listing_of(images)
        if class_names is None and listing is not None:
            class_names = listing.class_names
        return cls(codes, class_names=class_names, model=model, backend=backend)

    @classmethod
    def from_run(cls, model, class_names=None, backend="numpy"):
        """The index of the database codes dumped beside `model` (its run folder's codes/database.npz), used as they
        are rather than encoded again. `model`: a `HashModel`, or what `saeh.load_model` takes."""
        model = load_model(model)
        codes = model.dumped_database_codes()
        if codes is None:
            raise SaehError(f"no database codes are dumped beside {model.path}; run generate_hash.py --load-path "
                            f"{model.path}, or index images with CodeIndex.from_images")
        return cls(codes, class_names=class_names, model=model, backend=backend)

    def save(self, path, overwrite=False):
        """Write the index to the `.npz` file `path` atomically (`saeh.atomic`)."""
        from saeh.atomic import atomic_path

        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise SaehError(f"index file {path}: expected a name ending in .npz")
        arrays = {"format": np.array(FORMAT), "hash_bin": self.codes.hash_bin, "hash_org": self.codes.hash_org,
                  "ids": self.codes.ids, "model": np.array(json.dumps(self.model, sort_keys=True))}
        optional = {"label": self.codes.label, "paths": self.codes.paths,
                    "class_names": None if self.class_names is None else np.array(self.class_names, dtype=str)}
        arrays.update({name: value for name, value in optional.items() if value is not None})
        with atomic_path(path, overwrite=overwrite) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path, backend="numpy"):
        """An index saved by `save`."""
        from saeh.codes import Codes, read_npz
        from saeh.errors import MissingDataError

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MissingDataError(f"index file {path} does not exist; build one with python -m saeh.cli.index")
        arrays = read_npz(path, "index file")
        if str(arrays.get("format", "")) != FORMAT:
            raise SaehError(f"{path} is not a saved CodeIndex (no format {FORMAT!r} in it); build one with "
                            "python -m saeh.cli.index")
        codes = Codes(hash_org=arrays["hash_org"], hash_bin=arrays["hash_bin"], label=arrays.get("label"),
                      ids=arrays["ids"], paths=arrays.get("paths"))
        class_names = arrays.get("class_names")
        return cls(codes, class_names=None if class_names is None else tuple(class_names.tolist()),
                   model=json.loads(str(arrays["model"])), backend=backend)

    def model_for_images(self):
        """The `HashModel` that made the codes (loaded from the path the index records), to encode image queries."""
        if self._model is None:
            path = self.model.get("path")
            if not path:
                raise SaehError("this index records no model, so image queries cannot be encoded; query it by codes")
            self._model = load_model(path)
        return self._model

    def query_codes(self, queries):
        """0/1 codes (Q, bits) of `queries`: codes as they are (an array (Q, bits) or `Codes`), else images encoded
        by the index's model (anything `HashModel.encode` takes)."""
        from saeh.codes import Codes

        if isinstance(queries, Codes):
            return queries.hash_bin
        if isinstance(queries, np.ndarray) and queries.ndim == 2:
            return queries
        return self.model_for_images().encode(queries).hash_bin

    def query(self, queries, top_k=10, radius=None):
        """For each query, its `Neighbours` in the index, nearest first, ties broken by database index.

        queries: codes ((Q, bits) 0/1 or ±1, or `Codes`) or images (an array, image files, a folder), encoded by
        the index's model. top_k: at most this many results (None: no limit, with a radius). radius: only results
        within this Hamming distance (None: any distance).
        """
        from saeh import validation

        if top_k is None and radius is None:
            raise SaehError("give top_k, radius or both: without either a query would return the whole index")
        top_k = None if top_k is None else validation.positive_int(top_k, "top_k")
        radius = None if radius is None else validation.non_negative_int(radius, "radius")
        codes = self.query_codes(queries)
        if radius is None:
            ids, distances = self._search.search(codes, top_k)
            found = list(zip(ids, distances))
        else:
            found = [(rows[:top_k], distances[:top_k]) if top_k is not None else (rows, distances)
                     for rows, distances in self._search.radius_search(codes, radius)]
        return [self._neighbours(rows, distances) for rows, distances in found]

    def _neighbours(self, rows, distances):
        def pick(values):
            return None if values is None else values[rows]

        return Neighbours(rows=rows, ids=self.codes.ids[rows], distances=distances, paths=pick(self.codes.paths),
                          labels=pick(self.codes.label), class_names=self.class_names)
