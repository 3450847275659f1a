"""Where the shipped trained models are found: `pretrained/NAME/` (a cut run folder: `model.keras`, `run.json`,
`scores.json`, `result.json`) beside the `saeh` package in the clone it runs from, or in the current folder."""

import os

PRETRAINED = "pretrained"
RESULT = "result.json"  # the cell's result file, which marks a folder as a shipped model


def shipped_roots():
    """The folders whose `pretrained/` is searched, in order: the one holding the `saeh` package (a clone, or an
    editable install), then the current folder."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return list(dict.fromkeys([package_parent, os.getcwd()]))


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
