"""The retrieval page's web application (Starlette): the page, the sources' descriptions, queries by the query set's
row, class or at random, uploads, and thumbnails by id.

    GET  /                                   the page (saeh.serve.page)
    GET  /api/sources                        each source's name, bits, sizes, class names, scores and settings
    GET  /api/query?row=R|class=C|random=1   a query-set image's results (&k=K&radius=R)
    POST /api/upload?k=K&radius=R            an uploaded image's results (the request body is the file)
    GET  /image/{source}/{database|query}/{row}   a thumbnail (PNG), by number only

A user's mistake (a bad number, a file that is not an image) is an HTTP 400 with {"error": message}; an upload over
the size limit a 413; an unknown image a 404; never a traceback.
"""

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from saeh.errors import SaehError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
IMAGE_KINDS = ("database", "query")


def _integer(params, name, default=None):
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise SaehError(f"{name} must be an integer; got {value!r}") from None


def _error(message, status):
    return JSONResponse({"error": message}, status_code=status)


def create_app(sources, top_k=10, max_upload_bytes=MAX_UPLOAD_BYTES, seed=None):
    """The Starlette app serving `sources` (`saeh.serve.sources.Source`, the first one's query set is the page's);
    `top_k`: the page's default k; uploads over `max_upload_bytes` are refused; `seed` seeds the random queries."""
    from saeh.serve.answers import Query, answer, decode_upload
    from saeh.serve.page import page_html

    if not sources:
        raise SaehError("nothing to serve: give at least one run folder, model or index")
    randomness = np.random.default_rng(seed)
    first = sources[0]

    def options(params):
        return {"top_k": _integer(params, "k", top_k), "radius": _integer(params, "radius")}

    def home(request):
        return HTMLResponse(page_html(top_k=top_k, max_upload_bytes=max_upload_bytes))

    def describe(request):
        return JSONResponse({"sources": [source.summary() for source in sources], "top_k": top_k,
                             "max_upload_bytes": max_upload_bytes})

    def query(request):
        params = request.query_params
        row, class_id = _integer(params, "row"), _integer(params, "class")
        if class_id is not None:
            rows = first.query_rows_of_class(class_id)
            if not len(rows):
                raise SaehError(f"no query image of {first.name} is of class {class_id}")
            row = int(randomness.choice(rows))
        elif row is None:
            if not first.query_count:
                raise SaehError(f"{first.name} has no query set; upload an image instead")
            row = int(randomness.integers(first.query_count))
        return JSONResponse(answer(sources, Query(row=row), **options(params)))

    async def upload(request):
        declared = _integer(request.headers, "content-length")
        if declared is not None and declared > max_upload_bytes:
            return _error(f"the upload holds {declared} bytes, more than the limit of {max_upload_bytes}", 413)
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > max_upload_bytes:
                return _error(f"the upload is larger than the limit of {max_upload_bytes} bytes", 413)
        settings = options(request.query_params)

        def work():
            return answer(sources, Query(pixels=decode_upload(bytes(data))), **settings)

        return JSONResponse(await run_in_threadpool(work))

    def image(request):
        position, kind, row = (request.path_params[name] for name in ("source", "kind", "row"))
        png = None
        if 0 <= position < len(sources) and kind in IMAGE_KINDS:
            source = sources[position]
            png = (source.database_png if kind == "database" else source.query_png)(row)
        if png is None:
            return _error(f"no {kind} image {row} of source {position}", 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    async def user_error(request, error):
        return _error(str(error), 400)

    routes = [Route("/", home), Route("/api/sources", describe), Route("/api/query", query),
              Route("/api/upload", upload, methods=["POST"]),
              Route("/image/{source:int}/{kind:str}/{row:int}", image)]
    return Starlette(routes=routes, exception_handlers={SaehError: user_error})
