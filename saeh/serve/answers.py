"""One query answered by every served source, as the JSON the page draws: a `Query` (an image of the first source's
query set, or an uploaded image) goes to each source, which encodes it with its own model (once: query-set images'
codes are cached, and an index's own rows have theirs), searches its database by Hamming distance and returns its top
k with their distances, labels, relevance and thumbnails' addresses; with a radius, the Hamming ball's size and
precision too."""

import base64
import dataclasses
import os
import tempfile

import numpy as np

from saeh.errors import SaehError


@dataclasses.dataclass(frozen=True)
class Query:
    """A query image: `row` of the first source's query set (its label known), or uploaded `pixels` (1, H, W, C)."""

    row: int | None = None
    pixels: np.ndarray | None = None
    label: np.ndarray | int | None = None


def decode_upload(data, name="the uploaded file"):
    """An uploaded file's bytes as (1, H, W, C) uint8 pixels, decoded as the package decodes image files
    (`saeh.data.decoding.decode_image`); anything that is not an image is a SaehError saying so."""
    from saeh.data.decoding import decode_image

    if not data:
        raise SaehError(f"{name} is empty; choose an image file (.png, .jpg)")
    handle, path = tempfile.mkstemp(prefix="saeh-upload-")
    try:
        with os.fdopen(handle, "wb") as temporary:
            temporary.write(data)
        try:
            image, _ = decode_image(path)
        except SaehError:
            raise SaehError(f"{name} is not an image that can be decoded; choose an image file (.png, .jpg)") from None
    finally:
        os.remove(path)
    return image.reshape(1, *image.shape[:2], -1)


def label_words(label, class_names):
    """A label in words: its class names where known, else its class ids (as `Neighbours.label_text` writes a
    result's); None for an unknown label."""
    from saeh.api.code_index import Neighbours

    if label is None:
        return None
    one = np.zeros(1, np.int64)
    return Neighbours(rows=one, ids=one, distances=one, labels=np.asarray([label]),
                      class_names=class_names).label_text(0)


def _relevant_flags(source, rows, query_label, labels_comparable):
    from saeh.cli.search import relevance

    return relevance(source.index.codes.label, rows, query_label if labels_comparable else None)


def _fraction(flags):
    return None if not flags or flags[0] is None else float(np.mean(flags))


def source_answer(position, source, code, query_label, labels_comparable, top_k, radius):
    """One source's results for the query's `code` (1, bits): the top `top_k` (within `radius` when given, and the
    Hamming ball's size and precision), precision@k over the unfiltered top k, and the code's bits."""
    nearest = source.search(code, top_k=top_k)
    precision_at_k = _fraction(_relevant_flags(source, nearest.rows, query_label, labels_comparable))
    answer = {"source": position, "name": source.name, "code": "".join(str(int(bit)) for bit in code[0]),
              "precision_at_k": precision_at_k, "radius": radius, "ball_size": None, "ball_precision": None}
    shown = nearest
    if radius is not None:
        ball = source.search(code, radius=radius)
        answer["ball_size"] = len(ball)
        # the paper's precision within radius 2 counts an empty ball as precision 0
        ball_flags = _relevant_flags(source, ball.rows, query_label, labels_comparable)
        answer["ball_precision"] = 0.0 if not len(ball) and query_label is not None else _fraction(ball_flags)
        shown = dataclasses.replace(ball, rows=ball.rows[:top_k], ids=ball.ids[:top_k],
                                    distances=ball.distances[:top_k],
                                    paths=None if ball.paths is None else ball.paths[:top_k],
                                    labels=None if ball.labels is None else ball.labels[:top_k])
    flags = _relevant_flags(source, shown.rows, query_label, labels_comparable)
    answer["results"] = [
        {"rank": rank + 1, "row": int(row), "id": int(shown.ids[rank]), "distance": int(shown.distances[rank]),
         "label": shown.label_text(rank), "relevant": flags[rank],
         "path": None if shown.paths is None else os.path.basename(str(shown.paths[rank])),
         "image": f"/image/{position}/database/{int(row)}"}
        for rank, row in enumerate(shown.rows)]
    return answer


def answer(sources, query, top_k=10, radius=None):
    """The page's answer to `query` (a `Query`): the query (its label, its image's address or inline PNG) and each
    source's `source_answer`, in the order of `sources`."""
    from saeh import validation
    from saeh.serve.sources import png_bytes

    top_k = validation.positive_int(top_k, "top_k")
    radius = None if radius is None else validation.non_negative_int(radius, "radius")
    first = sources[0]
    if query.row is not None:
        label = first.query_label(query.row)
        shown = {"row": query.row, "image": f"/image/0/query/{query.row}"}
    else:
        label = query.label
        shown = {"row": None, "image": "data:image/png;base64,"
                                       + base64.b64encode(png_bytes(query.pixels[0])).decode("ascii")}
    shown["label"] = label_words(label, first.class_names)
    answers = []
    for position, source in enumerate(sources):
        code = source.code_of_query(query.row, first) if query.row is not None else source.encode(query.pixels)
        comparable = label is not None and source.class_names == first.class_names
        answers.append(source_answer(position, source, code, label, comparable, top_k, radius))
    return {"query": shown, "top_k": top_k, "radius": radius, "answers": answers}
