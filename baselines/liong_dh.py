"""DH and SDH of Liong, Lu, Wang, Moulin & Zhou, "Deep Hashing for Compact Binary Codes Learning" (CVPR 2015): a
fully connected tanh network on image descriptors whose last layer gives the codes, trained on four terms (DH) or on
four terms with a supervised, discriminative one (SDH). Registered as `dh` and `sdh-liong` (`sdh` is Shen et al.'s
shallow SDH, `baselines.sdh`).

No official code and no full text of the paper could be read; we follow the paper's terms as METHODS.md section 14
quotes them (from the reading list) and mark below what is ours or unverified there. With h^0 = x - mu (the centred
features), h^m = tanh(W^m h^(m-1) + c^m) for m = 1..M, H = H^M (N x bits) and B = sgn(H), the objective is

    J = J1 - lambda1 J2 + lambda2 J3 + lambda3 J4,
    J1 = 1/2 ||B - H||^2                                   (quantisation loss),
    J2 = 1/(2N) tr(H^T H)                                   (DH: bit variance, "balance", maximised),
    J2 = 1/2 (tr(H^T H) / N + alpha tr(Sigma_B - Sigma_W))  (SDH),
    J3 = 1/2 sum_m ||W^m W^m^T - I||^2                      (independence),
    J4 = 1/2 sum_m (||W^m||^2 + ||c^m||^2)                  (weight regularisation),

with Sigma_W = 1/N_S sum over ordered same-class pairs i != j of (h_i - h_j)(h_i - h_j)^T, and Sigma_B the same over
the N_D different-class pairs; only their traces enter J, and those are summed per class in O(N bits)
(`pair_spread`), never over the N^2 pairs.

- Network [unverified in METHODS.md]: input -> 60 -> 30 -> bits, tanh on every layer (the sizes commonly cited).
- Constants: lambda1 = 100, lambda2 = lambda3 = 0.001 [unverified: an unnamed re-implementation's docstring];
  alpha = 1 (ours; CISiPLab/cisip-FIRe's default; the paper's is unverified).
- Optimisation (METHODS.md section 14 (c), [unverified]): R outer iterations of B = sgn(H^M) (0 -> +1) and one
  full-batch gradient step on every W^m, c^m by back-propagation, until J changes by less than epsilon (relative
  to J here). The step size and R are unknown: ours are a step of ``learning_rate`` on J / N (the same minimiser
  as J; the step then does not grow with the training set) and R = ``n_iter`` = 100, epsilon = ``tol`` = 1e-6.
- Start (ours; the paper's is unverified): W^1 the top principal directions of the training features (as rows),
  the later W^m random with orthonormal rows (or columns, where a layer widens) from the run's seed, so J3 starts
  at 0; c^m = 0. On the bundled MNIST sample (test set against training set) a random W^1 gave mAP@1000 0.21, this
  start 0.23. A first layer wider than the features starts random too.
- Features: the paper uses GIST descriptors (512-d on CIFAR-10): ``--features gist`` computes them as LMgist does
  (`baselines.gist`). By default the method is fitted on the features every shallow method here uses (raw pixels
  in [0, 1]; or a deep model's features with ``--features MODEL``), centred by the training mean (ours). On the
  bundled MNIST sample DH on GIST collapsed to chance (mAP@1000 0.106, 30 iterations, 2026-12-08) where ITQ on the
  same GIST scored 0.645. On CIFAR-10's raw pixels DH's minimum is a collapse: every
  bit a copy or complement of one (brightness, the first principal direction), at any of the weights tried, since
  nothing in J decorrelates the outputs (RESULTS.md, "DH's collapse"; `tools/dh_collapse.py` measures it).
- Labels (SDH): class ids, or multi-hot rows with one label each. Rows of several labels are refused: the paper's
  pairs are "same class" or not, and sharing any label has no per-class sum (it would cost N^2 a step).

Encode: project(x) = H^M(x), code bit = [project > 0]. Cost per iteration: two passes over X (N x D times D x 60;
CIFAR-10's 50,000 x 3,072 raw pixels in float32 take 0.6 GB and are read in chunks, never copied whole to float64).
"""

import dataclasses

import numpy as np

from baselines.shallow import (CHUNK_ROWS, ShallowHasher, check_sample_count, feature_mean, in_chunks,
                               principal_directions)
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def orthonormal_rows(n_rows, n_columns, rng):
    """A (n_rows, n_columns) Gaussian matrix made orthonormal by QR: orthonormal rows if n_rows <= n_columns, else
    orthonormal columns."""
    tall = rng.standard_normal((max(n_rows, n_columns), min(n_rows, n_columns)))
    q, r = np.linalg.qr(tall)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if n_rows <= n_columns else q


def class_ids(labels):
    """(N,) class ids of single-label data (ids or multi-hot rows of one label each); other multi-hot rows refused."""
    if labels.ndim == 1:
        return labels
    if not np.all(labels.sum(axis=1) == 1):
        raise SaehError("sdh-liong: labels must give each sample one class (its pairs are same-class or not); got "
                        "multi-hot rows with zero or several labels")
    return labels.argmax(axis=1)


