"""SELVE, sparse embedding and least variance encoding (Zhu, Zhang & Huang, IEEE TIP 23(9), 2014), as the HABIR
toolbox (willard-yuan/hashing-baseline-for-image-retrieval, commit 8228378) runs it: Method-SELVE/initSELVE.m,
trainSELVE.m, compressSELVE.m, learn_basis.m and litekmeans.m, with demo.m l.70-78. We follow the code.

On the centred features X (N x D; centred by the training mean, as the toolbox's data are):

1. Anchors (initSELVE.m l.3-12): m = 300 k-means centres (litekmeans, 10 rounds, one start), each row's own
   centre a_(l(i)); Gamma = X - A_l its residuals.
2. Projection (trainSELVE.m l.17-22): P (D x p) = the eigenvectors of beta Gamma^T Gamma - X^T X with the p = 300
   largest-magnitude eigenvalues (`eigs`), beta = 0.5; p is capped at D. Eigenvector signs fixed here (largest
   entry positive). X and the anchors are projected: X P, A P.
3. Sparse embedding (l.24-53): each row's s = 2 nearest projected anchors, squared distances d; sigma = the mean of
   sqrt(d) to the s-th anchor (training set, kept for encoding); weights exp(-d / sigma^2) normalised to sum 1 (we
   subtract the row's smallest d first: the same weights without underflow); Z (N x m) holds them; then each
   column is divided by the square root of its sum over the training rows (empty columns stay 0).
4. Least variance encoding (l.55-74): a dictionary D (m x bits) from U[-1/2, 1/2], columns centred and of unit
   length; 10 times: the ridge codes S = (D^T D + lambda I)^-1 (D^T z + lambda u) for every row (bits x N),
   lambda = 0.1, u the mean code of the previous round (0 at first), u = mean of S; then D = argmin 1/2 ||Z^T - D S||^2
   subject to ||d_j|| <= 1 (learn_basis.m, Lee et al.'s Lagrange dual: maximise over mu >= 0
   -tr(Z^T S^T (S S^T + diag mu)^-1 S Z) - sum mu, then D = Z^T S^T (S S^T + diag mu)^-1; the toolbox's fmincon
   trust region is scipy's L-BFGS-B here).
5. Codes (l.75-81, compressSELVE.m): with T = (D^T D + lambda I)^-1 D^T and the offset lambda (D^T D + lambda I)^-1 u
   of the last round (D before its last update, as the code keeps them), bit = [T z + offset > u].

Deviation: compressSELVE.m scales the queries' Z columns by the queries' own column sums (a code that depends on
the other queries); we use the training set's, so one image's code does not depend on its batch.

Encode: project(x) = T z(x) + offset - u, code bit = [project > 0]. Cost: X^T X and Gamma^T Gamma (D x D, CIFAR-10's
3,072: 75 MB each), summed in chunks; Z is N x m float64 (50,000 x 300: 120 MB).
"""

import dataclasses

import numpy as np
import scipy.optimize

from baselines.dsh_density import lite_kmeans
from baselines.shallow import CHUNK_ROWS, ShallowHasher, check_sample_count, feature_mean, in_chunks, squared_distances
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def least_variance_directions(features, mean, labels, centres, residual_weight, n_components):
    """P (D, n_components): eigenvectors of residual_weight Gamma^T Gamma - X^T X with the largest |eigenvalues|,
    X the centred `features`, Gamma = X - centres[labels] (`centres` in centred coordinates); signs fixed."""
    dim = features.shape[1]
    scatter, residual_scatter = np.zeros((dim, dim)), np.zeros((dim, dim))
    for start in range(0, len(features), CHUNK_ROWS):
        centred = np.asarray(features[start : start + CHUNK_ROWS], dtype=np.float64) - mean
        residuals = centred - centres[labels[start : start + CHUNK_ROWS]]
        scatter += centred.T @ centred
        residual_scatter += residuals.T @ residuals
    values, vectors = np.linalg.eigh(residual_weight * residual_scatter - scatter)
    top = vectors[:, np.argsort(-np.abs(values), kind="stable")[:n_components]]
    signs = np.sign(top[np.argmax(np.abs(top), axis=0), np.arange(n_components)])
    return top * np.where(signs == 0, 1.0, signs)


def anchor_weights(projected, anchors, n_nearest, sigma=None):
    """(Z (n, m): Gaussian weights exp(-d / sigma^2) of each row's `n_nearest` anchors, normalised per row, sigma):
    sigma None is worked out as the mean distance to the n_nearest-th anchor."""
    squared = squared_distances(projected, anchors)
    nearest = np.argsort(squared, axis=1, kind="stable")[:, :n_nearest]
    distances = np.take_along_axis(squared, nearest, axis=1)
    if sigma is None:
        sigma = float(np.mean(np.sqrt(distances[:, -1])))
    weights = np.exp(-(distances - distances[:, :1]) / (sigma * sigma))
    embedding = np.zeros_like(squared)
    np.put_along_axis(embedding, nearest, weights / weights.sum(axis=1, keepdims=True), axis=1)
    return embedding, sigma


def ridge_codes(dictionary, embedding, mean_code, ridge):
    """(T (bits, m), offset (bits,)): the codes S = T z + offset minimise ||z - D s||^2 + ridge ||s - u||^2."""
    inverse = np.linalg.inv(dictionary.T @ dictionary + ridge * np.eye(dictionary.shape[1]))
    return inverse @ dictionary.T, ridge * inverse @ mean_code


