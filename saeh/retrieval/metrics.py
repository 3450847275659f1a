"""Exact retrieval metrics for Hamming ranking: mAP@k, precision/recall@k, precision within a radius, PR curves.

Conventions, shared by every function here:

- Codes: 0/1 or ±1 arrays (N, bits), any bit length; the query and database sets must have the same bits.
- Labels: (N,) class ids or (N, C) multi-hot, the same kind for queries and database; a database item is
  relevant to a query when they share at least one label.
- Ranking: by Hamming distance, ties broken by database index (a stable order; see `saeh.retrieval.search`).
  `map_at_k(..., ties="average")` gives instead the expected AP over uniformly random orders within ties.
- Every query counts: a query with nothing relevant retrieved scores 0 (precision, recall and AP alike).
- A k above N means N; ``k="all"`` ranks the whole database (no item is dropped).

Two exact scans serve everything: a ranked scan (the relevance of the first `depth` items of each query in the
stable order) for mAP, P@k, R@k and the PR curve by rank, and a histogram scan (per query, how many items and
how many relevant items lie at each distance 0..bits) for the radius metrics and the tie-averaged AP.
"""

import dataclasses

import numpy as np

from saeh import validation
from saeh.errors import SaehError
from saeh.retrieval.search import DEFAULT_CHUNK_PAIRS, HammingScanner, _pack_pair, pack_codes


