"""The retrieval page (`saeh serve`) through Starlette's TestClient, in-process and without a browser: queries by
row, class and at random answer as a plain search of the run's dumped codes does; the radius filter and its ball;
two models side by side; uploads good, bad, empty and too large; thumbnails by id only; and a missing or corrupt run
folder refused at start with one line. The page in a real browser: tests/test_serve_browser.py."""

import importlib.util
import io
import os
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the retrieval page needs Starlette: pip install -e \".[serve]\"")
if not any(importlib.util.find_spec(client) for client in ("httpx2", "httpx")):
    pytest.skip("Starlette's TestClient needs httpx2: pip install -e \".[test]\"", allow_module_level=True)

from starlette.testclient import TestClient  # noqa: E402

from saeh.codes import load_codes  # noqa: E402
from saeh.retrieval import hamming_distances  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(argv):
    from saeh.cli.serve import build_app, build_parser

    return build_app(build_parser().parse_args(argv), log=lambda message: None)


@pytest.fixture(scope="module")
def client(served_runs):
    return TestClient(build([served_runs["saeh"], served_runs["saeh-minus"], "--top-k", "6"]))


def dumped(run_dir, which):
    return load_codes(os.path.join(run_dir, "codes", f"{which}.npz"))


def png_of(image):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def check_answer(answer, run_dir, row, top_k, radius=None):
    """`answer` (one source's) is what a plain search of the run's dumped codes gives for query `row`."""
    query, database = dumped(run_dir, "query"), dumped(run_dir, "database")
    assert answer["code"] == "".join(map(str, query.hash_bin[row]))
    distances = hamming_distances(query.hash_bin[row:row + 1], database.hash_bin)[0]
    order = np.argsort(distances, kind="stable")
    relevant = database.label[order[:top_k]] == query.label[row]
    assert answer["precision_at_k"] == pytest.approx(relevant.mean())
    if radius is not None:
        order = order[distances[order] <= radius]
        assert answer["ball_size"] == len(order)
        expected = (database.label[order] == query.label[row]).mean() if len(order) else 0.0
        assert answer["ball_precision"] == pytest.approx(expected)
    order = order[:top_k]
    results = answer["results"]
    assert [result["row"] for result in results] == order.tolist()
    assert [result["distance"] for result in results] == distances[order].tolist()
    assert [result["relevant"] for result in results] == (database.label[order] == query.label[row]).tolist()
    assert [result["label"] for result in results] == [str(label) for label in database.label[order]]


def test_page_is_self_contained_and_describes_the_sources(client, served_runs):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), "the page must load nothing from outside"
    assert "<script src" not in page.text and "<link" not in page.text
    sources = client.get("/api/sources").json()["sources"]
    assert [source["name"] for source in sources] == ["saeh", "saeh-minus"]
    assert sources[0]["bits"] == 8 and sources[0]["database_size"] == 320 and sources[0]["query_size"] == 40
    assert sources[0]["class_names"] == [str(digit) for digit in range(10)]
    assert sources[1]["settings"]["method"] == "saeh-minus" and "map@1000" in sources[1]["scores"]


def test_a_query_by_row_is_a_search_of_the_dumped_codes_side_by_side(client, served_runs):
    body = client.get("/api/query", params={"row": 7, "k": 5}).json()
    assert body["query"] == {"row": 7, "image": "/image/0/query/7", "label": str(dumped(served_runs["saeh"],
                                                                                           "query").label[7])}
    assert [answer["name"] for answer in body["answers"]] == ["saeh", "saeh-minus"]
    for answer, method in zip(body["answers"], ("saeh", "saeh-minus")):
        assert len(answer["results"]) == 5 and answer["ball_size"] is None
        check_answer(answer, served_runs[method], 7, 5)


def test_the_radius_filter_keeps_the_hamming_ball(client, served_runs):
    for radius in (0, 1, 3):
        body = client.get("/api/query", params={"row": 11, "radius": radius}).json()
        assert body["top_k"] == 6 and body["radius"] == radius  # the server's --top-k is the default k
        for answer, method in zip(body["answers"], ("saeh", "saeh-minus")):
            assert all(result["distance"] <= radius for result in answer["results"])
            check_answer(answer, served_runs[method], 11, 6, radius)


def test_queries_by_class_and_at_random_pick_query_set_images(client, served_runs):
    labels = dumped(served_runs["saeh"], "query").label
    for _ in range(3):
        body = client.get("/api/query", params={"class": 4}).json()
        assert labels[body["query"]["row"]] == 4 and body["query"]["label"] == "4"
        body = client.get("/api/query", params={"random": 1}).json()
        assert 0 <= body["query"]["row"] < len(labels)
        check_answer(body["answers"][1], served_runs["saeh-minus"], body["query"]["row"], 6)


@pytest.mark.parametrize("params, message", [
    ({"row": 40}, r"query index must lie in \[0, 39\]"), ({"row": "x"}, "row must be an integer; got 'x'"),
    ({"row": 1, "k": 0}, "top_k must be"), ({"row": 1, "radius": -1}, "radius must be"),
    ({"class": 10}, "no query image of saeh is of class 10"),
])
def test_bad_queries_are_a_400_with_a_clear_message(client, params, message):
    response = client.get("/api/query", params=params)
    assert response.status_code == 400 and re.search(message, response.json()["error"])


