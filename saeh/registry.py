"""The registry of hashing methods: name -> method, filled by `@register` beside each method's definition.

    from saeh import registry
    registry.names()         # every registered method, SAEH's own and the baselines'
    registry.get("dpsh")     # a saeh.methods.DeepMethod, or a shallow method of baselines

A method module registers its method when it is imported (`register(METHOD)` or `@register` on a function that
returns it). `names` and `get` import the modules that define methods first (`saeh.methods` and the `baselines`
package, whose `__init__` imports each of its method modules), so the library lists every method without the caller
importing anything; nothing is imported when this module is.
"""

from saeh.errors import SaehError

_METHODS = {}  # filled by `register` as method modules are imported
# The paper's and the literature's spellings of registered names.
ALIASES = {"saeh-": "saeh-minus", "saeh⁻": "saeh-minus", "ssdh*": "ssdh", "cnnh+": "cnnh-plus",
           "classifier": "classifier-codes"}
DEFINING_MODULES = ("saeh.methods", "baselines")


def register(method):
    """Add `method` (a DeepMethod or a shallow method, anything with a `name`) to the registry and return it, so that
    it can decorate a factory's result: `METHOD = register(DeepMethod(...))`. A second method of the same name is an
    error (two modules claiming one name); registering the same object again is not."""
    existing = _METHODS.get(method.name)
    if existing is not None and existing is not method:
        raise SaehError(f"two methods are registered as {method.name!r}: {existing.summary!r} and "
                        f"{method.summary!r}")
    _METHODS[method.name] = method
    return method


def _load():
    import importlib

    for module in DEFINING_MODULES:
        importlib.import_module(module)


def names():
    """Registered method names, SAEH's first, then in the order their modules registered them."""
    _load()
    return tuple(_METHODS)


def get(name):
    """The method registered as `name` (case-insensitive, '_' read as '-', and the spellings in ALIASES).

    Plain "cnnh" is not CNNH+ (CNNH has no classifier) and is not registered."""
    _load()
    key = str(name).lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in _METHODS:
        raise SaehError(f"unknown method {name!r}; expected one of {', '.join(_METHODS)}")
    return _METHODS[key]


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
