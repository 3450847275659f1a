"""Baselines of SAEH's Table 1, registered by name beside SAEH itself.

    import baselines
    baselines.names()        # ('saeh', 'saeh-minus', 'ssdh', 'dsh', 'cnnh-plus', 'itq', 'ksh')
    baselines.get("dsh")     # a saeh.methods.DeepMethod, or a shallow method

Every method trains through `python hash_su_ae_train.py --method NAME` under the same data, protocol and code dump
as SAEH, so `evaluate.py` scores them all the same way.
"""

from baselines.registry import get, names
from baselines.shallow_methods import fit_shallow

__all__ = ["fit_shallow", "get", "names"]
