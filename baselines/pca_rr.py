"""PCA-RR, PCA followed by a random rotation (Gong & Lazebnik, CVPR 2011, the baseline beside ITQ), as the HABIR
toolbox (willard-yuan/hashing-baseline-for-image-retrieval, commit 8228378) runs it: Method-PCAH/trainPCAH.m, then
Method-RR/trainRR.m and compressRR.m. Unsupervised.

W (D, bits) = the top-`bits` principal directions of the training features (as PCAH, `baselines.pcah`; needs
bits <= D), R (bits, bits) a random orthogonal matrix drawn from the run's seed; project(x) = (x - mu) W R and the
code bit is [project > 0] (compressRR.m l.16; 0 maps to 0). The rotation spreads the variance evenly over the bits,
which PCAH leaves concentrated in its first ones. The toolbox takes R as the left singular vectors of a Gaussian
matrix (trainRR.m l.12-14); we take the Q of its QR decomposition with the column signs fixed (the rotation ITQ
starts from), which is likewise uniformly (Haar) distributed. Protocol: the toolbox fits the PCA on the training
set and the queries together (demo.m l.97); we fit on the training features only. No hyperparameters.
"""

import numpy as np

from baselines.shallow import CentredLinearHasher, fit_principal_directions, random_rotation
from baselines.shallow_methods import ShallowMethod
from saeh.registry import register


class PCARR(CentredLinearHasher):
    """PCA then a random orthogonal rotation (labels passed to fit are ignored)."""

    name = "pca-rr"
    supervised = False

    def _fit(self, features, labels, hyperparameters):
        rng = np.random.default_rng(self.seed)
        mean, directions = fit_principal_directions(self.name, features, self.hash_bits)
        rotation = random_rotation(self.hash_bits, rng)
        return {"mean": mean, "projection": directions @ rotation, "rotation": rotation}


PCA_RR_METHOD = register(ShallowMethod(
    "pca-rr", "PCA-RR: principal components turned by a random rotation, then signs (unsupervised)", PCARR),
    listing_order=220)
