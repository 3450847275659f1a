"""CBE-rand, circulant binary embedding with a random circulant (Yu, Kumar, Gong & Chang, ICML 2014), as the HABIR
toolbox (willard-yuan/hashing-baseline-for-image-retrieval, commit 8228378) runs it: Method-CBE/circulant/
circulant_rand.m and CBE_prediction.m, with demo.m l.161-176. Unsupervised; nothing is learned but the centring.
(CBE-opt, which learns r, is `baselines.cbe_opt`.)

Drawn from the run's seed, in the toolbox's order: the `bits` output positions kept (a random subset of the D,
demo.m l.167, 172), r ~ N(0, 1)^D (circulant_rand.m l.7) and the sign flips D_jj = +-1 (l.8-10, the sign of a
Gaussian draw). project(x) = (circ(r) D z)[kept] with z = x - mu, circ(r) the circulant matrix whose first column
is r, computed by FFT as a circular convolution (CBE_prediction.m l.12-25): (circ(r) y)_i = sum_j r_{(i-j) mod D} y_j.
The code bit is [project > 0]; the toolbox sends 0 to 1 (CBE_prediction.m l.27), which differs only for an output of
exactly 0. Needs bits <= D (the toolbox keeps all D outputs when asked for more).

Protocol: the toolbox centres by the mean of the training set and the queries together (utils/construct_data.m
l.82-83; the CBE readme asks for l2-normalised data, which its demo does not do); we centre by mu, the training mean,
and normalise nothing. No hyperparameters.
"""

import numpy as np

from baselines.shallow import ShallowHasher, feature_mean, in_chunks
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.registry import register


def circulant_product(vector, rows):
    """circ(`vector`) y for each row y of `rows` (N, D): the circular convolution of `vector` with y, by FFT."""
    dim = rows.shape[1]
    return np.fft.irfft(np.fft.rfft(rows, axis=1) * np.fft.rfft(vector), n=dim, axis=1)


class CBERand(ShallowHasher):
    """A random circulant projection of the sign-flipped, centred features (labels passed to fit are ignored)."""

    name = "cbe-rand"
    supervised = False

    def _fit(self, features, labels, hyperparameters):
        dim = features.shape[1]
        if self.hash_bits > dim:
            raise SaehError(f"cbe-rand: hash_bits={self.hash_bits} exceeds the feature dimension {dim}; a circulant "
                            f"projection gives at most {dim} bits")
        rng = np.random.default_rng(self.seed)
        kept = rng.permutation(dim)[: self.hash_bits]
        circulant = rng.standard_normal(dim)
        flips = np.where(rng.standard_normal(dim) > 0, 1.0, -1.0)
        return {"mean": feature_mean(features), "circulant": circulant, "flips": flips, "kept": kept}

    def _project(self, features):
        state = self.state
        return in_chunks(features, lambda chunk: circulant_product(
            state["circulant"], (chunk - state["mean"]) * state["flips"])[:, state["kept"]])


CBE_RAND_METHOD = register(ShallowMethod(
    "cbe-rand", "CBE-rand: signs of a random circulant projection of the sign-flipped, centred features "
    "(unsupervised)", CBERand), listing_order=260)
