"""The registry of hashing methods: name -> method, filled by `register` beside each method's definition, and the
discovery of the packages that define them.

    from saeh import registry
    registry.names()         # every registered method, SAEH's own and those of every method package
    registry.get("dpsh")     # a saeh.methods.DeepMethod, or a shallow method

A method module registers its method when it is imported: `METHOD = register(DeepMethod(...), listing_order=60)`.
`names` and `get` first import the method packages: every module or package declared under the entry-point group
`saeh.methods` (setup.py declares SAEH's own `saeh.methods` and the `baselines` package; a third party declares its
own package in its setup.py the same way). Nothing here names them, so the registry depends on no method, and
nothing is imported when this module is.
"""

import numbers

from saeh.errors import SaehError

ENTRY_POINT_GROUP = "saeh.methods"
# The paper's and the literature's spellings of registered names.
ALIASES = {"saeh-": "saeh-minus", "saeh⁻": "saeh-minus", "ssdh*": "ssdh", "cnnh+": "cnnh-plus",
           "classifier": "classifier-codes"}

_METHODS = {}  # name -> (listing order, method), filled by `register` as method modules are imported
_loaded = False  # whether the method packages were imported (once per process: finding them scans the installs)


def register(method, *, listing_order):
    """Add `method` (a DeepMethod or a shallow method, anything with a `name`) to the registry and return it.

    `listing_order`: a number that places the method in `names()` (lower first; methods of one number in the order
    they registered). The methods of this project are numbered in tens (SAEH 10 ... KSH 150), so that a new method
    declares its place between them in its own file. A second method of the same name is an error (two modules
    claiming one name); registering the same object again at the same place is not."""
    if isinstance(listing_order, bool) or not isinstance(listing_order, numbers.Real):
        raise SaehError(f"listing_order of method {method.name!r} must be a number; got {listing_order!r}")
    existing = _METHODS.get(method.name)
    if existing is not None and (existing[1] is not method or existing[0] != listing_order):
        raise SaehError(f"two methods are registered as {method.name!r}: {existing[1].summary!r} (listing order "
                        f"{existing[0]}) and {method.summary!r} (listing order {listing_order})")
    _METHODS[method.name] = (listing_order, method)
    return method


def method_packages():
    """The entry points of ENTRY_POINT_GROUP: the installed packages that define methods."""
    from importlib import metadata

    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_methods():
    """Import every method package (whose modules register their methods, Keras layers, losses and metrics); a
    package already imported is not imported again."""
    global _loaded
    packages = method_packages()
    if not packages:
        raise SaehError(f"no method package is declared under the entry-point group {ENTRY_POINT_GROUP!r}: the saeh "
                        "package is not installed; run `pip install -e .` in its folder")
    for entry_point in sorted(packages, key=lambda entry_point: entry_point.name):
        try:
            entry_point.load()
        except ImportError as error:
            raise SaehError(f"method package {entry_point.value!r} (entry point {entry_point.name!r} of group "
                            f"{ENTRY_POINT_GROUP!r}) could not be imported: {error}") from error
    _loaded = True


def _ensure_loaded():
    if not _loaded:
        load_methods()


def names():
    """Registered method names by their listing order (SAEH's first)."""
    _ensure_loaded()
    # sorted is stable: methods of one listing order stay in the order they registered.
    return tuple(sorted(_METHODS, key=lambda name: _METHODS[name][0]))


def get(name):
    """The method registered as `name` (case-insensitive, '_' read as '-', and the spellings in ALIASES).

    Plain "cnnh" is CNNH (no classifier), not CNNH+ ("cnnh-plus", "cnnh+")."""
    _ensure_loaded()
    key = str(name).lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in _METHODS:
        raise SaehError(f"unknown method {name!r}; expected one of {', '.join(names())}")
    return _METHODS[key][1]


def deep_names():
    """The names of the methods trained by the Keras loop."""
    return tuple(name for name in names() if get(name).kind == "deep")


def display_name(name):
    """The method as its paper writes it, for tables: the words of its summary before the colon, without a
    parenthesis ("CSQ", "Classifier codes", "DSAH"); the registry name when the summary has no colon."""
    method = get(name)
    if ":" not in method.summary:
        return method.name
    return method.summary.split(":", 1)[0].split(" (", 1)[0].strip()
