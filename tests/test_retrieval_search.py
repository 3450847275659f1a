"""Packing, Hamming distances and the search index against plain references (bit counting, stable argsort)."""

import importlib.util
import re

import numpy as np
import pytest

from saeh.errors import SaehError
from saeh.retrieval import HammingIndex, hamming_distances, pack_codes
from saeh.retrieval.search import HammingScanner

HAS_FAISS = importlib.util.find_spec("faiss") is not None


def reference_distances(query, database):
    return (np.asarray(query)[:, None, :] > 0).__ne__(np.asarray(database)[None, :, :] > 0).sum(axis=2)


def reference_search(query, database, k):
    distances = reference_distances(query, database)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distances, order, axis=1)


def clustered(rng, n, bits, n_classes=4):
    centres = rng.integers(0, 2, (n_classes, bits), dtype=np.uint8)
    return centres[rng.integers(0, n_classes, n)] ^ (rng.random((n, bits)) < 0.06)


def test_pack_codes_layout_and_padding():
    codes = np.zeros((3, 130), dtype=np.uint8)
    codes[0, 0] = codes[1, 63] = codes[1, 64] = codes[2, 129] = 1
    words = pack_codes(codes)
    assert words.dtype == np.uint64 and words.shape == (3, 3)
    np.testing.assert_array_equal(words[0], [1, 0, 0])
    np.testing.assert_array_equal(words[1], [1 << 63, 1, 0])
    np.testing.assert_array_equal(words[2], [0, 0, 1 << 1])
    np.testing.assert_array_equal(pack_codes(2 * codes.astype(np.int8) - 1), words)
    np.testing.assert_array_equal(pack_codes(codes.astype(bool)), words)


@pytest.mark.parametrize("bits", [1, 7, 12, 33, 64, 65, 130, 300])
def test_hamming_distances_match_bit_counting(bits):
    rng = np.random.default_rng(bits)
    query, database = rng.integers(0, 2, (11, bits)), clustered(rng, 57, bits)
    expected = reference_distances(query, database)
    for chunk_pairs in (100, 1 << 19):
        got = hamming_distances(query, database, chunk_pairs=chunk_pairs)
        np.testing.assert_array_equal(got, expected)
    assert got.dtype == (np.uint8 if bits <= 255 else np.uint16)
    np.testing.assert_array_equal(hamming_distances(2 * query - 1, database), expected)


@pytest.mark.parametrize("bits", [7, 12, 33, 65])
def test_search_matches_stable_argsort(bits):
    rng = np.random.default_rng(bits)
    query, database = clustered(rng, 23, bits), clustered(rng, 140, bits)  # clustered: many ties
    for backend in ("numpy", "auto"):
        index = HammingIndex(database, backend=backend, chunk_pairs=300)
        assert len(index) == 140 and index.bits == bits
        for k in (1, 5, 139, 140, 1000):
            ids, distances = index.search(query, k)
            expected_ids, expected_distances = reference_search(query, database, k)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_array_equal(distances, expected_distances)
            assert ids.dtype == np.int64 and distances.dtype == np.int32


@pytest.mark.parametrize("bits", [7, 33, 65])
def test_radius_search_matches_a_scan(bits):
    rng = np.random.default_rng(bits)
    query, database = clustered(rng, 17, bits), clustered(rng, 90, bits)
    index = HammingIndex(database, chunk_pairs=200)
    distances = reference_distances(query, database)
    for radius in (0, 1, 3, bits):
        results = index.radius_search(query, radius)
        assert len(results) == len(query)
        for row, (ids, ball) in enumerate(results):
            expected_ids = np.argsort(distances[row], kind="stable")
            expected_ids = expected_ids[distances[row][expected_ids] <= radius]
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_array_equal(ball, distances[row][expected_ids])


@pytest.mark.parametrize("n_query, chunk_pairs", [(2000, 1 << 19), (30, 700)], ids=["wide-sort-key", "small-chunks"])
def test_top_k_by_counting_matches_a_full_sort(n_query, chunk_pairs):
    """The top k is chosen by counting distances, then only it is sorted by (row, distance) as one integer key:
    16 bits when a chunk's rows x (bits + 1) fits, else wider (here 7,489 rows of a 70-item database x 41)."""
    rng = np.random.default_rng(4)
    query, database = clustered(rng, n_query, 40), clustered(rng, 70, 40)
    scanner = HammingScanner(pack_codes(database), 40, chunk_pairs)
    words = scanner.narrow(pack_codes(query))
    for depth in (1, 20, 69):
        expected_ids, expected_distances = reference_search(query, database, depth)
        for rows in scanner.chunks(n_query):
            ids, distances = scanner.ranked(words[rows], depth)
            np.testing.assert_array_equal(ids, expected_ids[rows])
            np.testing.assert_array_equal(distances, expected_distances[rows])


