"""Record what every registered method produces on the bundled MNIST sample, and compare two records: the check
that a refactoring moved no number.

    python tools/method_fingerprints.py record before.json        # on the old code
    python tools/method_fingerprints.py record after.json         # on the new code, same machine
    python tools/method_fingerprints.py compare before.json after.json

`record` trains each method through `hash_su_ae_train.py` (the user's path: CLI, loop, dump, scoring) on the sample
with seed 0, 2 epochs, stack_num 1 and --deterministic, then keeps, per method, the SHA-256 of the query and
database codes (bits and real-valued outputs) and the scores. `compare` prints one row per method and exits 1 when
any code or score differs. Methods present in only one record are listed, not compared.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORE_KEYS = ("map@1000", "map@all", "precision@r2", "empty@r2")


def method_names():
    sys.path.insert(0, ROOT)
    from saeh import registry

    return registry.names()


def digest(array):
    array = np.ascontiguousarray(array)
    return hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()).hexdigest()


def fingerprint(run_dir):
    entry = {}
    for part in ("query", "database"):
        with np.load(os.path.join(run_dir, "codes", f"{part}.npz")) as codes:
            for key in sorted(codes.files):
                entry[f"{part}.{key}"] = digest(codes[key])
    with open(os.path.join(run_dir, "scores.json")) as file:
        scores = json.load(file)
    entry.update({key: scores[key] for key in SCORE_KEYS if key in scores})
    return entry


def record(output, methods, epochs):
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in methods:
            command = [sys.executable, os.path.join(ROOT, "hash_su_ae_train.py"), "--which-data", "mnist-sample",
                       "--stack-num", "1", "--epochs", str(epochs), "--method", name, "--seed", "0",
                       "--deterministic", "--save-dir", folder, "--run-name", name, "--verbose", "0"]
            start = time.time()
            finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if finished.returncode != 0:
                sys.exit(f"{name} failed:\n{finished.stderr[-3000:]}")
            results[name] = fingerprint(os.path.join(folder, name))
            print(f"{name:18s} {time.time() - start:6.1f} s  map@1000 {results[name].get('map@1000', float('nan')):.6f}",
                  flush=True)
    temporary = output + ".partial"
    with open(temporary, "w") as file:
        json.dump({"epochs": epochs, "methods": results}, file, indent=1, sort_keys=True)
    os.replace(temporary, output)


def compare(before_path, after_path):
    with open(before_path) as file:
        before = json.load(file)["methods"]
    with open(after_path) as file:
        after = json.load(file)["methods"]
    differing = 0
    print(f"{'method':18s} {'codes':10s} {'map@1000 before':>16s} {'after':>10s}")
    for name in sorted(set(before) | set(after), key=lambda n: list(before).index(n) if n in before else 99):
        if name not in before or name not in after:
            print(f"{name:18s} only in {'the second' if name in after else 'the first'} record")
            continue
        same_codes = all(before[name][k] == after[name].get(k) for k in before[name] if "." in k)
        same_scores = all(before[name].get(k) == after[name].get(k) for k in SCORE_KEYS)
        differing += not (same_codes and same_scores)
        print(f"{name:18s} {'identical' if same_codes else 'DIFFER':10s} {before[name].get('map@1000', 0):16.6f} "
              f"{after[name].get('map@1000', 0):10.6f}{'' if same_scores else '  scores differ'}")
    print(f"{differing} of {len(set(before) & set(after))} methods differ")
    return 1 if differing else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record_parser = commands.add_parser("record", help="train every method and write its fingerprint")
    record_parser.add_argument("output")
    record_parser.add_argument("--methods", nargs="+", help="only these methods (default: every registered one)")
    record_parser.add_argument("--epochs", type=int, default=2)
    compare_parser = commands.add_parser("compare", help="compare two records; exit 1 when any method differs")
    compare_parser.add_argument("before")
    compare_parser.add_argument("after")
    arguments = parser.parse_args(argv)
    if arguments.command == "record":
        record(arguments.output, arguments.methods or method_names(), arguments.epochs)
        return 0
    return compare(arguments.before, arguments.after)


if __name__ == "__main__":
    sys.exit(main())