def _safe_divide(numerator, denominator):
    """numerator / denominator, and 0 where the denominator is 0 (the 'scores 0 and counts' convention)."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    return np.divide(numerator, denominator, out=np.zeros(numerator.shape), where=denominator > 0)


def _depth(k, n_database, name="k"):
    """Number of ranked items that `k` asks for: min(k, N), or N for 'all'."""
    if isinstance(k, str):
        if k == "all":
            return n_database
        raise SaehError(f"{name} must be a positive integer or 'all'; got {k!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SaehError(f"{name} must be a positive integer or 'all'; got {k!r}")
    return min(int(k), n_database)


class _Relevance:
    """Relevance between queries and database items: equal class ids, or multi-hot sets with a common label.

    Class ids are renumbered 0..U-1 over both sets (compact, fast to compare); multi-hot rows are packed into
    64-bit words so that "share a label" is a bitwise AND.
    """

    def __init__(self, query_labels, db_labels, n_query, n_database):
        query = np.asarray(query_labels)
        database = np.asarray(db_labels)
        for name, labels, rows in (("query labels", query, n_query), ("database labels", database, n_database)):
            if labels.ndim not in (1, 2):
                raise SaehError(f"{name} must be (N,) class ids or (N, C) multi-hot; got shape {labels.shape}")
            if len(labels) != rows:
                raise SaehError(f"{name} have {len(labels)} rows but there are {rows} codes")
        if query.ndim != database.ndim or query.shape[1:] != database.shape[1:]:
            kinds = {1: "class ids", 2: "multi-hot"}
            raise SaehError(
                f"query labels {query.shape} ({kinds[query.ndim]}) and database labels {database.shape} "
                f"({kinds[database.ndim]}) differ: both must be (N,) class ids or both (N, C) multi-hot with "
                "the same C"
            )
        self.multi_label = query.ndim == 2
        if self.multi_label:
            self.query = pack_label_sets(query, "query labels")
            self.database = pack_label_sets(database, "database labels")
            self._label_sets = None
        else:
            for name, labels in (("query labels", query), ("database labels", database)):
                if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
                    raise SaehError(f"{name} must be integer class ids; got dtype {labels.dtype}")
            classes, inverse = np.unique(np.concatenate([query, database]), return_inverse=True)
            inverse = inverse.astype(np.min_scalar_type(len(classes)))
            self.query, self.database = inverse[:n_query], inverse[n_query:]
            self._class_sizes = np.bincount(self.database, minlength=len(classes))

    def keep_queries(self, rows):
        """Keep only the queries at `rows` (in that order), e.g. one per distinct (code, labels) pair."""
        self.query = self.query[rows]

    def relevant(self, rows, ids=None):
        """Bool (q, m): query rows against database items `ids` (q, m), or against the whole database."""
        query = self.query[rows]
        database = self.database[None] if ids is None else self.database[ids]
        if not self.multi_label:
            return query[:, None] == database
        return packed_share_a_label(query[:, None, :], database)

    def totals(self, rows):
        """Number of relevant items in the whole database, per query row."""
        if not self.multi_label:
            return self._class_sizes[self.query[rows]]
        if self._label_sets is None:
            self._label_sets = np.unique(self.database, axis=0, return_counts=True)
        sets, counts = self._label_sets
        return packed_share_a_label(self.query[rows][:, None, :], sets[None]) @ counts


def pack_label_sets(labels, name="labels"):
    """(N, C) multi-hot rows (0 and 1, C >= 1) as (N, ceil(C / 64)) uint64 words, one bit per class: the form in
    which `packed_share_a_label` compares them."""
    labels = np.asarray(labels)
    if labels.shape[1] == 0:
        raise SaehError(f"{name} are multi-hot with 0 classes (shape {labels.shape})")
    if not np.all((labels == 0) | (labels == 1)):
        raise SaehError(f"{name} are 2-D, so they must be multi-hot 0/1; for class ids pass a 1-D array")
    return pack_codes(labels != 0, name)


def packed_share_a_label(words_a, words_b):
    """Bool array: whether label sets packed by `pack_label_sets` share a label (broadcast over the leading axes).

    The package's one definition of "share a label" for multi-hot rows (`saeh.pairs.share_a_label` uses it): one
    bitwise AND per 64 classes. Unlike a product of the rows it also compares each query with its own ranked items,
    and in the scan it was about 30 times faster than a checked float64 product (3 queries x 190,000 images, 21
    classes: 1.2 against 35 ms); on 2,000 x 2,000 to 2,000 x 20,000 pairs the two take about as long."""
    shared = None
    for word in range(words_a.shape[-1]):
        word_shared = (words_a[..., word] & words_b[..., word]) != 0
        shared = word_shared if shared is None else shared | word_shared
    return shared


class _Retrieval:
    """A query set and a database, packed and validated, with the two exact scans.

    Queries with the same code and the same labels have the same ranking and the same relevant items, hence the
    same scores; a trained model gives many such duplicates (most queries of a class share its code). The scans
    therefore run over the `n_distinct` distinct (code, labels) pairs, and `expand` turns per-pair values into
    per-query ones (`multiplicity` counts the queries of each pair).
    """

    def __init__(self, query_codes, db_codes, query_labels, db_labels, chunk_pairs=DEFAULT_CHUNK_PAIRS):
        query_words, db_words, self.bits = _pack_pair(query_codes, db_codes)
        self.scanner = HammingScanner(db_words, self.bits, chunk_pairs)
        self.n_query, self.n_database = len(query_words), len(db_words)
        self.relevance = _Relevance(query_labels, db_labels, self.n_query, self.n_database)
        keys = np.column_stack([query_words, self.relevance.query.reshape(self.n_query, -1).astype(np.uint64)])
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        self.inverse = inverse.reshape(-1)
        self.multiplicity = np.bincount(self.inverse, minlength=len(first))
        self.n_distinct = len(first)
        self.query_words = self.scanner.narrow(query_words[first])
        self.relevance.keep_queries(first)

    def expand(self, values):
        """Per-query values (Q, ...) from per-pair values (n_distinct, ...)."""
        return values[self.inverse]

    def ranked_chunks(self, depth):
        """Yield (rows, hits, totals) per chunk of distinct queries: `hits` locates the relevant items among the
        first `depth` of each one's stable ranking; totals (q,) counts its relevant database items."""
        for rows in self.scanner.chunks(self.n_distinct):
            ids, _ = self.scanner.ranked(self.query_words[rows], depth, with_distances=False)
            yield rows, _Hits(self.relevance.relevant(rows, ids)), self.relevance.totals(rows)

    def histogram_chunks(self):
        """Yield (rows, sizes, relevant_sizes) per chunk of distinct queries: items and relevant items at each
        distance, (q, bits+1)."""
        groups = self.bits + 1
        small = np.min_scalar_type(2 * groups - 1)
        for rows in self.scanner.chunks(self.n_distinct):
            distances = self.scanner.distances(self.query_words[rows])
            n_rows = len(distances)
            # One bincount per chunk over bins (row, relevant?, distance); the bin is built in a small type first.
            bins = np.multiply(self.relevance.relevant(rows), groups, dtype=small)
            bins += distances
            keys = np.add(bins, (np.arange(n_rows, dtype=np.intp) * (2 * groups))[:, None], dtype=np.intp)
            counts = np.bincount(keys.ravel(), minlength=n_rows * 2 * groups).reshape(n_rows, 2, groups)
            yield rows, counts.sum(axis=1), counts[:, 1]


