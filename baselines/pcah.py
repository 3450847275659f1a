"""PCAH, PCA hashing: the signs of the top principal components, as the HABIR toolbox (willard-yuan/hashing-
baseline-for-image-retrieval, commit 8228378) runs it: Method-PCAH/trainPCAH.m, compressPCAH.m. Unsupervised.

W (D, bits) = the top-`bits` eigenvectors of the covariance of the training features (trainPCAH.m l.13; needs
bits <= D); project(x) = (x - mu) W and the code bit is [project > 0] (compressPCAH.m l.13; 0 maps to 0).
Protocol: the toolbox fits the PCA on the training set and the queries together (demo.m l.85) and centres by their
joint mean (utils/construct_data.m l.82-83); we fit W and mu on the training features only, as the label-based
protocol fits nothing on the queries. Eigenvector signs are fixed (largest-magnitude entry positive), which flips
whole bits and so changes no Hamming distance. No hyperparameters.
"""

from baselines.shallow import CentredLinearHasher, fit_principal_directions
from baselines.shallow_methods import ShallowMethod
from saeh.registry import register


class PCAH(CentredLinearHasher):
    """Signs of the top principal components of the centred features (labels passed to fit are ignored)."""

    name = "pcah"
    supervised = False

    def _fit(self, features, labels, hyperparameters):
        mean, directions = fit_principal_directions(self.name, features, self.hash_bits)
        return {"mean": mean, "projection": directions}


PCAH_METHOD = register(ShallowMethod(
    "pcah", "PCAH: signs of the top principal components of the centred features (unsupervised)", PCAH),
    listing_order=210)
