"""`evaluate.py`: retrieval results for code dumps written by generate_hash (.mat or .npz).

Prints a table (map@k and map@all, each with ties broken by database index and tie-averaged; precision, recall
and empty-ball fraction within the Hamming radius; precision@k and recall@k; named as in scores.json:
`saeh.retrieval.report.metric_name`; for multi-hot labels also DSRH's ndcg@100, acg@100 and weighted mAP), and can
write JSON and PNG figures.
"""

import argparse
import os

from saeh.atomic import check_writable, write_json
from saeh.codes import load_codes
from saeh.errors import SaehError

DESCRIPTION = """\
Evaluate hash codes for retrieval. Give the query set and the database as two dumps (--query Q --database D),
or one dump (DUMP) used as both: then each query stays in the database and retrieves itself at distance 0,
as in DSH's protocol, or a run folder of hash_su_ae_train.py (RUN_DIR) for the dumps it wrote.
--run LABEL=QUERY,DATABASE (or LABEL=DUMP) adds a labelled run; several runs that share
a LABEL at different code lengths give the precision-vs-bits figure (one line per LABEL).

Ranking is by Hamming distance with ties broken by database index; the map_ties_averaged@k rows give the
expected mAP over random orders within ties. A query with nothing relevant retrieved scores 0 and counts; an empty
Hamming ball has precision 0 (precision_nonempty@r2 averages only the non-empty balls).
For multi-hot labels it adds DSRH's graded measures, relevance = the number of shared labels: ndcg@100, acg@100
and wmap@k (weighted mAP at the depth of map@k; DSRH used 5000: --top-k 5000).
"""

RESULTS_NAME = "retrieval.json"
FIGURE_NAMES = {
    "pr_by_radius": "pr_by_radius.png",
    "precision_at_k": "precision_at_k.png",
    "precision_vs_bits": "precision_vs_bits.png",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dump", nargs="?",
        help="one dump used as both queries and database (each query kept in the database), or a run folder of "
        "hash_su_ae_train.py (its dumps)"
    )
    parser.add_argument("--query", metavar="Q", help="dump of the query codes")
    parser.add_argument("--database", metavar="D", help="dump of the database codes")
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="LABEL=QUERY,DATABASE",
        help="a labelled run (LABEL=DUMP for one set used as both); repeat it to compare methods and bit lengths",
    )
    parser.add_argument(
        "--top-k", default="1000", help="depth of mAP@k: a positive integer or 'all' (default: %(default)s)"
    )
    parser.add_argument("--radius", type=int, default=2, help="Hamming radius for the precision (default: %(default)s)")
    parser.add_argument("--out-dir", help=f"write {RESULTS_NAME} here, and the figures with --plots")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--plots", action="store_true", help="draw PNG figures into --out-dir")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def _parse_top_k(text):
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SaehError(f"--top-k must be a positive integer or 'all'; got {text!r}")
    return value


def _parse_run(text):
    label, separator, paths = text.partition("=")
    parts = paths.split(",")
    if not separator or not label or len(parts) not in (1, 2) or not all(parts):
        raise SaehError(f"--run expects LABEL=QUERY,DATABASE or LABEL=DUMP; got {text!r}")
    return label, parts[0], parts[-1]


def _runs(args):
    """(label, query path, database path) for every set to evaluate."""
    runs = []
    if args.dump and (args.query or args.database):
        raise SaehError("give either DUMP or --query and --database, not both")
    if bool(args.query) != bool(args.database):
        raise SaehError("--query and --database go together; for one set used as both, pass it as DUMP")
    if args.dump and os.path.isdir(args.dump):
        # A run folder of hash_su_ae_train.py: the dumps its procedure wrote.
        from saeh.run_folder import RunFolder

        query, database = RunFolder(args.dump).code_dumps()
        runs.append((os.path.basename(os.path.normpath(args.dump)), query, database))
    elif args.dump:
        runs.append((os.path.splitext(os.path.basename(args.dump))[0], args.dump, args.dump))
    if args.query:
        stems = [os.path.splitext(os.path.basename(path))[0] for path in (args.query, args.database)]
        runs.append((" vs ".join(stems), args.query, args.database))
    runs += [_parse_run(text) for text in args.run]
    if not runs:
        raise SaehError("nothing to evaluate: give DUMP, --query Q --database D, or --run LABEL=QUERY,DATABASE")
    return runs


