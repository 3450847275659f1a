"""SDH, supervised discrete hashing (F. Shen, C. Shen, W. Liu & H. T. Shen, CVPR 2015), shallow: RBF features on
anchors, a linear hash function, and binary codes of the training set solved directly by discrete cyclic coordinate
descent (DCC).

Written from the authors' released MATLAB code, bd622/DiscretHashing at bfaafc1 (its README names the paper):
`demo_SDH.m`, `SDH.m`, `RRC.m`, `prepare_dataset.m`; METHODS.md section 15 has the facts, and TreezzZ/SDH_PyTorch
`sdh.py` (a82cc31) the differences noted below. With B in {-1, 1}^(N x L) the training codes, Y (N x C) the
one-hot or multi-hot labels, phi(X) (N x (m + 1)) the features and W (L x C), P ((m + 1) x L) the classifier and the
hash projection, the objective is

    J = ||Y - B W||^2 + lambda_w ||W||^2 + nu (||B - phi(X) P||^2 + lambda_p ||P||^2).

The paper writes the F-term without lambda_p; the authors' F-step is a ridge regression (`SDH.m` l.38, 93 with
Fmap.lambda = 1e-2, `demo_SDH.m` l.54), which is the exact minimiser of this J over P, so each step below lowers J
or leaves it unchanged (the objective after each outer iteration is kept in ``objective_``).

- Features: each row scaled to unit length (`prepare_dataset.m` l.7-8, `normalize.m`; a zero row stays zero);
  ``n_anchors`` = 1000 of them drawn at random (seeded) as anchors (`demo_SDH.m` l.29-31; all rows if fewer);
  phi(x) = [exp(-||x - a_j||^2 / (2 sigma^2))]_j with a constant 1 appended (`demo_SDH.m` l.39-41: sigma = 0.4
  "for normalized data"). TreezzZ instead uses sklearn's rbf_kernel with gamma = sigma on raw features, no
  constant column and no normalisation.
- Start: B = sgn(randn) (`demo_SDH.m` l.61-62, seeded here); a G-step and an F-step (`SDH.m` l.28, 38).
- G-step: W = (B^T B + lambda_w I)^-1 B^T Y (`RRC.m` l.7, 14), lambda_w = 1 (`demo_SDH.m` l.51).
- F-step: P = (phi^T phi + lambda_p I)^-1 phi^T B (`RRC.m`), lambda_p = 1e-2. TreezzZ: a pseudo-inverse, no ridge.
- B-step (`SDH.m` l.55-69): Q = nu phi P + Y W^T; for each bit k in turn, with B' and W' without bit k and w_k row
  k of W, column k becomes sgn(q_k - B' W' w_k^T), the exact minimiser of J over that column (the others fixed);
  up to ``dcc_sweeps`` = 10 sweeps over the bits, stopping when ||B - B_before|| < 1e-6 ||B_before||. TreezzZ
  runs one sweep. Where the argument is exactly 0 both values give the same J: the bit keeps its value (MATLAB's
  sign would write a 0).
- ``n_iter`` = 5 outer iterations of B-, G- and F-step (`demo_SDH.m` l.50), nu = 1e-5 (l.53); the code stops early
  when ||B - phi P||_F < tol ||B||_F or ||P - P_before||_F < tol ||P_before||_2, tol = 1e-5 (`SDH.m` l.8, 100-111).

Encode: project(x) = phi(x) P (the authors' test codes, `demo_SDH.m` l.79-82), code bit = [project > 0].
Cost: the kernel is O(N m D) (MNIST 60,000 x 784, 1,000 anchors: 480 MB of float64); each DCC bit O(N C).
"""

import dataclasses

import numpy as np

from baselines.ksh import squared_distances
from baselines.shallow import ShallowHasher, in_chunks
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register

# `SDH.m` l.66: a B-step's sweeps stop when a sweep changes B by less than this fraction (Frobenius norms).
DCC_CHANGE_TOLERANCE = 1e-6


