"""SKLSH, locality-sensitive binary codes from shift-invariant kernels (Raginsky & Lazebnik, NIPS 2009), as the HABIR
toolbox (willard-yuan/hashing-baseline-for-image-retrieval, commit 8228378) runs it: Method-SKLSH/RF_train.m and
RF_compress.m, with the Gaussian kernel exp(-gamma ||x - y||^2 / 2). Unsupervised; nothing is learned but the data's
scale and mean.

Random Fourier features, all drawn from the run's seed (RF_train.m l.9-12): R (D, bits) with N(0, gamma) entries,
phases b ~ U[0, 2 pi) and thresholds t ~ U[-sqrt 2, sqrt 2], one per bit. project(x) = sqrt 2 cos(z R + b) + t with
z = (x - mu) / s; the code bit is [project > 0] (RF_compress.m l.20-21: sign, then > 0; 0 maps to 0).

The kernel's width only means something against the data's scale: the toolbox divides its features by s, the mean
distance from 100 randomly chosen training points to their 50th nearest training point (the point itself counted
first; utils/construct_data.m l.15, 56-63), before centring them; we do the same on the training features (the
sample drawn from the run's seed, before R), so that gamma = 1 (demo.m l.108) means what it means there. The toolbox
centres by the mean of the training set and the queries together (construct_data.m l.82-83); we centre by mu, the
training mean.

Hyperparameters: ``gamma`` = 1 (demo.m l.108), ``n_neighbours`` = 50 (construct_data.m l.15), ``n_scale_samples`` =
100 (construct_data.m l.57); a training set smaller than either count is used whole.
"""

import dataclasses

import numpy as np

from baselines.shallow import ShallowHasher, feature_mean, in_chunks, squared_distances
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def neighbour_distance_scale(features, n_neighbours, n_samples, rng):
    """Mean distance from `n_samples` training points (drawn by `rng`) to their `n_neighbours`-th nearest training
    point, each point counting as its own first neighbour (both counts capped at the number of points)."""
    chosen = np.sort(rng.choice(len(features), min(n_samples, len(features)), replace=False))
    sample = np.asarray(features[chosen], dtype=np.float64)
    distances = np.sqrt(in_chunks(features, lambda chunk: squared_distances(sample, chunk).T).T)  # (samples, N)
    rank = min(n_neighbours, len(features)) - 1
    return float(np.partition(distances, rank, axis=1)[:, rank].mean())


@dataclasses.dataclass(frozen=True)
class SKLSHHyperparameters(Hyperparameters):
    """SKLSH's settings (module docstring; values from the HABIR toolbox)."""

    gamma: float = hyperparameter(1.0, "positive", "Gaussian kernel's inverse squared width, on features scaled so "
                                                   "that the mean 50th-neighbour distance is 1 (demo.m l.108)")
    n_neighbours: int = hyperparameter(50, "positive integer", "the neighbour whose mean distance sets the features' "
                                                               "scale (construct_data.m l.15)")
    n_scale_samples: int = hyperparameter(100, "positive integer", "training points that distance is averaged over "
                                                                   "(construct_data.m l.57)")


class SKLSH(ShallowHasher):
    """Signs of thresholded random Fourier features (labels passed to fit are ignored)."""

    name = "sklsh"
    supervised = False
    defaults = SKLSHHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        rng = np.random.default_rng(self.seed)
        scale = neighbour_distance_scale(features, hyperparameters.n_neighbours, hyperparameters.n_scale_samples, rng)
        if scale <= 0:
            raise SaehError("sklsh: the training features' neighbour distance is 0 (duplicated samples?); the "
                            "kernel's scale would be 0")
        dim = features.shape[1]
        frequencies = rng.standard_normal((dim, self.hash_bits)) * np.sqrt(hyperparameters.gamma)
        phases = rng.uniform(0.0, 2.0 * np.pi, self.hash_bits)
        thresholds = rng.uniform(-np.sqrt(2.0), np.sqrt(2.0), self.hash_bits)
        return {"mean": feature_mean(features), "scale": np.float64(scale), "frequencies": frequencies,
                "phases": phases, "thresholds": thresholds}

    def _project(self, features):
        state = self.state
        return in_chunks(features, lambda chunk: np.sqrt(2.0) * np.cos(
            (chunk - state["mean"]) / state["scale"] @ state["frequencies"] + state["phases"]) + state["thresholds"])


SKLSH_METHOD = register(ShallowMethod(
    "sklsh", "SKLSH: signs of thresholded random Fourier features of a Gaussian kernel (unsupervised)", SKLSH),
    listing_order=240)
