"""Time the retrieval evaluator against the usual ways of computing mAP, on the same codes in one run.

    python benchmarks/bench_retrieval.py            # full run (a few minutes)
    python benchmarks/bench_retrieval.py --quick    # small smoke run
    python benchmarks/bench_retrieval.py --graded-only    # only DSRH's graded measures against mAP

Methods, per case:
- reference: the exact per-query evaluation (float Hamming distances from a matrix product, a full stable argsort,
  vectorised AP). It takes seconds per hundred queries, so it runs on a subset of the queries and its time is
  scaled to all of them (marked '*').
- popular loop: the same as it is usually written, with numpy's default (unstable) argsort; on heavily tied
  codes its mAP depends on the sort's internals. Same subset and scaling.
- bare scan: XOR + popcount of every pair with nothing else: the floor for any exact method.
- faiss: faiss `IndexBinaryFlat` k-NN (top min(k, 1000)), single-threaded like the rest; skipped when faiss is
  not installed. faiss does not specify how it orders ties.
- ours: `saeh.retrieval.map_at_k` (ties broken by database index) and with ties="average". It scores each
  distinct (code, label) pair of the queries once (duplicates have the same ranking and relevance); each case
  prints how many distinct pairs its queries hold, since that, like the codes, is part of what is measured.

Cases: Q x N = 1,000 x 59,000 with mAP over all (the DPSH/ADSH protocol) and 10,000 x 50,000 with mAP@1000 (SSDH),
at 12/32/48/64 bits, on clustered and random codes (see `make_codes`); then 1,000 x 1,000,000 at 64 bits.

Then DSRH's graded measures on multi-label codes (`make_multi_label`): NDCG@100, ACG@100 and weighted mAP@k
(`saeh.retrieval.graded`), each alone and the three from one scan as `evaluate_codes` computes them, timed against
map_at_k on the same codes ('vs mAP' = the row's CPU time / mAP@k's), and the whole `evaluate_codes` report.

Columns: 'cpu s' = CPU seconds of this process (every method is single-threaded: BLAS and OpenMP are pinned to one
thread), 'wall s' = elapsed seconds; on a shared machine CPU time is the steadier measure, so the ratios use it:
'vs ref' = reference time / method time (speed-up), 'vs scan' = method time / bare scan time; mAP over all
queries, except '*' rows (the subset); 'd mAP' = the method's mAP minus the reference's on the same subset of
queries; peak = tracemalloc peak of the allocations made during a separate, untimed run (numpy reports its
buffers to tracemalloc; the input codes exist beforehand and are not counted). The per-query methods' peak does
not grow with Q, so they are traced on 20 queries; faiss allocates in C++, unseen ('-').
"""

import argparse
import os
import sys
import time
import tracemalloc

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads BLAS: keep every method single-threaded

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from saeh.codes import make_codes as codes_with_labels  # noqa: E402
from saeh.retrieval import acg_at_k, evaluate_codes, map_at_k, ndcg_at_k, pack_codes, weighted_map_at_k  # noqa: E402
from saeh.retrieval.graded import DSRH_DEPTH, graded_scores  # noqa: E402
from saeh.retrieval.metrics import _Retrieval  # noqa: E402
from saeh.retrieval.search import HammingScanner  # noqa: E402

N_CLASSES = 10


def make_codes(kind, n_query, n_database, bits, seed):
    """Codes and labels for queries and database.

    clustered: like a trained model's: each class has a centre code; 90% of items sit on their own class's
    centre and 10% on another's (the model's mistakes); each bit then flips with probability 4%. Distances
    concentrate on a few small values, so they tie a lot. random: uniform bits, labels unrelated to codes.
    """
    rng = np.random.default_rng(seed)
    n = n_query + n_database
    labels = rng.integers(0, N_CLASSES, n)
    if kind == "random":
        codes = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    else:
        centres = rng.integers(0, 2, (N_CLASSES, bits), dtype=np.uint8)
        centre_of = np.where(rng.random(n) < 0.1, rng.integers(0, N_CLASSES, n), labels)
        codes = centres[centre_of] ^ (rng.random((n, bits)) < 0.04).astype(np.uint8)
    return codes[:n_query], codes[n_query:], labels[:n_query], labels[n_query:]