def unit_rows(features):
    """Each row divided by its Euclidean length; zero rows stay zero (`normalize.m`)."""
    lengths = np.sqrt((features * features).sum(axis=1, keepdims=True))
    return features / np.where(lengths > 0, lengths, 1.0)


def rbf_features(features, anchors, sigma):
    """phi(x) = [exp(-||x - a_j||^2 / (2 sigma^2)) for each anchor a_j, then 1] of unit-length `features` (n, m+1)."""
    kernel = np.exp(squared_distances(features, anchors) / (-2.0 * sigma * sigma))
    return np.concatenate([kernel, np.ones((len(kernel), 1))], axis=1)


def ridge_regression(inputs, targets, weight):
    """argmin_M ||targets - inputs M||^2 + weight ||M||^2 = (inputs^T inputs + weight I)^-1 inputs^T targets.

    The G-step (inputs B, targets Y, weight lambda_w) and the F-step (inputs phi, targets B, weight lambda_p)."""
    gram = inputs.T @ inputs + weight * np.eye(inputs.shape[1])
    return np.linalg.solve(gram, inputs.T @ targets)


def sdh_objective(codes, labels, features, classifier, projection, lambda_w, lambda_p, nu):
    """J = ||Y - B W||^2 + lambda_w ||W||^2 + nu (||B - phi P||^2 + lambda_p ||P||^2) (module docstring)."""
    return float(np.sum((labels - codes @ classifier) ** 2) + lambda_w * np.sum(classifier**2)
                 + nu * (np.sum((codes - features @ projection) ** 2) + lambda_p * np.sum(projection**2)))


def update_bit(codes, bit, targets, classifier, codes_times_classifier):
    """One DCC step, in place: column `bit` of `codes` (N, L) becomes sgn(q - B' W' w^T), B' W' = B W - b w.

    `targets` is Q = nu phi P + Y W^T (N, L); `codes_times_classifier` is B W (N, C), kept up to date here."""
    row = classifier[bit]
    column = codes[:, bit]
    others = codes_times_classifier - np.outer(column, row)
    argument = targets[:, bit] - others @ row
    new_column = np.where(argument > 0, 1.0, np.where(argument < 0, -1.0, column))
    codes_times_classifier += np.outer(new_column - column, row)
    codes[:, bit] = new_column


def discrete_cyclic_descent(codes, targets, classifier, max_sweeps):
    """The B-step: up to `max_sweeps` sweeps of `update_bit` over the bits in order, on a copy of `codes`; a sweep
    that changes B by less than DCC_CHANGE_TOLERANCE of its norm ends it (`SDH.m` l.58-69)."""
    codes = np.array(codes, dtype=np.float64)
    codes_times_classifier = codes @ classifier
    for _ in range(max_sweeps):
        before = codes.copy()
        for bit in range(codes.shape[1]):
            update_bit(codes, bit, targets, classifier, codes_times_classifier)
        if np.linalg.norm(codes - before) < DCC_CHANGE_TOLERANCE * np.linalg.norm(before):
            break
    return codes


def label_matrix(labels):
    """Y (N, C) float: one-hot of class ids (over the classes present) or the multi-hot rows as given."""
    if labels.ndim == 2:
        return labels.astype(np.float64)
    _, which = np.unique(labels, return_inverse=True)
    return np.eye(int(which.max()) + 1)[which.reshape(-1)]


