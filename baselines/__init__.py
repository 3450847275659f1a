"""The baselines of SAEH's Table 1 and the other methods of our sources, each registered by name (in
`saeh.registry`) when this package is imported, beside SAEH's own two.

    from saeh import registry
    registry.names()         # ('saeh', 'saeh-minus', 'ssdh', 'dsh', 'cnnh-plus', ..., 'itq', 'ksh')
    registry.get("dsh")      # a saeh.methods.DeepMethod, or a shallow method

`baselines.get` and `baselines.names` are the registry's. Every method trains through `python hash_su_ae_train.py
--method NAME` under the same data, protocol and code dump as SAEH, so `evaluate.py` scores them all the same way.
"""

# Importing a method's module registers it; the order here is the order of listings after SAEH's own.
import baselines.ssdh  # noqa: F401,I001
import baselines.dsh  # noqa: F401
import baselines.cnnh  # noqa: F401
import baselines.dpsh  # noqa: F401
import baselines.hashnet  # noqa: F401
import baselines.dlbhc  # noqa: F401
import baselines.classifier_codes  # noqa: F401
import baselines.csq  # noqa: F401
import baselines.shc  # noqa: F401
import baselines.adsh  # noqa: F401
import baselines.dsah  # noqa: F401
import baselines.shallow_methods  # noqa: F401
from baselines.shallow_methods import fit_shallow
from saeh.registry import get, names

__all__ = ["fit_shallow", "get", "names"]