class _Hits:
    """Relevant items in ranked lists, in row-major order: per row how many there are (`counts`) and where its run
    starts (`first`); per item its 1-based rank position (`positions`, increasing within a row)."""

    def __init__(self, relevant):
        self.n_rows, self.depth = relevant.shape
        self.counts = np.count_nonzero(relevant, axis=1)
        self.first = np.cumsum(self.counts) - self.counts
        positions = np.flatnonzero(relevant)  # row-major; faster than a 2-D nonzero
        positions -= np.repeat(np.arange(self.n_rows) * self.depth - 1, self.counts)
        self.positions = positions

    def average_precision(self, depth, totals, normalize):
        """Per row AP@depth = (1/R) * sum over relevant items at positions i <= depth of hits_i / i.

        hits_i = relevant items in positions 1..i (so the j-th relevant item has hits = j); R = relevant items
        within the depth (normalize="retrieved") or `totals` (normalize="all"); AP = 0 where R = 0.
        """
        hits = np.arange(1, len(self.positions) + 1, dtype=np.float64)
        hits -= np.repeat(self.first, self.counts)
        terms = hits / self.positions
        retrieved = self.counts
        if depth < self.depth:
            terms[self.positions > depth] = 0.0
            retrieved = self.count_within([depth])[:, 0]
        precision_sum = np.zeros(self.n_rows)
        nonempty = self.counts > 0
        if nonempty.any():  # each non-empty row's terms are one contiguous run
            precision_sum[nonempty] = np.add.reduceat(terms, self.first[nonempty])
        return _safe_divide(precision_sum, retrieved if normalize == "retrieved" else totals)

    def count_within(self, depths):
        """(rows, len(depths)): relevant items among the first d positions, for each d in `depths`."""
        rows = np.repeat(np.arange(self.n_rows), self.counts)
        key = rows * (self.depth + 1) + self.positions  # increasing: nonzero is row-major
        row_base = np.arange(self.n_rows)[:, None] * (self.depth + 1)
        return np.searchsorted(key, row_base + np.asarray(depths)[None, :], side="right") - np.searchsorted(
            key, row_base, side="right"
        )


def _harmonic_sum(before, slots):
    """H = sum_{p=1..L} 1/(s+p) = psi(s+L+1) - psi(s+1), for s = before, L = slots (arrays, L >= 0).

    H is multiplied by s+1 downstream, so its absolute error must shrink like 1/s. A difference of two digammas
    (each ~ln s) does not; for s+1 >= 100 the asymptotic series psi(x) = ln x - 1/(2x) - 1/(12x^2) + 1/(120x^4)
    - 1/(252x^6) + O(x^-8) is differenced term by term, with ln(b/a) = log1p(L/a), which keeps full precision.
    """
    from scipy.special import digamma

    a = before + 1.0
    b = a + slots
    with np.errstate(divide="ignore", invalid="ignore"):  # a < 100 is handled by the digamma branch
        series = (
            np.log1p(slots / a)
            + 0.5 * slots / (a * b)
            + slots * (a + b) / (12.0 * (a * b) ** 2)
            + (1.0 / b**4 - 1.0 / a**4) / 120.0
            - (1.0 / b**6 - 1.0 / a**6) / 252.0
        )
    return np.where(a >= 100, series, digamma(b) - digamma(a))


