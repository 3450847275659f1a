"""Where the reproduction keeps its files in a clone: the training script every cell runs, the result files, the
run folders and the report's figures; and finding the clone this package runs from."""

import os

from saeh.errors import SaehError

SCRIPT = "hash_su_ae_train.py"  # the one training script every cell runs
RESULTS = "results"  # result files: <repository>/results/<TABLE>/<cell id>.json
RUNS = os.path.join("runs", "reproduce")  # run folders: <repository>/runs/reproduce/<TABLE>/<cell id>
IMAGES = "image"  # the report's figures: <repository>/image/reproduce_*.png


def default_repository():
    """The clone this package runs from: the folder holding the training script beside the `saeh` package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # saeh/, above saeh/reproduce/
    root = os.path.dirname(package)
    if not os.path.isfile(os.path.join(root, SCRIPT)):
        raise SaehError(f"{SCRIPT} not found in {root}; run from a clone of the repository (pip install -e .)")
    return root
