"""The command line of `python -m saeh.reproduce`: run, report, curves and presets, parsed and handed to the runner
and the report."""

import argparse

from saeh import defaults, presets
from saeh.reproduce import __doc__ as PACKAGE_DOC
from saeh.reproduce.report import write_report
from saeh.reproduce.runner import add_curves, run_table
from saeh.reproduce.tables import TABLES


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m saeh.reproduce", description=PACKAGE_DOC.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the missing cells of a table")
    run.add_argument("table", help=f"one of {', '.join(TABLES)}")
    run.add_argument("--preset", required=True, help=f"one of {', '.join(presets.PRESETS)}")
    run.add_argument("--seeds", type=int, nargs="+", default=[defaults.SEED],
                     help=f"seeds of the cells (default: {defaults.SEED})")
    run.add_argument("--methods", nargs="+", default=None,
                     help="run only these methods' cells, e.g. the cheap rows first (default: every method)")
    run.add_argument("--bits", type=int, nargs="+", default=None,
                     help="run only the cells of these code lengths (default: every length of the table)")
    run.add_argument("--gammas", type=float, nargs="+", default=None,
                     help="run only the cells of these recovery weights (default: every gamma of the table)")
    run.add_argument("--ablations", nargs="+", default=None, metavar="INGREDIENT",
                     help="a table of ablations: run only the cells without these ingredients (full-recipe: the "
                          "cells that remove nothing)")
    run.add_argument("--data-dir", default=None, help="passed to the training script (default: its own default)")
    run.add_argument("--commit", action="store_true", help="git add and commit each result file as it is written")
    run.add_argument("--dry-run", action="store_true", help="list the cells, their commands and status; run nothing")
    run.add_argument("--no-train", action="store_true",
                     help="write only the cells that need no training: copies of another table's identical run and "
                          "scored run folders")
    run.add_argument("--repo-root", default=None, help="where results/ and runs/ are (default: this clone)")
    report = commands.add_parser("report", help="render results/ into RESULTS.md")
    report.add_argument("--out", default=None, help="the Markdown file to update (default: RESULTS.md); - prints")
    report.add_argument("--repo-root", default=None, help="where results/ is (default: this clone)")
    curves = commands.add_parser("curves", help="add the precision-recall curves, selected epoch and tie-averaged mAP "
                                                "to result files that lack them")
    curves.add_argument("--commit", action="store_true", help="git add and commit the changed result files")
    curves.add_argument("--repo-root", default=None, help="where results/ and runs/ are (default: this clone)")
    commands.add_parser("presets", help="list the presets and their deviations from the paper")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "run":
        run_table(args.table, preset=args.preset, seeds=args.seeds, methods=args.methods, bits=args.bits,
                  gammas=args.gammas, ablations=args.ablations, repo_root=args.repo_root, data_dir=args.data_dir,
                  commit=args.commit, dry=args.dry_run, train=not args.no_train)
    elif args.command == "report":
        write_report(repo_root=args.repo_root, out=args.out)
    elif args.command == "curves":
        add_curves(repo_root=args.repo_root, commit=args.commit)
    else:
        presets.main()
    return 0
