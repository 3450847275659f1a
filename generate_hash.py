"""Dump hash codes of a trained model: edit `load_path` below (as in the original) and run
`python generate_hash.py`, or pass --load-path. Writes query/database `.mat` (hash_org, hash_bin, label) and `.npz`.
"""

import sys

from saeh.cli import run
from saeh.cli.generate import main

load_path = "runs/saeh_cifar10_32bits/model.keras"

if __name__ == "__main__":
    sys.exit(run(main, load_path=load_path))