def _expected_precision_sum(slots, before, relevant_before, share, pair_share):
    """Expected sum of precisions at the relevant positions among `slots` positions that follow `before` items.

    The slots hold their items in a uniformly random order; a slot is relevant with probability `share` and two
    given slots are both relevant with probability `pair_share`; `relevant_before` relevant items precede them.
    For the slot at rank s+p (s = before, M = relevant_before), E[rel * hits] = share*(M+1) + pair_share*(p-1), so

        E = sum_{p=1..L} (share*(M+1) + pair_share*(p-1)) / (s+p)
          = share*(M+1)*H + pair_share*(L - (s+1)*H),    H = sum_{p=1..L} 1/(s+p) (`_harmonic_sum`).
    """
    harmonic = _harmonic_sum(before, slots)
    return share * (relevant_before + 1.0) * harmonic + pair_share * (slots - (before + 1.0) * harmonic)


def _hypergeometric_pmf(population, successes, draws):
    """P(X = x) for X ~ Hypergeometric(population, successes, draws), per row, on x = low + j (j = 0, 1, ...).

    low = max(0, draws - (population - successes)); x past a row's support gets probability 0. Built from the
    ratio P(x+1)/P(x) = (m-x)(r-x) / ((x+1)(n-m-r+x+1)) in log space and normalised to sum to 1, which keeps
    full precision where log-factorials of large n would not. Arguments are (q, 1) float arrays.
    """
    low = np.maximum(0.0, draws - (population - successes))
    high = np.minimum(draws, successes)
    drawn = low + np.arange(int((high - low).max()) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # past the support; masked below
        log_ratio = np.log((successes - drawn) * (draws - drawn)) - np.log(
            (drawn + 1) * (population - successes - draws + drawn + 1)
        )
    log_probability = np.concatenate([np.zeros_like(low), np.cumsum(log_ratio[:, :-1], axis=1)], axis=1)
    log_probability = np.where(drawn <= high, log_probability, -np.inf)
    probability = np.exp(log_probability - log_probability.max(axis=1, keepdims=True))
    return drawn, probability / probability.sum(axis=1, keepdims=True)


def _tie_averaged_average_precision(sizes, relevant_sizes, depth, normalize):
    """Expected AP@depth over uniformly random orders within each group of equal distance (closed form).

    Group g (distance g) holds n items, m relevant, after s items with M relevant. A group that lies wholly
    within the top `depth` contributes, by `_expected_precision_sum` with share = m/n and
    pair_share = m(m-1)/(n(n-1)),

        E_g = (m/n)*(M+1)*H + m(m-1)/(n(n-1)) * (n - (s+1)*H),   H = psi(s+n+1) - psi(s+1).

    The boundary group b, cut after its first r = depth - s_b items, keeps a hypergeometric number X of relevant
    items (n_b items, m_b relevant, r drawn). normalize="all" divides by the fixed number of relevant items in
    the database, so E[AP] = (sum_{g<b} E_g + E_b restricted to r slots) / R_all. normalize="retrieved" divides
    by the random M_b + X, so

        E[AP] = sum_x P(X=x) * (sum_{g<b} E_g + B(x)) / (M_b + x),   B(x) = the sum above with L = r slots,
                share = x/r and pair_share = x(x-1)/(r(r-1)); terms with M_b + x = 0 are 0.
    """
    sizes = sizes.astype(np.float64)
    relevant_sizes = relevant_sizes.astype(np.float64)
    before = np.cumsum(sizes, axis=1) - sizes
    relevant_before = np.cumsum(relevant_sizes, axis=1) - relevant_sizes
    slots = np.clip(depth - before, 0.0, sizes)
    share = _safe_divide(relevant_sizes, sizes)
    pair_share = _safe_divide(relevant_sizes * (relevant_sizes - 1), sizes * (sizes - 1))
    expected = _expected_precision_sum(slots, before, relevant_before, share, pair_share)
    if normalize == "all":
        return _safe_divide(expected.sum(axis=1), relevant_sizes.sum(axis=1))

    boundary = np.argmax(before + sizes >= depth, axis=1)[:, None]
    complete = np.where(np.arange(sizes.shape[1]) < boundary, expected, 0.0).sum(axis=1)[:, None]
    n_b, m_b, s_b, before_relevant_b, r_b = (
        np.take_along_axis(values, boundary, axis=1)
        for values in (sizes, relevant_sizes, before, relevant_before, slots)
    )
    drawn, probability = _hypergeometric_pmf(n_b, m_b, r_b)
    boundary_sum = _expected_precision_sum(
        r_b, s_b, before_relevant_b, drawn / r_b, _safe_divide(drawn * (drawn - 1), r_b * (r_b - 1))
    )
    return (probability * _safe_divide(complete + boundary_sum, before_relevant_b + drawn)).sum(axis=1)


def map_at_k(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    k=1000,
    *,
    ties="index",
    normalize="retrieved",
    per_query=False,
    chunk_pairs=DEFAULT_CHUNK_PAIRS,
):
    """Mean average precision over the top k of the Hamming ranking (k an int, or "all" for the whole database).

    AP@k = (1/R) * sum_{i=1..k} rel_i * P@i, with P@i = (relevant among the first i) / i and
    R = relevant items within the top k (normalize="retrieved", the field's convention) or relevant items in the
    whole database (normalize="all"). A query with R = 0 scores 0 and counts in the mean. k above N means N.

    ties="index" ranks ties by database index (deterministic); ties="average" returns the expected AP over
    uniformly random orders within each group of equal distance, in closed form (see
    `_tie_averaged_average_precision`); the gap between the two shows how much tie order moves the number.
    per_query=True returns the (Q,) array of APs instead of their mean.
    """
    validation.one_of(ties, "ties", ("index", "average"))
    validation.one_of(normalize, "normalize", ("retrieved", "all"))
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    depth = _depth(k, problem.n_database)
    scores = np.empty(problem.n_distinct)
    if ties == "index":
        for rows, hits, totals in problem.ranked_chunks(depth):
            scores[rows] = hits.average_precision(depth, totals, normalize)
    else:
        for rows, sizes, relevant_sizes in problem.histogram_chunks():
            scores[rows] = _tie_averaged_average_precision(sizes, relevant_sizes, depth, normalize)
    scores = problem.expand(scores)
    return scores if per_query else float(scores.mean())


def _precision_recall(problem, ks):
    """Per query P@k and R@k, (Q, len(ks)) each, from one ranked scan as deep as the largest k."""
    depths = np.array([_depth(k, problem.n_database, "each k in ks") for k in ks])
    if not len(depths):
        raise SaehError("ks must hold at least one k; got an empty list")
    precision = np.empty((problem.n_distinct, len(depths)))
    recall = np.empty((problem.n_distinct, len(depths)))
    for rows, hits, totals in problem.ranked_chunks(int(depths.max())):
        counts = hits.count_within(depths)
        precision[rows] = counts / depths
        recall[rows] = _safe_divide(counts, totals[:, None])
    return problem.expand(precision), problem.expand(recall)


def precision_recall_at_k(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    ks=(1, 10, 100, 1000),
    *,
    per_query=False,
    chunk_pairs=DEFAULT_CHUNK_PAIRS,
):
    """Precision and recall of the first k items, for each k in `ks` (ints, or "all").

    P@k = hits_k / k' and R@k = hits_k / (relevant items in the database), with k' = min(k, N) and hits_k the
    relevant items among the first k'; recall is 0 for a query with no relevant item. Returns a dict with
    "k" (as given), "precision" and "recall" (means over queries, one per k; (Q, len(ks)) with per_query=True).
    """
    ks = list(ks)
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    precision, recall = _precision_recall(problem, ks)
    if not per_query:
        precision, recall = precision.mean(axis=0), recall.mean(axis=0)
    return {"k": ks, "precision": precision, "recall": recall}


def _rank_grid(depth, points):
    """About `points` ranks from 1 to depth, log-spaced, always including both ends."""
    return np.unique(np.round(np.geomspace(1, depth, num=points)).astype(np.int64))


def pr_curve_by_rank(
    query_codes, db_codes, query_labels, db_labels, ranks=None, *, points=100, chunk_pairs=DEFAULT_CHUNK_PAIRS
):
    """Mean precision and recall after the first r items, for each rank r (default: about `points` log-spaced ranks
    from 1 to N, both ends included).

    Same definitions as `precision_recall_at_k`; returns {"rank", "precision", "recall"} as arrays.
    """
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    ranks = _rank_grid(problem.n_database, points) if ranks is None else list(ranks)
    precision, recall = _precision_recall(problem, ranks)
    return {"rank": np.asarray(ranks), "precision": precision.mean(axis=0), "recall": recall.mean(axis=0)}


@dataclasses.dataclass(frozen=True)
class RadiusPrecision:
    """Retrieval by Hamming ball: every item at distance <= radius is returned, in no particular order.

    precision: mean over queries of relevant / retrieved, an empty ball scoring 0;
    recall: mean over queries of relevant retrieved / relevant in the database (0 if there is none);
    empty_fraction: share of queries whose ball is empty;
    precision_nonempty: mean precision over the queries with a non-empty ball only (None if every ball is
    empty), the convention of evaluators that drop empty balls.
    """

    radius: int
    precision: float
    recall: float
    empty_fraction: float
    precision_nonempty: float | None

    def as_dict(self):
        return dataclasses.asdict(self)


def _radius_statistics(sizes, relevant_sizes, radius):
    """Per query (precision, recall, empty) within the ball of `radius`, from the distance histograms."""
    retrieved = sizes[:, : radius + 1].sum(axis=1)
    relevant_retrieved = relevant_sizes[:, : radius + 1].sum(axis=1)
    return (
        _safe_divide(relevant_retrieved, retrieved),
        _safe_divide(relevant_retrieved, relevant_sizes.sum(axis=1)),
        retrieved == 0,
    )


def _summarize_radius(precision, recall, empty, radius):
    nonempty = ~empty
    return RadiusPrecision(
        radius=radius,
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        empty_fraction=float(empty.mean()),
        precision_nonempty=float(precision[nonempty].mean()) if nonempty.any() else None,
    )


def precision_within_radius(
    query_codes, db_codes, query_labels, db_labels, radius=2, *, chunk_pairs=DEFAULT_CHUNK_PAIRS
):
    """Precision, recall and empty-ball fraction of Hamming-ball retrieval (distance <= radius): a `RadiusPrecision`.

    Per query: precision = relevant / retrieved within the ball (0 for an empty ball), recall = relevant within
    the ball / relevant in the database; both are averaged over all queries.
    """
    radius = validation.non_negative_int(radius, "radius")
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    per_pair = [np.empty(problem.n_distinct), np.empty(problem.n_distinct), np.empty(problem.n_distinct, dtype=bool)]
    for rows, sizes, relevant_sizes in problem.histogram_chunks():
        for target, values in zip(per_pair, _radius_statistics(sizes, relevant_sizes, radius)):
            target[rows] = values
    return _summarize_radius(*map(problem.expand, per_pair), radius)


def _radius_curves(sizes, relevant_sizes):
    """Per query and radius 0..bits: (precision, recall, empty), each (q, bits+1)."""
    retrieved = np.cumsum(sizes, axis=1)
    relevant_retrieved = np.cumsum(relevant_sizes, axis=1)
    return (
        _safe_divide(relevant_retrieved, retrieved),
        _safe_divide(relevant_retrieved, relevant_retrieved[:, -1:]),
        retrieved == 0,
    )


def pr_curve_by_radius(query_codes, db_codes, query_labels, db_labels, *, chunk_pairs=DEFAULT_CHUNK_PAIRS):
    """Precision and recall of Hamming-ball retrieval for every radius 0..bits (definitions as in
    `precision_within_radius`). Returns {"radius", "precision", "recall", "empty_fraction"} as arrays."""
    problem = _Retrieval(query_codes, db_codes, query_labels, db_labels, chunk_pairs)
    sums = np.zeros((3, problem.bits + 1))
    for rows, sizes, relevant_sizes in problem.histogram_chunks():
        weights = problem.multiplicity[rows]
        sums += [weights @ values for values in _radius_curves(sizes, relevant_sizes)]
    precision, recall, empty_fraction = sums / problem.n_query
    return {
        "radius": np.arange(problem.bits + 1),
        "precision": precision,
        "recall": recall,
        "empty_fraction": empty_fraction,
    }
