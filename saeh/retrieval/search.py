"""Exact Hamming search on bit-packed codes: packing, distances, stable top-k ranking, and a searchable index.

Codes are 0/1 (bool, uint8, ...) or ±1 arrays of shape (N, bits), any bit length. Bit j of a code goes to bit
``j % 64`` of 64-bit word ``j // 64``; the last word is padded with zeros, which never changes a distance.
The Hamming distance is ``sum over words of popcount(a XOR b)``.

Ranking is exact and deterministic: by distance, ties broken by database index (a stable order). The whole
ranking is a stable (radix) argsort of the small integer distances. A top k < N is found by counting: a histogram
of each query's distances (bits + 1 values) gives the distance at which the top k ends; the items closer than it,
and the first ones by index at it, are the top k, and only they are sorted.
"""

import threading

import numpy as np

from saeh import validation
from saeh.errors import SaehError

# Pairs (query x database item) scanned per chunk. About half a million keeps the work buffers (~6 MB)
# in cache, which measured 2-3x faster than large chunks, and bounds memory whatever Q and N are.
DEFAULT_CHUNK_PAIRS = 1 << 19


def code_bits(codes, name="codes"):
    """Validate 0/1 or ±1 codes of shape (N, bits) and return them as a bool array (True where the bit is 1).

    0 and -1 both map to 0 and 1 maps to 1, so 0/1 and ±1 codes of the same bits give the same distances.
    An array mixing 0 and -1 is refused: it is neither convention.
    """
    array = np.asarray(codes)
    if array.ndim != 2:
        raise SaehError(f"{name} must be a 2-D array (N, bits); got shape {array.shape}")
    if array.shape[0] == 0:
        raise SaehError(f"{name} is empty: it holds no codes (shape {array.shape})")
    if array.shape[1] == 0:
        raise SaehError(f"{name} has codes of 0 bits (shape {array.shape})")
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.integer):
        low, high = array.min(), array.max()  # no N x bits temporaries for the common integer codes
        valid = -1 <= low and high <= 1
        mixed = low == -1 and valid and np.any(array == 0)
    elif np.issubdtype(array.dtype, np.floating):
        valid = bool(np.all((array == 0) | (array == 1) | (array == -1)))
        mixed = valid and np.any(array == -1) and np.any(array == 0)
    else:
        raise SaehError(f"{name} must hold numbers 0/1 or -1/+1; got dtype {array.dtype}")
    if not valid:
        bad = array[(array != 0) & (array != 1) & (array != -1)].flat[0].item()
        raise SaehError(f"{name} must hold only 0/1 or -1/+1 values; found {bad!r}")
    if mixed:
        raise SaehError(f"{name} mixes 0 and -1: use 0/1 codes or ±1 codes, not both")
    return array > 0