def average_precisions(relevant):
    """AP of each row of a ranked relevance matrix, normalised by the relevant items retrieved (0 if none)."""
    hits = np.cumsum(relevant, axis=1)
    positions = np.arange(1, relevant.shape[1] + 1)
    precision_sum = np.where(relevant, hits / positions, 0.0).sum(axis=1)
    return np.divide(precision_sum, hits[:, -1], out=np.zeros(len(relevant)), where=hits[:, -1] > 0)


def per_query_map(query, database, query_labels, db_labels, depth, sort_kind):
    """Per query: float distances, argsort (stable: the exact reference; default quicksort: the popular loop)."""
    bits = query.shape[1]
    query_signs = 2 * query.astype(np.float32) - 1
    db_signs = 2 * database.astype(np.float32) - 1
    scores = np.empty(len(query))
    for i in range(len(query)):
        distances = 0.5 * (bits - db_signs @ query_signs[i])
        order = np.argsort(distances, kind=sort_kind)[:depth]
        scores[i] = average_precisions((db_labels[order] == query_labels[i])[None, :])[0]
    return scores


def bare_scan(query, database):
    """XOR + popcount of every pair, chunked like ours, result discarded."""
    scanner = HammingScanner(pack_codes(database), database.shape[1])
    words = scanner.narrow(pack_codes(query))
    for rows in scanner.chunks(len(words)):
        scanner.distances(words[rows])


