"""Query latency of the retrieval page (`saeh serve`) over real HTTP, on a 50,000-image database.

    python benchmarks/serve_latency.py                  # the shipped CIFAR-10 SAEH model, 50,000 codes
    python benchmarks/serve_latency.py --models pretrained/saeh_cifar10_32bits pretrained/saeh-minus_cifar10_32bits
    python benchmarks/serve_latency.py --quick          # a smoke run

The page's app is served by uvicorn in a thread of this process, as `saeh serve` serves it, and queried over HTTP
by client threads. The database is --database random codes (default 50,000) of the model's bits, with random labels
of 10 classes, and the query set --queries random images of the model's input shape: random codes are fine for
latency, since a Hamming search costs the same whatever the codes hold (every code is compared), and a query image
costs one encoding by the network whatever its pixels. Nothing of CIFAR-10 itself is needed.

Rows: 'index query' = GET /api/query?row=R of a row not asked before (the query-set image encoded by each model,
then searched), with k = 10; 'index query, radius 2' adds the Hamming ball (its size and precision, the paper's
radius 2); 'index query, asked again' = a row asked before, with radius 2 (its codes are cached, as when the page's
radius or k changes: the search alone); 'upload' = POST
/api/upload of a PNG (decoded, encoded by each model, searched); each first on one client, one request at a time
(p50/p95 of the latency per request), then 'concurrent' = C clients each sending requests back to back: p50/p95 of
the latency each client sees, queries/s over all, and errors. 'holds' = the most concurrent clients tried whose p95
stayed under one second without an error. The CPU is named from /proc/cpuinfo.
"""

import argparse
import concurrent.futures
import http.client
import io
import itertools
import os
import socket
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CLASSES = 10
BUDGET_SECONDS = 1.0  # 'holds': p95 under this
ASKED_AGAIN = 10  # query rows asked before the measurement, then asked again


def random_source(spec, n_database, n_queries, seed):
    """A `saeh.serve.sources.Source` of the model `spec` with random database codes and random query images."""
    from saeh.api.code_index import CodeIndex
    from saeh.api.hash_model import load_model
    from saeh.codes import Codes
    from saeh.serve.sources import Source, read_scores

    model = load_model(spec)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n_database, model.bits), dtype=np.uint8)
    codes = Codes(hash_org=bits.astype(np.float32), hash_bin=bits, label=rng.integers(0, CLASSES, n_database))
    index = CodeIndex(codes, class_names=[str(number) for number in range(CLASSES)], model=model)
    shape = model.image_shape
    database_images = np.broadcast_to(rng.integers(0, 256, (1, *shape), dtype=np.uint8), (n_database, *shape))
    queries = rng.integers(0, 256, (n_queries, *shape), dtype=np.uint8)
    return Source(os.path.basename(os.path.normpath(model.run_dir)), model.settings, read_scores(model.run_dir),
                  index, database_images=database_images, query_images=queries,
                  query_labels=rng.integers(0, CLASSES, n_queries), model=model)


def serve(app):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def request(port, method, path, body=None):
    """(seconds, HTTP status) of one request on a fresh connection."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"} if body
                           else {})
        response = connection.getresponse()
        response.read()
        status = response.status
    finally:
        connection.close()
    return time.perf_counter() - start, status


def upload_png(shape, seed):
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if shape[-1] == 1 else pixels).save(out, format="PNG")
    return out.getvalue()


def kinds(n_queries, png):
    """name -> a function of the request's number giving (method, path, body). The index queries take query-set
    rows never asked before (each is encoded), except 'asked again', which takes rows already asked (their codes
    are cached: the search alone)."""
    fresh = itertools.count(ASKED_AGAIN)  # rows below ASKED_AGAIN are the warm-up's and the 'asked again' rows

    def fresh_row():
        row = next(fresh)
        if row >= n_queries:
            raise SystemExit(f"--queries {n_queries} is too few for the requests asked: raise it")
        return row

    return {"index query": lambda number: ("GET", f"/api/query?row={fresh_row()}&k=10", None),
            "index query, radius 2": lambda number: ("GET", f"/api/query?row={fresh_row()}&k=10&radius=2", None),
            "index query, asked again": lambda number: ("GET", f"/api/query?row={number % ASKED_AGAIN}&k=10&radius=2",
                                                        None),
            "upload": lambda number: ("POST", "/api/upload?k=10", png)}


def measure(port, make, clients, per_client):
    """Latencies (s), statuses and wall seconds of `clients` threads each sending `per_client` requests."""
    def client(which):
        return [request(port, *make(which * per_client + number)) for number in range(per_client)]

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [item for batch in pool.map(client, range(clients)) for item in batch]
    wall = time.perf_counter() - start
    return np.array([seconds for seconds, _ in results]), [status for _, status in results], wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["pretrained/saeh_cifar10_32bits"],
                        help="the models served (two or more: side by side, each encodes every query)")
    parser.add_argument("--database", type=int, default=50_000, help="random database codes per model")
    parser.add_argument("--queries", type=int, default=2_000, help="random query images")
    parser.add_argument("--requests", type=int, default=100, help="requests per row, one client")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 codes, few requests")
    args = parser.parse_args()
    if args.quick:
        args.database, args.queries, args.requests, args.concurrency = 5_000, 100, 10, [1, 4]

    from bench_train import cpu_description  # beside this script

    from saeh.serve.app import create_app

    started = time.perf_counter()
    sources = [random_source(spec, args.database, args.queries, seed) for seed, spec in enumerate(args.models)]
    server, port = serve(create_app(sources))
    shape = sources[0].image_shape()
    png = upload_png(shape, 0)
    for row in range(ASKED_AGAIN):  # warm up (each model's first prediction traces it) and cache these rows' codes
        request(port, "GET", f"/api/query?row={row}")
    request(port, "POST", "/api/upload", png)
    cpu, _ = cpu_description()
    print(f"CPU: {cpu} ({os.cpu_count()} logical CPUs for this process's machine)")
    print(f"models: {', '.join(source.name for source in sources)} ({sources[0].bits} bits, input {shape}); "
          f"database: {args.database:,} random codes per model; query set: {args.queries:,} random images; "
          f"upload: a {shape[0]}x{shape[1]} PNG of {len(png):,} bytes; loaded and warmed up in "
          f"{time.perf_counter() - started:.1f} s")
    print()
    print(f"{'what':24s} {'clients':>7s} {'requests':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'queries/s':>9s} "
          f"{'errors':>6s}")
    holds, measured = {}, kinds(args.queries, png)
    for name, make in measured.items():
        for clients in args.concurrency:
            per_client = max(1, args.requests // clients) if clients > 1 else args.requests
            seconds, statuses, wall = measure(port, make, clients, per_client)
            errors = sum(status != 200 for status in statuses)
            p50, p95 = np.percentile(seconds, [50, 95]) * 1000
            print(f"{name:24s} {clients:7d} {len(seconds):8d} {p50:8.1f} {p95:8.1f} {len(seconds) / wall:9.1f} "
                  f"{errors:6d}", flush=True)
            if not errors and p95 < BUDGET_SECONDS * 1000:
                holds[name] = clients
    print()
    for name in measured:
        print(f"holds: {name}: {holds.get(name, 0)} concurrent clients with p95 under {BUDGET_SECONDS:.0f} s and "
              f"no error (of {', '.join(map(str, args.concurrency))} tried)")
    server.should_exit = True


if __name__ == "__main__":
    main()
