"""The γ notebook (`notebooks/gamma_ablation.ipynb`), executed headless with nbclient as Jupyter runs it: a sweep
of two γ values on a few hundred images of the bundled MNIST sample under the `tiny` preset, through the reproduction
runner."""

import json
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks",
                        "gamma_ablation.ipynb")


def outputs(notebook, kind):
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
            if kind in output.get("data", {})]


def test_the_committed_notebook_shows_the_cifar10_table_without_errors():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code_cells), "every code cell has its executed output"
    assert not [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    tables = [output["data"]["text/markdown"] for output in outputs(notebook, "text/markdown")]
    assert tables and all("| SAEH | cifar10 | 32 |" in table for table in tables)
    assert outputs(notebook, "image/png")


@pytest.mark.slow
def test_the_notebook_runs_a_sweep_headless(tmp_path, monkeypatch, mnist_subset):
    for name, value in (("SAEH_REPO_ROOT", str(tmp_path)), ("SAEH_ABLATION_DATA", "mnist"),
                        ("SAEH_DATA_DIR", mnist_subset(640, 160)),
                        ("SAEH_ABLATION_PRESET", "tiny"), ("SAEH_ABLATION_SEEDS", "0"),
                        ("SAEH_ABLATION_GAMMAS", "0 1")):
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    results = tmp_path / "results" / "gamma-mnist"
    cells = sorted(path.name for path in results.glob("*.json"))
    assert cells == [f"saeh_mnist_32bits_gamma{gamma}_seed0_tiny.json" for gamma in (0, 1)]
    scores = {json.loads((results / name).read_text())["gamma"]: json.loads((results / name).read_text())["scores"]
              for name in cells}
    (table,) = [output["data"]["text/markdown"] for output in outputs(notebook, "text/markdown")]
    for gamma in (0, 1):
        row = (f"| SAEH | mnist | 32 | {gamma} | {100 * scores[gamma]['map@1000']:.2f} | "
               f"{100 * scores[gamma]['map_ties_averaged@1000']:.2f} | – |")
        assert row in table
    assert "| γ = 1 − γ = 0 | mnist | 32 |" in table and "**Preset `tiny`**" in table
    (image,) = outputs(notebook, "image/png")
    assert image["data"]["image/png"]