def pair_spread(outputs, classes):
    """(tr Sigma_W, tr Sigma_B, their gradients (N, bits) with respect to `outputs`): the mean squared distance
    ||h_i - h_j||^2 over ordered same-class pairs i != j and over different-class pairs, summed per class:
    sum over the pairs of one class c = 2 n_c sum_(i in c) ||h_i||^2 - 2 ||s_c||^2, s_c the class's sum."""
    n_samples = len(outputs)
    _, which, counts = np.unique(classes, return_inverse=True, return_counts=True)
    which = which.reshape(-1)
    class_sums = np.zeros((len(counts), outputs.shape[1]))
    np.add.at(class_sums, which, outputs)
    norms = (outputs * outputs).sum(axis=1)
    own_count, own_sum = counts[which][:, None], class_sums[which]
    same_total = float(np.sum(2.0 * counts * np.bincount(which, weights=norms)) - 2.0 * np.sum(class_sums**2))
    all_sum = outputs.sum(axis=0)
    all_total = float(2.0 * n_samples * norms.sum() - 2.0 * all_sum @ all_sum)
    same_pairs = float(np.sum(counts * (counts - 1.0)))
    different_pairs = float(n_samples**2 - np.sum(counts * counts.astype(np.float64)))
    if same_pairs == 0 or different_pairs == 0:
        raise SaehError("sdh-liong: the training labels need a class of at least 2 samples and at least 2 classes")
    same_gradient = 4.0 * (own_count * outputs - own_sum)
    all_gradient = 4.0 * (n_samples * outputs - all_sum)
    return (same_total / same_pairs, (all_total - same_total) / different_pairs,
            same_gradient / same_pairs, (all_gradient - same_gradient) / different_pairs)


def signs(outputs):
    """B = sgn(H) with 0 -> +1."""
    return np.where(outputs >= 0, 1.0, -1.0)


def dh_objective_and_output_gradient(outputs, codes, settings, classes=None):
    """(J's data terms J1 - lambda1 J2, their gradient with respect to H (N, bits)); `classes` None gives DH's J2,
    class ids SDH's."""
    n_samples = len(outputs)
    residual = outputs - codes
    variance = float(np.sum(outputs * outputs)) / n_samples
    variance_gradient = 2.0 * outputs / n_samples
    if classes is None:
        balance, balance_gradient = 0.5 * variance, 0.5 * variance_gradient
    else:
        within, between, within_gradient, between_gradient = pair_spread(outputs, classes)
        balance = 0.5 * (variance + settings.alpha * (between - within))
        balance_gradient = 0.5 * (variance_gradient + settings.alpha * (between_gradient - within_gradient))
    value = 0.5 * float(np.sum(residual * residual)) - settings.lambda1 * balance
    return value, residual - settings.lambda1 * balance_gradient


def weight_terms(weights, biases, settings):
    """lambda2 J3 + lambda3 J4 and their gradients (lists, one per layer)."""
    value, weight_gradients = 0.0, []
    for weight, bias in zip(weights, biases):
        gram_excess = weight @ weight.T - np.eye(len(weight))
        value += 0.5 * settings.lambda2 * np.sum(gram_excess**2)
        value += 0.5 * settings.lambda3 * (np.sum(weight**2) + np.sum(bias**2))
        weight_gradients.append(2.0 * settings.lambda2 * gram_excess @ weight + settings.lambda3 * weight)
    return value, weight_gradients, [settings.lambda3 * bias for bias in biases]


def first_layer_inputs(features, mean, weight):
    """(x - mu) W^1^T for every row, in float64 chunks."""
    return in_chunks(features, lambda chunk: (chunk - mean) @ weight.T)


def forward(features, mean, weights, biases):
    """Every layer's output h^1 .. h^M (each (N, units)) of the network on `features`."""
    outputs = [np.tanh(first_layer_inputs(features, mean, weights[0]) + biases[0])]
    for weight, bias in zip(weights[1:], biases[1:]):
        outputs.append(np.tanh(outputs[-1] @ weight.T + bias))
    return outputs


def objective_and_gradients(features, mean, weights, biases, settings, classes=None, codes=None):
    """(J, dJ/dW^m list, dJ/dc^m list, H^M) at the given weights; B = sgn(H^M) unless `codes` are given."""
    outputs = forward(features, mean, weights, biases)
    if codes is None:
        codes = signs(outputs[-1])
    value, output_gradient = dh_objective_and_output_gradient(outputs[-1], codes, settings, classes)
    regulariser, weight_gradients, bias_gradients = weight_terms(weights, biases, settings)
    delta = output_gradient * (1.0 - outputs[-1] ** 2)
    for layer in range(len(weights) - 1, -1, -1):
        if layer > 0:
            weight_gradients[layer] = weight_gradients[layer] + delta.T @ outputs[layer - 1]
        else:
            weight_gradients[0] = weight_gradients[0] + _inputs_gradient(features, mean, delta)
        bias_gradients[layer] = bias_gradients[layer] + delta.sum(axis=0)
        if layer > 0:
            delta = (delta @ weights[layer]) * (1.0 - outputs[layer - 1] ** 2)
    return value + regulariser, weight_gradients, bias_gradients, outputs[-1]