def pack_codes(codes, name="codes"):
    """Pack 0/1 or ±1 codes (N, bits) into (N, ceil(bits / 64)) uint64 words, zero-padded."""
    bits = code_bits(codes, name)
    packed_bytes = np.packbits(bits, axis=1, bitorder="little")
    n_words = -(-bits.shape[1] // 64)
    padded = np.zeros((len(bits), 8 * n_words), dtype=np.uint8)
    padded[:, : packed_bytes.shape[1]] = packed_bytes
    return padded.view("<u8").astype(np.uint64)


def _narrow_words(words, bits):
    """The words a scan XORs: codes of up to 16 bits as 1-2 byte planes, up to 32 bits as uint32, else uint64.

    numpy's popcount is fastest on uint8 and uint32 and slow on uint16 (measured: ~0.1, ~0.6, ~1.0 ns per pair);
    narrower words also move less memory.
    """
    if bits <= 16:
        return np.ascontiguousarray(words[:, :1].astype("<u8").view(np.uint8)[:, : -(-bits // 8)])  # low bytes
    if bits <= 32:
        return words.astype(np.uint32)
    return words


class HammingScanner:
    """Chunked exact scans of queries against one database of packed codes (internal workhorse).

    It reuses its work buffers from chunk to chunk, so arrays it returns that alias them (`distances`) are valid
    only until the next call in the same thread. Each thread has buffers of its own, so that one index serves
    concurrent searches (the retrieval page's).
    """

    def __init__(self, db_words, bits, chunk_pairs=DEFAULT_CHUNK_PAIRS):
        validation.positive_int(chunk_pairs, "chunk_pairs")
        db_words = _narrow_words(np.asarray(db_words), bits)
        self.bits = int(bits)
        self.n_database = len(db_words)
        self.word_dtype = db_words.dtype
        self.db_columns = [np.ascontiguousarray(db_words[:, word]) for word in range(db_words.shape[1])]
        self.rows_per_chunk = max(1, int(chunk_pairs) // self.n_database)
        self.distance_dtype = np.uint8 if self.bits <= 255 else np.uint16
        self._thread = threading.local()  # its `buffers`: {name: array}, one dict per thread

    def narrow(self, query_words):
        """Queries' packed words in the scan's word type."""
        return _narrow_words(np.asarray(query_words), self.bits)

    def chunks(self, n_query):
        """Slices of the query rows, one per chunk."""
        for start in range(0, n_query, self.rows_per_chunk):
            yield slice(start, min(start + self.rows_per_chunk, n_query))

    def _buffer(self, name, rows, dtype):
        buffers = self._thread.__dict__.setdefault("buffers", {})
        buffer = buffers.get(name)
        if buffer is None or buffer.dtype != dtype:
            buffer = buffers[name] = np.empty((self.rows_per_chunk, self.n_database), dtype=dtype)
        return buffer[:rows]

    def _popcount_into(self, query_words, out):
        """out[i, j] = Hamming distance between query i and database item j."""
        rows = len(query_words)
        scratch = self._buffer("xor", rows, self.word_dtype)
        for word, column in enumerate(self.db_columns):
            np.bitwise_xor(query_words[:, word, None], column[None, :], out=scratch)
            if word == 0:
                np.bitwise_count(scratch, out=out)
            else:
                partial = self._buffer("partial", rows, np.uint8)
                np.bitwise_count(scratch, out=partial)
                np.add(out, partial, out=out)
        return out

    def distances(self, query_words):
        """(rows, N) distances of one chunk of queries; aliases a work buffer."""
        return self._popcount_into(query_words, self._buffer("distance", len(query_words), self.distance_dtype))

    def ranked(self, query_words, depth, with_distances=True):
        """The first `depth` database items of each query in the stable order: (ids int64, distances int32 or None).

        The whole ranking is a stable argsort of the small integer distances (numpy radix-sorts 8- and 16-bit
        keys). A top k < N is found by counting instead (`_first_by_counting`), without ordering the rest.
        """
        distances = self.distances(query_words)
        if depth >= self.n_database:
            ids = np.argsort(distances, axis=1, kind="stable")
            if not with_distances:
                return ids, None
            return ids, np.take_along_axis(distances, ids, axis=1).astype(np.int32)
        chosen = self._first_by_counting(distances, depth)
        rows, n_database = distances.shape
        ids = (chosen - np.repeat(np.arange(rows) * n_database, depth)).reshape(rows, depth)
        if not with_distances:
            return ids, None
        return ids, distances.ravel()[chosen].reshape(rows, depth).astype(np.int32)

    def _first_by_counting(self, distances, depth):
        """Flat positions (row-major) in `distances` of the first `depth` items of each row in the stable order.

        Distances take bits + 1 values, so a histogram per row gives the cut: the distance c at which the top
        `depth` ends. Every item closer than c is in, and of the items at c the first ones by index, as many as are
        missing; a stable sort of the chosen items by (row, distance) then orders them. This reads each distance
        twice and sorts only rows x depth items, where a full sort would order all N.
        """
        rows = len(distances)
        groups = self.bits + 1
        counts = np.stack([np.bincount(row, minlength=groups) for row in distances])
        cumulative = np.cumsum(counts, axis=1)
        cut = np.count_nonzero(cumulative < depth, axis=1)  # first distance whose cumulative count reaches depth
        every_row = np.arange(rows)
        at_cut_counts = counts[every_row, cut]
        before_cut = cumulative[every_row, cut] - at_cut_counts
        cut_column = cut.astype(distances.dtype)[:, None]
        closer = np.flatnonzero(distances < cut_column)
        at_cut = np.flatnonzero(distances == cut_column)
        first_at_cut = np.cumsum(at_cut_counts) - at_cut_counts
        at_cut_rows = np.repeat(every_row, at_cut_counts)
        taken = np.arange(len(at_cut)) - first_at_cut[at_cut_rows] < (depth - before_cut)[at_cut_rows]
        chosen = np.concatenate([closer, at_cut[taken]])
        # Both parts are in row-major (index) order, and no (row, distance) pair is in both: a stable sort by
        # (row, distance), as one small integer that numpy radix-sorts when it fits in 16 bits, leaves each
        # distance's items in index order.
        key_type = np.min_scalar_type(rows * groups - 1)
        order_key = (chosen // distances.shape[1]).astype(key_type) * key_type.type(groups)
        order_key += distances.ravel()[chosen]
        return chosen[np.argsort(order_key, kind="stable")]


def hamming_distances(query_codes, db_codes, chunk_pairs=DEFAULT_CHUNK_PAIRS):
    """All (Q, N) Hamming distances, as the smallest unsigned integer type holding `bits` (uint8 up to 255 bits).

    Memory is Q * N entries: for large sets use `HammingIndex` or the metrics, which work in chunks.
    """
    query_words, db_words, bits = _pack_pair(query_codes, db_codes)
    scanner = HammingScanner(db_words, bits, chunk_pairs)
    query_words = scanner.narrow(query_words)
    out = np.empty((len(query_words), scanner.n_database), dtype=scanner.distance_dtype)
    for rows in scanner.chunks(len(query_words)):
        out[rows] = scanner.distances(query_words[rows])
    return out


def _pack_pair(query_codes, db_codes, query_name="query codes", db_name="database codes"):
    """Pack two code sets after checking they have the same bit length."""
    query_bits = code_bits(query_codes, query_name)
    db_bits = code_bits(db_codes, db_name)
    if query_bits.shape[1] != db_bits.shape[1]:
        raise SaehError(
            f"{query_name} have {query_bits.shape[1]} bits but {db_name} have {db_bits.shape[1]}; "
            "both sets must come from the same code length"
        )
    return pack_codes(query_bits, query_name), pack_codes(db_bits, db_name), query_bits.shape[1]


class HammingIndex:
    """Exact Hamming search over a database of 0/1 or ±1 codes.

    ``HammingIndex(db_codes).search(query_codes, k)`` returns ``(ids, distances)``, both (Q, min(k, N)), each row
    ordered by distance with ties broken by database index. ``radius_search(query_codes, radius)`` returns, per
    query, the items at distance <= radius in the same order.

    backend: ``"numpy"`` (default), ``"faiss"`` (a faiss ``IndexBinaryFlat``; needs ``pip install faiss-cpu``) or
    ``"auto"`` (faiss when installed). Both backends return identical results: faiss orders ties arbitrarily, so
    its answers are completed and re-ordered by database index.
    """

    def __init__(self, db_codes, backend="numpy", chunk_pairs=DEFAULT_CHUNK_PAIRS):
        if backend not in ("numpy", "faiss", "auto"):
            raise SaehError(f"backend must be 'numpy', 'faiss' or 'auto'; got {backend!r}")
        bits = code_bits(db_codes, "database codes")
        self.bits = bits.shape[1]
        self._words = pack_codes(bits, "database codes")
        self._scanner = HammingScanner(self._words, self.bits, chunk_pairs)
        self._faiss = None
        if backend in ("faiss", "auto"):
            try:
                import faiss
            except ImportError as error:
                if backend == "faiss":
                    raise SaehError("backend='faiss' needs the faiss package: pip install faiss-cpu") from error
            else:
                self._faiss = faiss.IndexBinaryFlat(64 * self._words.shape[1])
                self._faiss.add(self._words.view(np.uint8))
        self.backend = "faiss" if self._faiss is not None else "numpy"

    def __len__(self):
        return self._scanner.n_database

    def _query_words(self, query_codes):
        bits = code_bits(query_codes, "query codes")
        if bits.shape[1] != self.bits:
            raise SaehError(f"query codes have {bits.shape[1]} bits but the index holds {self.bits}-bit codes")
        return pack_codes(bits, "query codes")

    def search(self, query_codes, k=10):
        """Top-k neighbours of each query: (ids int64 (Q, k'), distances int32 (Q, k')), k' = min(k, N)."""
        k = validation.non_negative_int(k, "k")
        if k == 0:
            raise SaehError("k must be at least 1; got 0")
        words = self._query_words(query_codes)
        depth = min(k, len(self))
        if self._faiss is not None:
            return self._faiss_search(words, depth)
        ids = np.empty((len(words), depth), dtype=np.int64)
        distances = np.empty((len(words), depth), dtype=np.int32)
        scan_words = self._scanner.narrow(words)
        for rows in self._scanner.chunks(len(words)):
            ids[rows], distances[rows] = self._scanner.ranked(scan_words[rows], depth)
        return ids, distances

    def radius_search(self, query_codes, radius):
        """Per query, (ids int64, distances int32) of every item at distance <= radius, in the stable order."""
        radius = validation.non_negative_int(radius, "radius")
        words = self._query_words(query_codes)
        if self._faiss is not None:
            return [self._faiss_ball(words[row : row + 1], radius) for row in range(len(words))]
        results = []
        scan_words = self._scanner.narrow(words)
        for rows in self._scanner.chunks(len(words)):
            distances = self._scanner.distances(scan_words[rows])
            for row in distances:
                # np.flatnonzero keeps index order; a stable sort by distance then gives the stable order.
                ids = np.flatnonzero(row <= radius)
                ball = row[ids].astype(np.int32)
                order = np.argsort(ball, kind="stable")
                results.append((ids[order], ball[order]))
        return results

    def _faiss_ball(self, query_bytes_row, radius):
        # faiss binary range search keeps distances strictly below its radius argument.
        limits, distances, ids = self._faiss.range_search(query_bytes_row.view(np.uint8), radius + 1)
        order = np.lexsort((ids, distances))
        return ids[order].astype(np.int64), distances[order].astype(np.int32)

    def _faiss_search(self, words, depth):
        found_distances, _ = self._faiss.search(words.view(np.uint8), depth)
        ids = np.empty((len(words), depth), dtype=np.int64)
        distances = np.empty((len(words), depth), dtype=np.int32)
        for row in range(len(words)):
            # Everything closer than the k-th distance is in faiss's answer; which tied items at that distance
            # made the cut is arbitrary, so take the ball up to it and keep the first `depth` in stable order.
            ball_ids, ball_distances = self._faiss_ball(words[row : row + 1], int(found_distances[row, -1]))
            ids[row], distances[row] = ball_ids[:depth], ball_distances[:depth]
        return ids, distances
