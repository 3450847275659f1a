"""LSH, sign random projections (Charikar, STOC 2002), as the HABIR toolbox (willard-yuan/hashing-baseline-for-
image-retrieval, commit 8228378) runs it: Method-LSH/trainLSH.m, compressLSH.m. Unsupervised; nothing is learned
but the centring.

W (D, bits) has independent N(0, 1) entries drawn from the run's seed (trainLSH.m l.13); project(x) = (x - mu) W and
the code bit is [project > 0] (compressLSH.m l.16; 0 maps to 0). There is no offset: the toolbox hashes centred data
(utils/construct_data.m l.82-83 subtracts the mean of the training set and the queries together); we centre by mu,
the mean of the training features only, as the label-based protocol fits nothing on the queries. No
hyperparameters.
"""

import numpy as np

from baselines.shallow import CentredLinearHasher, feature_mean
from baselines.shallow_methods import ShallowMethod
from saeh.registry import register


class LSH(CentredLinearHasher):
    """Sign random projections of the centred features (labels passed to fit are ignored)."""

    name = "lsh"
    supervised = False

    def _fit(self, features, labels, hyperparameters):
        rng = np.random.default_rng(self.seed)
        return {"mean": feature_mean(features), "projection": rng.standard_normal((features.shape[1], self.hash_bits))}


LSH_METHOD = register(ShallowMethod(
    "lsh", "LSH: signs of random Gaussian projections of the centred features (unsupervised)", LSH),
    listing_order=200)