def faiss_map(query, database, query_labels, db_labels, depth):
    import faiss

    faiss.omp_set_num_threads(1)
    padded_bits = -(-query.shape[1] // 8) * 8  # faiss binary codes are whole bytes

    def as_bytes(codes):
        return np.packbits(np.pad(codes, ((0, 0), (0, padded_bits - codes.shape[1]))), axis=1)

    index = faiss.IndexBinaryFlat(padded_bits)
    index.add(as_bytes(database))
    _, ids = index.search(as_bytes(query), depth)
    return average_precisions(db_labels[ids] == query_labels[:, None])


def timed(function):
    """((cpu seconds, wall seconds), result)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return (time.process_time() - cpu, time.perf_counter() - wall), result


def traced_peak(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_case(kind, n_query, n_database, bits, k, n_reference, seed, has_faiss):
    """Rows (method, (cpu s, wall s), scaled?, mAP, d mAP, peak bytes) for one case."""
    query, database, query_labels, db_labels = make_codes(kind, n_query, n_database, bits, seed)
    depth = n_database if k == "all" else min(k, n_database)
    subset = np.random.default_rng(seed).choice(n_query, size=min(n_reference, n_query), replace=False)
    subset.sort()
    sub = (query[subset], database, query_labels[subset], db_labels)
    scale = n_query / len(subset)
    rows = []

    ref_time, ref_scores = timed(lambda: per_query_map(*sub, depth, "stable"))
    reference_map = ref_scores.mean()
    tiny = (query[subset[:20]], database, query_labels[subset[:20]], db_labels)
    rows.append(("reference", np.multiply(ref_time, scale), True, reference_map, 0.0,
                 traced_peak(lambda: per_query_map(*tiny, depth, "stable"))))

    pop_time, pop_scores = timed(lambda: per_query_map(*sub, depth, "quicksort"))
    pop_peak = traced_peak(lambda: per_query_map(*tiny, depth, "quicksort"))
    rows.append(("popular loop", np.multiply(pop_time, scale), True, pop_scores.mean(),
                 pop_scores.mean() - reference_map, pop_peak))

    scan_time, _ = timed(lambda: bare_scan(query, database))
    rows.append(("bare scan", scan_time, False, None, None, traced_peak(lambda: bare_scan(query, database))))

    if has_faiss and depth <= 1000:
        faiss_time, faiss_scores = timed(lambda: faiss_map(query, database, query_labels, db_labels, depth))
        rows.append(("faiss k-NN", faiss_time, False, faiss_scores.mean(),
                     faiss_scores[subset].mean() - reference_map, None))
    elif has_faiss:
        rows.append(("faiss k-NN", None, False, None, None, None))  # k=all is not a k-NN query

    arguments = (query, database, query_labels, db_labels)
    ours_time, ours_scores = timed(lambda: map_at_k(*arguments, k=k, per_query=True))
    worst = np.abs(ours_scores[subset] - ref_scores).max()
    rows.append(("ours", ours_time, False, ours_scores.mean(), ours_scores[subset].mean() - reference_map,
                 traced_peak(lambda: map_at_k(*arguments, k=k))))
    average_time, average_scores = timed(lambda: map_at_k(*arguments, k=k, ties="average", per_query=True))
    rows.append(("ours, ties averaged", average_time, False, average_scores.mean(),
                 average_scores[subset].mean() - reference_map,
                 traced_peak(lambda: map_at_k(*arguments, k=k, ties="average"))))
    distinct = len(np.unique(np.column_stack([query, query_labels]), axis=0))
    return rows, worst, distinct


def make_multi_label(n_query, n_database, bits, seed, n_labels=21):
    """Clustered codes (`make_codes`) with multi-hot labels: each item's class, plus each of `n_labels` labels with
    probability 10% (NUS-WIDE's 21 frequent labels, about 3 per image)."""
    query, database, query_classes, db_classes = make_codes("clustered", n_query, n_database, bits, seed)
    rng = np.random.default_rng(seed + 1)
    labels = rng.random((n_query + n_database, n_labels)) < 0.1
    labels[np.arange(n_query + n_database), np.concatenate([query_classes, db_classes])] = True
    return query, database, labels[:n_query].astype(np.uint8), labels[n_query:].astype(np.uint8)


def run_graded_case(n_query, n_database, bits, k, seed):
    """Rows (measure, (cpu s, wall s)) for DSRH's measures against mAP@k on one multi-label case."""
    arguments = make_multi_label(n_query, n_database, bits, seed)

    def all_three():
        problem = _Retrieval(*arguments)
        depth = min(DSRH_DEPTH, n_database)
        return graded_scores(problem, ndcg_depth=depth, acg_depth=depth, wmap_depth=min(k, n_database))

    query, database, query_labels, db_labels = arguments
    report_arguments = (codes_with_labels(query, query_labels), codes_with_labels(database, db_labels))
    return [
        (f"map@{k}", timed(lambda: map_at_k(*arguments, k=k))[0]),
        (f"ndcg@{DSRH_DEPTH}", timed(lambda: ndcg_at_k(*arguments))[0]),
        (f"acg@{DSRH_DEPTH}", timed(lambda: acg_at_k(*arguments))[0]),
        (f"wmap@{k}", timed(lambda: weighted_map_at_k(*arguments, k=k))[0]),
        ("all three, one scan", timed(all_three)[0]),
        ("evaluate_codes (all)", timed(lambda: evaluate_codes(*report_arguments, top_k=k))[0]),
    ]


HEADER = (
    f"{'case':<31} {'method':<20} {'cpu s':>9} {'wall s':>9} {'vs ref':>8} {'vs scan':>8} {'mAP':>7} {'d mAP':>8} "
    f"{'peak MiB':>9}"
)


def format_row(case, method, seconds, scaled, value, delta, peak, reference_cpu, scan_cpu):
    if seconds is None:
        return f"{case:<31} {method:<20} (skipped: k=all is not a k-NN query)"
    cpu, wall = seconds
    mark = "*" if scaled else " "
    return (
        f"{case:<31} {method:<20} {cpu:>8.3f}{mark} {wall:>8.3f}{mark} {reference_cpu / cpu:>7.1f}x "
        f"{cpu / scan_cpu:>7.1f}x {'' if value is None else f'{value:.4f}':>7} "
        f"{'' if delta is None else f'{delta:+.4f}':>8} {'-' if peak is None else f'{peak / 2**20:.1f}':>9}"
    )


def print_map_table(cases, args, has_faiss):
    """The mAP table: every method on every case."""
    # Warm-up on a tiny case, so that one-off costs (imports, first allocations) are not charged to a timed run.
    run_case("clustered", 20, 300, 12, 10, 10, args.seed, has_faiss)
    print(HEADER)
    print("-" * len(HEADER))
    worst_overall = 0.0
    for n_query, n_database, bits, k, kind in cases:
        n_reference = args.reference_queries or (30 if n_database >= 1_000_000 else 300)
        rows, worst, distinct = run_case(kind, n_query, n_database, bits, k, n_reference, args.seed,
                                         has_faiss)
        worst_overall = max(worst_overall, worst)
        case = f"{n_query}x{n_database} {bits}b {kind} @{k}"
        reference_cpu = rows[0][1][0]
        scan_cpu = next(row[1][0] for row in rows if row[0] == "bare scan")
        for row in rows:
            print(format_row(case, *row, reference_cpu, scan_cpu), flush=True)
        print(f"{'':<31} ours = reference on the {min(n_reference, n_query)} timed queries: "
              f"max |AP difference| = {worst:.1e}; {distinct} distinct (code, label) queries of {n_query}")
    print("-" * len(HEADER))
    print("* per-query methods timed on a subset of queries and scaled to all; their mAP is the subset's.")
    print(f"largest |AP difference| between ours and the exact reference over all cases: {worst_overall:.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every code path")
    parser.add_argument("--reference-queries", type=int, default=None,
                        help="queries timed for the per-query methods (default 300; 30 for N=1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graded-only", action="store_true", help="only the graded measures' table (multi-label)")
    args = parser.parse_args(argv)

    try:
        import faiss  # noqa: F401

        has_faiss = True
    except ImportError:
        has_faiss = False
    if args.quick:
        protocols = [(200, 5000, "all"), (500, 4000, 1000)]
        large = [(50, 100_000, 1000, 64)]
        bit_lengths = (12, 64)
    else:
        protocols = [(1000, 59_000, "all"), (10_000, 50_000, 1000)]  # DPSH/ADSH (mAP over all), SSDH (mAP@1000)
        large = [(1000, 1_000_000, 1000, 64)]
        bit_lengths = (12, 32, 48, 64)
    cases = [(n_q, n_db, bits, k, kind) for n_q, n_db, k in protocols for bits in bit_lengths
             for kind in ("clustered", "random")]
    cases += [(n_q, n_db, bits, k, "clustered") for n_q, n_db, k, bits in large]

    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"one timed run per method, each single-threaded")
    if not has_faiss:
        print("faiss is not installed: its rows are skipped (pip install faiss-cpu to include them)")
    if not args.graded_only:
        print_map_table(cases, args, has_faiss)
        print()
    graded_cases = [(500, 4000, 32, 1000)] if args.quick else [(2000, 100_000, 32, 1000), (2000, 100_000, 64, 5000)]
    print("DSRH's graded measures on multi-label codes (clustered, 21 labels) against mAP@k on the same codes")
    print(f"{'case':<31} {'measure':<20} {'cpu s':>9} {'wall s':>9} {'vs mAP':>8}")
    for n_query, n_database, bits, k in graded_cases:
        rows = run_graded_case(n_query, n_database, bits, k, args.seed)
        map_cpu = rows[0][1][0]
        for measure, (cpu, wall) in rows:
            print(f"{f'{n_query}x{n_database} {bits}b @{k}':<31} {measure:<20} {cpu:>9.3f} {wall:>9.3f} "
                  f"{cpu / map_cpu:>7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