def _inputs_gradient(features, mean, delta):
    """delta^T (X - mu), summed over float64 row chunks."""
    total = np.zeros((delta.shape[1], features.shape[1]))
    for start in range(0, len(features), CHUNK_ROWS):
        chunk = np.asarray(features[start : start + CHUNK_ROWS], dtype=np.float64) - mean
        total += delta[start : start + CHUNK_ROWS].T @ chunk
    return total


def train_dh(features, mean, weights, biases, settings, classes=None):
    """The alternation from the given start: (weights, biases, J before each step); stops after n_iter steps or
    when J changes by less than tol of itself."""
    weights, biases = [w.copy() for w in weights], [c.copy() for c in biases]
    step = settings.learning_rate / len(features)
    history = []
    for _ in range(settings.n_iter):
        value, weight_gradients, bias_gradients, _ = objective_and_gradients(features, mean, weights, biases,
                                                                             settings, classes)
        if not np.isfinite(value):
            raise SaehError("dh: the objective is not finite; lower learning_rate")
        if history and abs(history[-1] - value) < settings.tol * abs(value):
            history.append(value)
            break
        history.append(value)
        for layer in range(len(weights)):
            weights[layer] -= step * weight_gradients[layer]
            biases[layer] -= step * bias_gradients[layer]
    return weights, biases, history


@dataclasses.dataclass(frozen=True)
class DHHyperparameters(Hyperparameters):
    """DH's settings (module docstring: which are the paper's as METHODS.md section 14 quotes it, which ours)."""

    first_units: int = hyperparameter(60, "positive integer", "units of the first hidden layer [unverified]")
    second_units: int = hyperparameter(30, "positive integer", "units of the second hidden layer [unverified]")
    lambda1: float = hyperparameter(100.0, "non-negative", "weight of the balance term J2 (maximised)")
    lambda2: float = hyperparameter(1e-3, "non-negative", "weight of the independence term J3")
    lambda3: float = hyperparameter(1e-3, "non-negative", "weight of the weight regularisation J4")
    learning_rate: float = hyperparameter(1.0, "positive", "gradient step on J / N (ours; the paper's is unknown)")
    n_iter: int = hyperparameter(100, "positive integer", "outer iterations R of sgn and gradient step (ours)")
    tol: float = hyperparameter(1e-6, "non-negative", "relative change of J that stops the iterations (ours)")


@dataclasses.dataclass(frozen=True)
class SDHLiongHyperparameters(DHHyperparameters):
    """SDH's settings: DH's and the weight of the discriminative term."""

    alpha: float = hyperparameter(1.0, "non-negative", "weight of tr(Sigma_B - Sigma_W) in J2 (ours: cisip-FIRe's)")


class DH(ShallowHasher):
    """DH: unsupervised (labels passed to fit are ignored)."""

    name = "dh"
    supervised = False
    defaults = DHHyperparameters()

    def _classes(self, labels):
        return None

    def _fit(self, features, labels, hyperparameters):
        check_sample_count(self.name, len(features))
        classes = self._classes(labels)
        sizes = [features.shape[1], hyperparameters.first_units, hyperparameters.second_units, self.hash_bits]
        rng = np.random.default_rng(self.seed)
        mean = feature_mean(features)
        weights = [orthonormal_rows(sizes[m + 1], sizes[m], rng) for m in range(3)]
        if sizes[1] <= sizes[0]:
            weights[0] = principal_directions(features, mean, sizes[1]).T
        biases = [np.zeros(size) for size in sizes[1:]]
        weights, biases, history = train_dh(features, mean, weights, biases, hyperparameters, classes)
        self.objective_ = history
        state = {"mean": mean}
        for layer, (weight, bias) in enumerate(zip(weights, biases), start=1):
            state[f"weight{layer}"], state[f"bias{layer}"] = weight, bias
        return state

    def _project(self, features):
        state = self.state
        weights = [state[f"weight{layer}"] for layer in (1, 2, 3)]
        biases = [state[f"bias{layer}"] for layer in (1, 2, 3)]
        return in_chunks(features, lambda chunk: forward(chunk, state["mean"], weights, biases)[-1])


class SDHLiong(DH):
    """SDH of Liong et al.: DH with the discriminative term; fit needs labels, one class a sample."""

    name = "sdh-liong"
    supervised = True
    defaults = SDHLiongHyperparameters()

    def _classes(self, labels):
        return class_ids(labels)


# Beside Shen's SDH (112), before ITQ and KSH (140, 150).
DH_METHOD = register(ShallowMethod(
    "dh", "DH (Liong et al.): a 60-30-bits tanh network on the features; quantisation, balance, independence and "
    "weight terms (unsupervised)", DH), listing_order=114)
SDH_LIONG_METHOD = register(ShallowMethod(
    "sdh-liong", "SDH of Liong et al. (not Shen's `sdh`): DH plus between- minus within-class spread of the outputs "
    "(supervised)", SDHLiong, multi_label=False), listing_order=116)
