"""The baselines of SAEH's Table 1 and the other methods of our sources: a method package (setup.py declares it
under the entry-point group `saeh.methods`), whose modules register their methods in `saeh.registry` when this
package is imported, beside SAEH's own two.

    from saeh import registry
    registry.names()         # ('saeh', 'saeh-minus', 'ssdh', 'dsh', 'cnnh-plus', ..., 'itq', 'ksh')
    registry.get("dsh")      # a saeh.methods.DeepMethod, or a shallow method

A new method is one new module here: it registers itself (`saeh.registry.register`, with its listing order), and
importing this package imports every module in it. Every method trains through `python hash_su_ae_train.py --method
NAME` under the same data, protocol and code dump as SAEH, so `evaluate.py` scores them all the same way.
`baselines.get` and `baselines.names` are the registry's.
"""

import importlib
import pkgutil

from baselines.shallow_methods import fit_shallow
from saeh.registry import get, names

__all__ = ["fit_shallow", "get", "names"]


def _import_every_module():
    """Import each module of this package (so that each registers its methods); the helper modules that register
    nothing are imported too, which does no work."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "__main__":  # `python -m baselines`, the listing, not a method
            importlib.import_module(f"{__name__}.{module.name}")


_import_every_module()