def test_an_uploaded_query_image_answers_as_its_query_set_row(client, served_runs):
    image = np.load(os.path.join(REPO, "saeh", "data", "mnist_sample.npz"))["x_test"][7]
    response = client.post("/api/upload", params={"k": 4, "radius": 2}, content=png_of(image))
    assert response.status_code == 200
    body = response.json()
    assert body["query"]["row"] is None and body["query"]["label"] is None
    assert body["query"]["image"].startswith("data:image/png;base64,")
    for answer, method in zip(body["answers"], ("saeh", "saeh-minus")):
        # the subset's test images are the sample's first ones, so query row 7 is this image
        assert answer["code"] == "".join(map(str, dumped(served_runs[method], "query").hash_bin[7]))
        assert len(answer["results"]) <= 4 and all(result["relevant"] is None for result in answer["results"])
        assert answer["precision_at_k"] is None and answer["ball_size"] >= len(answer["results"])


def test_a_colour_upload_of_another_size_is_fitted_to_the_model(client):
    colour = np.random.default_rng(0).integers(0, 256, (50, 37, 3), dtype=np.uint8)
    response = client.post("/api/upload", content=png_of(colour))
    assert response.status_code == 200 and len(response.json()["answers"][0]["results"]) == 6


@pytest.mark.parametrize("content, status, message", [
    (b"", 400, "the uploaded file is empty"),
    (b"%PDF-1.4 not an image", 400, "the uploaded file is not an image that can be decoded"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 400, "not an image that can be decoded"),
])
def test_an_upload_that_is_not_an_image_is_a_400(client, content, status, message):
    response = client.post("/api/upload", content=content)
    assert response.status_code == status and message in response.json()["error"]


def test_an_upload_over_the_limit_is_a_413(served_runs):
    small = TestClient(build([served_runs["saeh"], "--max-upload", "1K"]))
    response = small.post("/api/upload", content=b"\0" * 1025)
    assert response.status_code == 413 and "more than the limit of 1024" in response.json()["error"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(4):
            yield b"\0" * 400

    response = small.post("/api/upload", content=chunks())
    assert response.status_code == 413 and "larger than the limit of 1024 bytes" in response.json()["error"]


def test_thumbnails_are_served_by_number_only(client):
    from PIL import Image

    response = client.get("/image/1/database/12")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (28, 28)
    assert client.get("/image/1/database/12").content == response.content
    assert client.get("/image/0/query/39").status_code == 200
    for address in ("/image/0/database/320", "/image/2/database/0", "/image/0/train/1", "/image/0/query/40",
                    "/image/0/database/-1", "/image/0/database/..%2F..%2Fetc%2Fpasswd", "/image/0/query/1.png"):
        assert client.get(address).status_code == 404, address


def test_a_saved_index_is_served_by_its_own_rows(served_runs, tmp_path):
    import saeh

    path = saeh.CodeIndex.from_run(served_runs["saeh"]).save(str(tmp_path / "index.npz"))
    client = TestClient(build([path]))
    body = client.get("/api/query", params={"row": 5, "k": 3}).json()
    database = dumped(served_runs["saeh"], "database")
    assert body["answers"][0]["code"] == "".join(map(str, database.hash_bin[5]))
    assert body["answers"][0]["results"][0]["distance"] == 0
    assert client.get("/image/0/database/5").status_code == 404  # an index of dumped codes holds no image files


def test_the_page_listens_on_this_machine_only_by_default(served_runs):
    from saeh.cli.serve import build_parser

    assert build_parser().parse_args([served_runs["saeh"]]).host == "127.0.0.1"


@pytest.mark.parametrize("breakage, message", [
    ("missing", "holds no model.keras"), ("corrupt", "model.keras"), ("nothing", "neither a run folder"),
])
def test_a_missing_or_corrupt_run_folder_is_refused_with_one_line(served_runs, tmp_path, capsys, breakage, message):
    from saeh.cli.commands import main

    run = tmp_path / "run"
    shutil.copytree(served_runs["saeh"], run)
    if breakage == "missing":
        os.remove(run / "model.keras")
    elif breakage == "corrupt":
        (run / "model.keras").write_bytes(b"not a keras archive")
    else:
        run = tmp_path / "no-such-run"
    assert main(["serve", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("saeh serve: error: ") and message in err


def test_concurrent_queries_get_the_answers_sequential_ones_get(tmp_path):
    """Requests run in a thread pool and search one index at once (its scanner's work buffers are per thread), so
    concurrent queries get the answers sequential ones get. An index of 50,000 random codes, queried by
    its own rows: the search alone, long enough for threads to overlap."""
    import concurrent.futures

    from saeh.api.code_index import CodeIndex
    from saeh.codes import Codes
    from saeh.serve.app import create_app
    from saeh.serve.sources import load_index_source

    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (50_000, 32), dtype=np.uint8)
    path = CodeIndex(Codes(hash_org=bits.astype(np.float32), hash_bin=bits, label=rng.integers(0, 10, len(bits))),
                     class_names=[str(digit) for digit in range(10)]).save(str(tmp_path / "random.npz"))
    client = TestClient(create_app([load_index_source(path)]))
    params = [{"row": row, "k": 5 + row % 3, **({"radius": 6} if row % 2 else {})} for row in range(48)]
    expected = [client.get("/api/query", params=one).json() for one in params]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda one: client.get("/api/query", params=one), params))
    assert [response.status_code for response in got] == [200] * len(params)
    assert [response.json() for response in got] == expected