def test_one_index_serves_concurrent_searches(monkeypatch):
    """Threads searching one index at once (the retrieval page's requests) get the answers they get one at a time:
    the scanner's work buffers are per thread. Every thread waits at a barrier inside the scan, so that their scans
    overlap for certain, with their chunks interleaved."""
    import concurrent.futures
    import threading

    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (3000, 32), dtype=np.uint8)
    queries = [rng.integers(0, 2, (40, 32), dtype=np.uint8) for _ in range(4)]
    index = HammingIndex(database, chunk_pairs=3000 * 8)  # 8 queries a chunk: 5 chunks a search
    expected = [index.search(query, k=50) for query in queries]
    barrier = threading.Barrier(len(queries))
    popcount = HammingScanner._popcount_into

    def meet_then_count(scanner, query_words, out):
        result = popcount(scanner, query_words, out)
        barrier.wait(timeout=10)  # every thread has filled its buffer; now each reads its own back
        return result

    monkeypatch.setattr(HammingScanner, "_popcount_into", meet_then_count)
    with concurrent.futures.ThreadPoolExecutor(len(queries)) as pool:
        got = list(pool.map(lambda query: index.search(query, k=50), queries))
    for (ids, distances), (expected_ids, expected_distances) in zip(got, expected):
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(distances, expected_distances)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (optional: pip install faiss-cpu)")
@pytest.mark.parametrize("bits", [7, 12, 33, 65])
def test_faiss_backend_gives_identical_results(bits):
    rng = np.random.default_rng(bits)
    query, database = clustered(rng, 21, bits), clustered(rng, 150, bits)
    faiss_index = HammingIndex(database, backend="faiss")
    numpy_index = HammingIndex(database, backend="numpy")
    assert faiss_index.backend == "faiss" and HammingIndex(database, backend="auto").backend == "faiss"
    for k in (1, 7, 150, 400):
        for got, expected in zip(faiss_index.search(query, k), numpy_index.search(query, k)):
            np.testing.assert_array_equal(got, expected)
    for radius in (0, 2, 5):
        for (faiss_ids, faiss_d), (numpy_ids, numpy_d) in zip(
            faiss_index.radius_search(query, radius), numpy_index.radius_search(query, radius)
        ):
            np.testing.assert_array_equal(faiss_ids, numpy_ids)
            np.testing.assert_array_equal(faiss_d, numpy_d)


@pytest.mark.skipif(HAS_FAISS, reason="faiss is installed")
def test_faiss_backend_without_faiss_is_a_clear_error():
    with pytest.raises(SaehError, match="pip install faiss-cpu"):
        HammingIndex(np.zeros((3, 8)), backend="faiss")
    assert HammingIndex(np.zeros((3, 8)), backend="auto").backend == "numpy"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda index: index.search(np.zeros((2, 9)), 3), "query codes have 9 bits but the index holds 8-bit"),
        (lambda index: index.search(np.zeros((2, 8)), 0), "k must be at least 1"),
        (lambda index: index.search(np.zeros((2, 8)), -2), "k must be a non-negative integer"),
        (lambda index: index.radius_search(np.zeros((2, 8)), -1), "radius must be a non-negative integer"),
        (lambda index: index.search(np.full((2, 8), 3), 1), "only 0/1 or -1/+1"),
        (lambda index: HammingIndex(np.zeros((0, 8))), "database codes is empty"),
        (lambda index: HammingIndex(np.zeros((3, 8)), backend="annoy"), "backend must be"),
        (lambda index: hamming_distances(np.zeros((2, 8)), np.zeros((2, 7))), "8 bits but database codes have 7"),
    ],
)
def test_errors_are_clear(call, message):
    with pytest.raises(SaehError, match=re.escape(message)):
        call(HammingIndex(np.zeros((4, 8), dtype=np.uint8)))


def test_retrieval_grid_draws_a_query_and_its_results(tmp_path):
    from saeh.retrieval import plot_retrieval_grid

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 12, 12, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 30)
    codes = (images.reshape(30, -1)[:, :24] > 127).astype(np.uint8)
    ids, distances = HammingIndex(codes[1:]).search(codes[:1], 7)
    path = tmp_path / "grid" / "query.png"
    returned = plot_retrieval_grid(
        images[0], images[1:][ids[0]], distances[0], labels[1:][ids[0]] == labels[0], path, columns=4
    )
    assert str(returned) == str(path) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_retrieval_grid(images[0, :, :, 0] / 255.0, images[1:4, :, :, 0] / 255.0, [0, 1, 2], [True, False, True],
                        tmp_path / "grey.png")  # grey float images
    assert (tmp_path / "grey.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SaehError, match="one distance and one relevance flag per result image"):
        plot_retrieval_grid(images[0], images[1:4], [0, 1], [True, False, True], tmp_path / "bad.png")