def learn_basis(targets, codes, start):
    """argmin_D 1/2 ||targets - D codes||^2 subject to every column of D of length <= 1, by Lee et al.'s Lagrange
    dual (learn_basis.m): `targets` (m, N), `codes` (bits, N), `start` the previous D (its dual start)."""
    codes_gram = codes @ codes.T
    cross = targets @ codes.T  # (m, bits)
    start_dual = np.diag(np.linalg.lstsq(start, cross, rcond=None)[0] - codes_gram)

    def negative_dual(dual):
        inverse = np.linalg.inv(codes_gram + np.diag(dual))
        product = cross @ inverse
        value = -np.sum(product * cross) - dual.sum()
        return -value, -(np.sum(product * product, axis=0) - 1.0)

    result = scipy.optimize.minimize(negative_dual, np.maximum(start_dual, 0.0), jac=True, method="L-BFGS-B",
                                     bounds=[(0.0, None)] * len(codes_gram),
                                     options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 1000})
    return np.linalg.solve(codes_gram + np.diag(result.x), cross.T).T


def least_variance_encoding(embedding, dictionary, settings):
    """The alternation of `ridge_codes` and `learn_basis` on Z (N, m) from `dictionary`: (T, offset, u, D)."""
    targets = embedding.T
    mean_code = np.zeros(dictionary.shape[1])
    for _ in range(settings.n_iter):
        transform, offset = ridge_codes(dictionary, targets, mean_code, settings.ridge)
        codes = transform @ targets + offset[:, None]
        mean_code = codes.mean(axis=1)
        dictionary = learn_basis(targets, codes, dictionary)
    return transform, offset, mean_code, dictionary


@dataclasses.dataclass(frozen=True)
class SELVEHyperparameters(Hyperparameters):
    """SELVE's settings: the toolbox's initSELVE.m l.3-10 and trainSELVE.m l.55."""

    n_anchors: int = hyperparameter(300, "positive integer", "k-means anchors m")
    n_nearest: int = hyperparameter(2, "positive integer", "nearest anchors s a row is embedded on")
    ridge: float = hyperparameter(0.1, "positive", "lambda, the pull of the codes to their mean")
    residual_weight: float = hyperparameter(0.5, "non-negative", "beta, the weight of the anchor residuals")
    reduced_dim: int = hyperparameter(300, "positive integer", "dimensions the projection keeps (at most D)")
    kmeans_iter: int = hyperparameter(10, "positive integer", "k-means rounds")
    n_iter: int = hyperparameter(10, "positive integer", "rounds of ridge codes and dictionary")


class SELVE(ShallowHasher):
    """Sparse anchor embedding and least variance encoding (labels passed to fit are ignored)."""

    name = "selve"
    supervised = False
    defaults = SELVEHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples, dim = features.shape
        check_sample_count(self.name, n_samples)
        n_anchors = min(hyperparameters.n_anchors, n_samples)  # a smaller training set: every sample an anchor
        if hyperparameters.n_nearest > n_anchors:
            raise SaehError(f"selve: needs n_nearest <= the {n_anchors} anchors; got "
                            f"n_nearest={hyperparameters.n_nearest}")
        rng = np.random.default_rng(self.seed)
        mean = feature_mean(features)
        clusters, centres = lite_kmeans(features, n_anchors, hyperparameters.kmeans_iter, rng)
        centres = centres - mean
        projection = least_variance_directions(features, mean, clusters, centres, hyperparameters.residual_weight,
                                               min(hyperparameters.reduced_dim, dim))
        anchors = centres @ projection
        projected = in_chunks(features, lambda chunk: (chunk - mean) @ projection)
        embedding, sigma = anchor_weights(projected, anchors, hyperparameters.n_nearest)
        column_sums = embedding.sum(axis=0)
        column_scale = np.where(column_sums > 0, 1.0 / np.sqrt(np.where(column_sums > 0, column_sums, 1.0)), 0.0)
        dictionary = rng.random((n_anchors, self.hash_bits)) - 0.5
        dictionary -= dictionary.mean(axis=0)
        dictionary /= np.sqrt((dictionary * dictionary).sum(axis=0))
        transform, offset, mean_code, _ = least_variance_encoding(embedding * column_scale, dictionary,
                                                                  hyperparameters)
        return {"mean": mean, "projection": projection, "anchors": anchors, "sigma": np.float64(sigma),
                "column_scale": column_scale, "transform": transform, "threshold": mean_code - offset}

    def _project(self, features):
        state = self.state

        def outputs(chunk):
            embedding, _ = anchor_weights((chunk - state["mean"]) @ state["projection"], state["anchors"],
                                          self.hyperparameters.n_nearest, float(state["sigma"]))
            return (embedding * state["column_scale"]) @ state["transform"].T - state["threshold"]

        return in_chunks(features, outputs)


SELVE_METHOD = register(ShallowMethod(
    "selve", "SELVE: features projected by beta Gamma^T Gamma - X^T X, sparse embedding on 2 of 300 k-means anchors, "
    "codes by least variance encoding with a learned dictionary (unsupervised)", SELVE), listing_order=285)
