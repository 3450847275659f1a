"""Print a Markdown table of finished runs beside the paper's Table 1: `python tools/results_table.py RUNS_DIR`.

Reads each run's run.json, scores.json and history.json (as hash_su_ae_train.py writes them) and the paper's
numbers from saeh/published_results.json."""

import argparse
import json
import os

from saeh.published import table1_map

PAPER_DATASET = {"mnist": "mnist", "mnist-sample": "mnist", "cifar10": "cifar10", "svhn": "svhn"}


def read(path):
    with open(path) as handle:
        return json.load(handle)


def rows(runs_dir):
    for name in sorted(os.listdir(runs_dir)):
        run_dir = os.path.join(runs_dir, name)
        if not os.path.exists(os.path.join(run_dir, "scores.json")):
            continue
        run, scores = read(os.path.join(run_dir, "run.json")), read(os.path.join(run_dir, "scores.json"))
        history = os.path.join(run_dir, "history.json")
        best = read(history)["best_epoch"] if os.path.exists(history) else None
        yield run, scores, best


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs_dir")
    args = parser.parse_args()
    print("| method | data | bits | epochs (best) | stack_num | mAP@1000 | paper | P@r2 | empty@r2 | minutes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run, scores, best in rows(args.runs_dir):
        method, data = run["method"], run["which_data"]
        paper = table1_map(method, PAPER_DATASET.get(data, data), run["hash_bits"])
        epochs = f"{run['epochs']} ({best})" if "epochs" in run else "-"
        minutes = f"{scores['seconds'] / 60:.1f}" if "seconds" in scores else "-"
        print(f"| {method} | {data} | {run['hash_bits']} | {epochs} | {run.get('stack_num', '-')} | "
              f"{100 * scores['map@1000']:.2f} | {'-' if paper is None else f'{paper:.2f}'} | "
              f"{100 * scores['precision@r2']:.2f} | {100 * scores['empty@r2']:.2f} | "
              f"{minutes} |")


if __name__ == "__main__":
    main()