def _output_paths(args, several_bit_lengths):
    """Every file this run will write, checked before the (possibly long) evaluation starts."""
    if args.plots and not args.out_dir:
        raise SaehError("--plots needs --out-dir (where to put the PNG files)")
    outputs = {}
    if args.json:
        outputs["json"] = args.json
    if args.out_dir:
        outputs["results"] = os.path.join(args.out_dir, RESULTS_NAME)
        if args.plots:
            for name, file_name in FIGURE_NAMES.items():
                if name != "precision_vs_bits" or several_bit_lengths:
                    outputs[name] = os.path.join(args.out_dir, file_name)
    for path in outputs.values():
        check_writable(path, args.overwrite)
    return outputs


def check_same_data(query_path, database_path):
    """Refuse query codes and database codes of runs on different datasets: codes are plain arrays, and two label
    spaces of the same size (CIFAR-10's and MNIST's ten classes) would score as if they were one. The dataset is
    read from the run.json of each dump's run folder; a dump outside a run folder is not checked."""
    from saeh.run_folder import RunFolder

    datasets = {}
    for path in (query_path, database_path):
        folder = RunFolder.of_dump(path)
        if folder is not None and folder.settings().get("which_data") is not None:
            datasets[path] = (folder.settings()["which_data"], folder.run_file)
    if len(datasets) == 2 and datasets[query_path][0] != datasets[database_path][0]:
        (query_data, query_run), (database_data, database_run) = datasets[query_path], datasets[database_path]
        raise SaehError(f"query dump {query_path} holds codes of {query_data} (its {query_run}) but database dump "
                        f"{database_path} codes of {database_data} (its {database_run}): their labels name different "
                        "classes, so the scores would mean nothing; give the two dumps of one run")


def main(argv=None):
    from saeh.retrieval import report

    args = build_parser().parse_args(argv)
    top_k = _parse_top_k(args.top_k)
    if args.radius < 0:
        raise SaehError(f"--radius must be a non-negative integer; got {args.radius}")
    runs = _runs(args)

    loaded = {}
    for _, query_path, database_path in runs:
        for path in (query_path, database_path):
            if path not in loaded:
                loaded[path] = load_codes(path)
    for _, query_path, database_path in runs:
        report.check_pair(
            loaded[query_path],
            loaded[database_path],
            f"query dump {query_path}" if query_path != database_path else f"dump {query_path}",
            f"database dump {database_path}",
        )
        check_same_data(query_path, database_path)
    several_bit_lengths = len({loaded[query_path].bits for _, query_path, _ in runs}) > 1
    outputs = _output_paths(args, several_bit_lengths)

    results = {}
    records = []
    for label, query_path, database_path in runs:
        name = label if len(runs) == 1 else f"{label} {loaded[query_path].bits}b"
        while name in results:
            name += "'"
        result = report.evaluate_codes(loaded[query_path], loaded[database_path], top_k=top_k, radius=args.radius)
        results[name] = result
        records.append(
            {
                "label": label,
                "name": name,
                "query": query_path,
                "database": database_path,
                "query_in_database": query_path == database_path,
                **result,
            }
        )
    print(report.format_table(results))
    if any(record["query_in_database"] for record in records):
        print("(one dump as queries and database: each query stays in the database and finds itself)")

    document = {"runs": records, "top_k": top_k, "radius": args.radius}
    for key in ("json", "results"):
        if key in outputs:
            write_json(outputs[key], document, overwrite=args.overwrite)
            print(f"wrote {outputs[key]}")
    if args.plots:
        _draw(outputs, results, records, args)
    return 0


def _draw(outputs, results, records, args):
    from saeh.retrieval import plots, report

    plots.plot_pr_curve_by_radius(
        {name: result["curves"]["pr_by_radius"] for name, result in results.items()},
        outputs["pr_by_radius"],
        overwrite=args.overwrite,
    )
    plots.plot_precision_at_k(
        {name: result["curves"]["precision_at_k"] for name, result in results.items()},
        outputs["precision_at_k"],
        overwrite=args.overwrite,
    )
    if "precision_vs_bits" in outputs:
        points = {}
        for record in records:
            precision = record["metrics"][report.metric_name("precision", radius=args.radius)]
            points.setdefault(record["label"], []).append((record["bits"], precision))
        plots.plot_precision_vs_bits(points, outputs["precision_vs_bits"], radius=args.radius, overwrite=args.overwrite)
    for name in FIGURE_NAMES:
        if name in outputs:
            print(f"wrote {outputs[name]}")
