"""Run a notebook's code cells in order, in one namespace, without Jupyter: `python tools/run_notebook.py NB`.

Prints what the cells print; figures go where the cells save them. Used to run the gamma ablation headless."""

import json
import sys


def main(path):
    with open(path) as handle:
        notebook = json.load(handle)
    namespace = {"__name__": "__main__"}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path}[cell {index}]", "exec"), namespace)


if __name__ == "__main__":
    main(sys.argv[1])
