"""The registry of hashing methods: name -> method. Deep methods are `saeh.methods.DeepMethod`s trained by the one
Keras loop; shallow methods fit in numpy."""

from saeh.errors import SaehError


def _methods():
    # Built on demand, not at import: each entry imports its module (Keras for the deep ones).
    from baselines import cnnh, dsh, ssdh
    from saeh.methods import SAEH, SAEH_MINUS

    from baselines.shallow_methods import shallow_methods

    deep = [SAEH, SAEH_MINUS, ssdh.SSDH, dsh.DSH, cnnh.CNNH_PLUS]
    return {method.name: method for method in deep + shallow_methods()}


def names():
    """The registered method names."""
    return tuple(_methods())


def get(name):
    """The method registered as `name` (case-insensitive; the paper's spellings "SAEH-", "SAEH⁻", "SSDH*" and
    "CNNH+" too). Plain "cnnh" is not CNNH+ (CNNH has no classifier) and is not registered."""
    key = str(name).lower().replace("_", "-")
    key = {"saeh-": "saeh-minus", "saeh⁻": "saeh-minus", "ssdh*": "ssdh", "cnnh+": "cnnh-plus"}.get(key, key)
    methods = _methods()
    if key not in methods:
        raise SaehError(f"unknown method {name!r}; expected one of {', '.join(methods)}")
    return methods[key]
