"""Evaluate hash codes for retrieval: mAP@k, precision within a Hamming radius, P@k, PR curves (see --help)."""

import sys

from saeh.cli import run
from saeh.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(run(main))