def solve_sdh(features, labels, initial_codes, settings):
    """SDH's alternation from `initial_codes`: (B, W, P, J after the start and after each outer iteration).

    `features` is phi(X) (N, m+1), `labels` Y (N, C); `settings` the resolved `SDHHyperparameters`."""
    lambda_w, lambda_p, nu = settings.lambda_w, settings.lambda_p, settings.nu
    codes = np.array(initial_codes, dtype=np.float64)
    classifier = ridge_regression(codes, labels, lambda_w)
    projection = ridge_regression(features, codes, lambda_p)
    objective = [sdh_objective(codes, labels, features, classifier, projection, lambda_w, lambda_p, nu)]
    for _ in range(settings.n_iter):
        targets = nu * (features @ projection) + labels @ classifier.T
        codes = discrete_cyclic_descent(codes, targets, classifier, settings.dcc_sweeps)
        classifier = ridge_regression(codes, labels, lambda_w)
        previous = projection
        projection = ridge_regression(features, codes, lambda_p)
        objective.append(sdh_objective(codes, labels, features, classifier, projection, lambda_w, lambda_p, nu))
        if (np.linalg.norm(codes - features @ projection) < settings.tol * np.linalg.norm(codes)
                or np.linalg.norm(projection - previous) < settings.tol * np.linalg.norm(previous, 2)):
            break
    return codes, classifier, projection, objective


@dataclasses.dataclass(frozen=True)
class SDHHyperparameters(Hyperparameters):
    """SDH's settings: the authors' `demo_SDH.m` and `SDH.m` (module docstring, with lines)."""

    n_anchors: int = hyperparameter(1000, "positive integer", "RBF anchors m drawn from the training features")
    sigma: float = hyperparameter(0.4, "positive", "RBF width on unit-length features")
    lambda_w: float = hyperparameter(1.0, "non-negative", "ridge weight of the classifier W (G-step)")
    lambda_p: float = hyperparameter(1e-2, "positive", "ridge weight of the projection P (F-step)")
    nu: float = hyperparameter(1e-5, "positive", "weight of the fit of the codes B to phi(X) P")
    n_iter: int = hyperparameter(5, "positive integer", "outer iterations of B-, G- and F-step")
    dcc_sweeps: int = hyperparameter(10, "positive integer", "most DCC sweeps over the bits in one B-step")
    tol: float = hyperparameter(1e-5, "non-negative", "relative change that stops the outer iterations early")


class SDH(ShallowHasher):
    """Supervised discrete hashing; fit needs labels ((N,) class ids or (N, C) multi-hot)."""

    name = "sdh"
    supervised = True
    defaults = SDHHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples = len(features)
        n_anchors = min(hyperparameters.n_anchors, n_samples)  # a smaller training set is used whole
        rng = np.random.default_rng(self.seed)
        anchor_rows = np.sort(rng.choice(n_samples, n_anchors, replace=False))
        anchors = unit_rows(np.asarray(features[anchor_rows], dtype=np.float64))
        sigma = hyperparameters.sigma
        phi = in_chunks(features, lambda chunk: rbf_features(unit_rows(chunk), anchors, sigma))
        initial_codes = np.where(rng.standard_normal((n_samples, self.hash_bits)) > 0, 1.0, -1.0)
        codes, _, projection, objective = solve_sdh(phi, label_matrix(labels), initial_codes, hyperparameters)
        if not np.all(np.isfinite(projection)):
            raise SaehError("sdh: the projection P is not finite; check the features and lambda_p")
        self.objective_ = objective
        self.training_codes_ = codes
        return {"anchors": anchors, "projection": projection}

    def _rbf_chunk(self, chunk):
        return rbf_features(unit_rows(chunk), self.state["anchors"], self.hyperparameters.sigma)

    def rbf_features(self, features):
        """phi(x) (N, m+1) of `features` against the fitted anchors."""
        return in_chunks(features, self._rbf_chunk)

    def _project(self, features):
        projection = self.state["projection"]
        return in_chunks(features, lambda chunk: self._rbf_chunk(chunk) @ projection)


SDH_METHOD = register(ShallowMethod(
    "sdh", "SDH: RBF features on 1,000 anchors; codes solved by discrete cyclic coordinate descent (supervised)", SDH),
    # Among the methods of a hashing loss, before the codes of a classifier (DLBHC, 120), as the tables list them
    # (saeh.reproduce.tables.other_sources_methods); ITQ and KSH (140, 150) are Table 1's own.
    listing_order=112)
