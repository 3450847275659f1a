"""The retrieval page that `saeh serve` (`python -m saeh.cli.serve`) starts: browse what one or more trained models
retrieve, query by an image of the query set or by an upload, and compare models side by side. One module per job:
`sources` (a model or saved index, loaded once, with its data, codes, scores and cached thumbnails), `answers` (one
query answered by every source, as JSON-ready dicts), `page` (the page itself: HTML with inline CSS and JS, no CDN
assets, so it works offline) and `app` (the web application and its routes).

The web framework is Starlette (with uvicorn as its server): small, well kept, ASGI, with a TestClient that runs the
app in-process for fast tests; the page is one static HTML document filled in by its own script from JSON, so no
templating engine (nor a larger framework) is needed.
"""
