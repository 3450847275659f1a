"""The API reference (docs/API.md) builds: pdoc renders the docstrings of the API's modules into HTML, and every
public name of the API is on its pages."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The modules the reference renders, as docs/API.md's pdoc command names them.
REFERENCE_MODULES = ("saeh.api", "saeh.codes", "saeh.retrieval.report", "saeh.user_images")


def test_the_reference_builds_and_names_the_api(tmp_path):
    pytest.importorskip("pdoc")
    with open(os.path.join(REPO, "docs", "API.md"), encoding="utf-8") as handle:
        assert f"pdoc {' '.join(REFERENCE_MODULES)} -o docs/reference" in handle.read()
    subprocess.run([sys.executable, "-m", "pdoc", *REFERENCE_MODULES, "-o", str(tmp_path)], cwd=REPO, check=True,
                   capture_output=True)
    pages = {}
    for folder, _, names in os.walk(tmp_path):
        for name in names:
            if name.endswith(".html"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    pages[os.path.relpath(os.path.join(folder, name), tmp_path)] = handle.read()
    expected = {"saeh/api/hash_model.html": ("load_model", "HashModel", "HashModel.encode", "HashModel.identity"),
                "saeh/api/code_index.html": ("CodeIndex", "CodeIndex.query", "CodeIndex.from_images",
                                             "CodeIndex.from_run", "CodeIndex.save", "CodeIndex.load", "Neighbours"),
                "saeh/api/train.html": ("train", "TrainingResult"),
                "saeh/retrieval/report.html": ("evaluate", "metric_name"),
                "saeh/codes.html": ("Codes", "load_codes")}
    for page, names in expected.items():
        assert page in pages, sorted(pages)
        for name in names:
            assert f'id="{name}"' in pages[page], (page, name)
