"""Where the shipped trained models are found: `pretrained/NAME/` (a cut run folder: `model.keras`, `run.json`,
`scores.json`, `result.json`) in $SAEH_PRETRAINED, beside the `saeh` package in the clone it runs from, in the
installed package's data (setup.py's data_files: `<prefix>/share/saeh/pretrained/`), or in the current folder."""

import os
import sys

PRETRAINED = "pretrained"
RESULT = "result.json"  # the cell's result file, which marks a folder as a shipped model
PRETRAINED_VARIABLE = "SAEH_PRETRAINED"  # a pretrained/ folder elsewhere, e.g. in a clone beside an installed package
INSTALLED_DATA = os.path.join("share", "saeh")  # under sys.prefix, where `pip install .` puts pretrained/


def shipped_roots():
    """The folders whose `pretrained/` is searched, in order: the parent of $SAEH_PRETRAINED, the one holding the
    `saeh` package (a clone, or an editable install), the installed package's data folder, then the current
    folder."""
    named = os.environ.get(PRETRAINED_VARIABLE)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return list(dict.fromkeys([*([os.path.dirname(os.path.abspath(named))] if named else []), package_parent,
                               os.path.join(sys.prefix, INSTALLED_DATA), os.getcwd()]))


def where_to_find():
    """The error text for no shipped models found: where they were looked for, and how to point at a copy."""
    looked = ", ".join(os.path.join(root, PRETRAINED) for root in shipped_roots())
    return (f"none found (looked in {looked}); they come with a clone of the repository: install from it (pip "
            f"install .) or set {PRETRAINED_VARIABLE}=<clone>/{PRETRAINED}")


def shipped_names():
    """The names of the shipped models found, sorted."""
    names = set()
    for root in shipped_roots():
        directory = os.path.join(root, PRETRAINED)
        if os.path.isdir(directory):
            names.update(name for name in os.listdir(directory)
                         if os.path.isfile(os.path.join(directory, name, RESULT)))
    return sorted(names)


def shipped_folder(name):
    """The folder of the shipped model `name` (or ``pretrained/NAME``), or None when none is found."""
    name = os.fspath(name).replace(os.sep, "/").rstrip("/")
    name = name[len(PRETRAINED) + 1:] if name.startswith(PRETRAINED + "/") else name
    if not name or "/" in name:
        return None
    for root in shipped_roots():
        folder = os.path.join(root, PRETRAINED, name)
        if os.path.isfile(os.path.join(folder, RESULT)):
            return folder
    return None
