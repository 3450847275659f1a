"""`python -m saeh.reproduce ...`: the command line of `saeh.reproduce.cli`, its errors reported as the scripts
report theirs."""

import sys

from saeh.cli import run as run_main
from saeh.reproduce.cli import main

if __name__ == "__main__":
    # Error lines are named after sys.argv[0]: keep the name they had when this package was one module.
    sys.argv[0] = "reproduce.py"
    sys.exit(run_main(main))
