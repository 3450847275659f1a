"""CBE-opt, circulant binary embedding with a learned circulant (Yu, Kumar, Gong & Chang, ICML 2014), as the HABIR
toolbox (willard-yuan/hashing-baseline-for-image-retrieval, commit 8228378) runs it: Method-CBE/circulant/
circulant_learning.m, optimize_B.m, optimize_R.m and CBE_prediction.m, with demo.m l.178-199. We follow the code.

With z = D (x - mu) the sign-flipped, centred features (D_jj = +-1 the sign of a Gaussian draw, 0 -> -1,
circulant_learning.m l.10-16) and R = circ(r) (its first column r, so R z = r (*) z, the circular convolution),
the objective over the codes B in {-1, 1}^(N x d) and r is (circulant_learning.m l.79-90)

    J(B, r) = ||B - Z R^T||^2 + lambda ||R^T R - I||^2
            = 1/d sum_i ||F b_i - F r o F z_i||^2 + lambda sum_k (|F r_k|^2 - 1)^2

(Parseval; R^T R is circulant with eigenvalues |F r_k|^2). It alternates, from r ~ N(0, 1)^d (l.45):

- B-step (optimize_B.m): B = sgn(Z R^T), 0 -> +1, the exact minimiser over B.
- R-step (optimize_R.m): the frequencies decouple. With m_k = sum_i |F z_ik|^2 / d, h_k = -2/d sum_i Re(F z_ik
  conj(F b_ik)) and g_k = 2/d sum_i (Im F z_ik Re F b_ik - Re F z_ik Im F b_ik), frequency k's share is
  f_k(a + ic) = m_k (a^2 + c^2) + h_k a + g_k c + lambda (a^2 + c^2 - 1)^2 (for k and d - k together, twice that).
  The toolbox runs fminunc (BFGS) from the current value; we take the exact global minimiser: the direction
  -(h + ig)/|h + ig| and the length rho >= 0 that minimises m rho^2 - |h + ig| rho + lambda (rho^2 - 1)^2 (a root
  of a cubic). F r_0 and, for even d, F r_(d/2) are real (r is real); the toolbox solves the latter as complex and
  keeps real(ifft) at the end.
- Stops when J falls by less than 0.1 in an iteration or after 501 R-steps (`while ops > 0.1 && iter <= 500`).

Protocol as the demo: fitted on at most 5,000 training rows (drawn at random here, seeded; the toolbox takes the
first 5,000 of its shuffled set), at full length d (the demo never passes its bits to circulant_learning), then
the first `bits` outputs are kept. Centred by the training mean (the toolbox: by the mean of training set and
queries; the CBE readme's l2-normalisation is not done, as in the demo). Needs bits <= d.

Encode: project(x) = (r (*) D (x - mu))[:bits], code bit = [project > 0] (the toolbox sends 0 to 1).
Cost: the rfft of the fitted rows, 5,000 x (d/2 + 1) complex128 (CIFAR-10's d = 3,072: 123 MB).
"""

import dataclasses

import numpy as np

from baselines.cbe import circulant_product
from baselines.shallow import ShallowHasher, check_sample_count, feature_mean, in_chunks
from baselines.shallow_methods import ShallowMethod
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter
from saeh.registry import register


def frequency_lengths(linear, quadratic, weight):
    """For each frequency, argmin over rho >= 0 of quadratic rho^2 - linear rho + weight (rho^2 - 1)^2 (`linear`
    >= 0): the best of 0 and the positive real roots of its derivative 4 weight rho^3 + (2 quadratic - 4 weight) rho
    - linear (eigenvalues of the cubics' companion matrices, all at once)."""
    def value(rho):
        return quadratic * rho * rho - linear * rho + weight * (rho * rho - 1) ** 2

    if weight == 0:  # a quadratic: its vertex (quadratic > 0 wherever the features vary)
        return np.where(quadratic > 0, linear / (2.0 * np.where(quadratic > 0, quadratic, 1.0)), 0.0)
    companion = np.zeros((len(linear), 3, 3))
    companion[:, 0, 1] = -(2.0 * quadratic - 4.0 * weight) / (4.0 * weight)
    companion[:, 0, 2] = linear / (4.0 * weight)
    companion[:, 1, 0] = companion[:, 2, 1] = 1.0
    roots = np.linalg.eigvals(companion)
    real = (np.abs(roots.imag) <= 1e-9 * (1.0 + np.abs(roots))) & (roots.real > 0)
    candidates = np.concatenate([np.zeros((len(linear), 1)), np.where(real, roots.real, 0.0)], axis=1)
    best = np.argmin(value(candidates.T).T, axis=1)
    return candidates[np.arange(len(linear)), best]


def optimise_frequencies(spectrum_z, spectrum_b, dim, weight):
    """The R-step: F r on the rfft frequencies (dim // 2 + 1), each the global minimiser of its f_k (module
    docstring); `spectrum_z`, `spectrum_b` are the rfft rows of Z and B. F r_0 and, for even dim, F r_(dim/2) are
    kept real."""
    quadratic = np.sum(spectrum_z.real**2 + spectrum_z.imag**2, axis=0) / dim
    linear_real = -2.0 * np.sum(spectrum_z.real * spectrum_b.real + spectrum_z.imag * spectrum_b.imag, axis=0) / dim
    linear_imag = 2.0 * np.sum(spectrum_z.imag * spectrum_b.real - spectrum_z.real * spectrum_b.imag, axis=0) / dim
    real_only = np.zeros(len(quadratic), dtype=bool)
    real_only[0] = True
    if dim % 2 == 0:
        real_only[dim // 2] = True
    direction = linear_real + 1j * np.where(real_only, 0.0, linear_imag)
    size = np.abs(direction)
    lengths = frequency_lengths(size, quadratic, weight)
    # Along -direction; with no linear term any direction is as good: the real axis.
    return np.where(size > 0, -lengths * direction / np.where(size > 0, size, 1.0), lengths + 0j)


def cbe_objective(codes, projected, circulant, weight):
    """J = ||B - Z R^T||^2 + lambda ||R^T R - I||^2 in the time domain (`projected` = Z R^T), R^T R's eigenvalues
    |F r|^2."""
    power = np.abs(np.fft.fft(circulant)) ** 2
    return float(np.sum((codes - projected) ** 2) + weight * np.sum((power - 1) ** 2))


def learn_circulant(rows, start, settings):
    """The alternation on `rows` (Z, N x d) from the circulant `start`: (r, J after the first B-step and after
    each R- and B-step pair)."""
    dim, weight = rows.shape[1], settings.orthogonality_weight
    spectrum_z = np.fft.rfft(rows, axis=1)
    circulant = start
    projected = circulant_product(circulant, rows)
    codes = np.where(projected >= 0, 1.0, -1.0)
    history = [cbe_objective(codes, projected, circulant, weight)]
    for _ in range(settings.max_iter + 1):
        circulant = np.fft.irfft(optimise_frequencies(spectrum_z, np.fft.rfft(codes, axis=1), dim, weight), n=dim)
        projected = np.fft.irfft(spectrum_z * np.fft.rfft(circulant), n=dim, axis=1)
        codes = np.where(projected >= 0, 1.0, -1.0)
        history.append(cbe_objective(codes, projected, circulant, weight))
        if history[-2] - history[-1] <= settings.min_decrease:
            break
    return circulant, history


@dataclasses.dataclass(frozen=True)
class CBEOptHyperparameters(Hyperparameters):
    """CBE-opt's settings: the toolbox's (circulant_learning.m l.24-30, 56; demo.m l.184-186)."""

    orthogonality_weight: float = hyperparameter(1.0, "non-negative", "lambda, the weight of ||R^T R - I||^2")
    max_iter: int = hyperparameter(500, "positive integer", "R-steps after the first (the loop runs max_iter + 1)")
    min_decrease: float = hyperparameter(0.1, "non-negative", "an iteration lowering J by no more than this stops")
    n_train: int = hyperparameter(5000, "positive integer", "training rows the circulant is learned on")


class CBEOpt(ShallowHasher):
    """A learned circulant projection of the sign-flipped, centred features (labels passed to fit are ignored)."""

    name = "cbe-opt"
    supervised = False
    defaults = CBEOptHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples, dim = features.shape
        check_sample_count(self.name, n_samples)
        if self.hash_bits > dim:
            raise SaehError(f"cbe-opt: hash_bits={self.hash_bits} exceeds the feature dimension {dim}; a circulant "
                            f"projection gives at most {dim} bits")
        rng = np.random.default_rng(self.seed)
        flips = np.where(rng.standard_normal(dim) > 0, 1.0, -1.0)
        start = rng.standard_normal(dim)
        chosen = np.sort(rng.choice(n_samples, min(hyperparameters.n_train, n_samples), replace=False))
        mean = feature_mean(features)
        rows = (np.asarray(features[chosen], dtype=np.float64) - mean) * flips
        circulant, history = learn_circulant(rows, start, hyperparameters)
        self.objective_ = history
        return {"mean": mean, "circulant": circulant, "flips": flips}

    def _project(self, features):
        state, bits = self.state, self.hash_bits
        return in_chunks(features, lambda chunk: circulant_product(
            state["circulant"], (chunk - state["mean"]) * state["flips"])[:, :bits])


CBE_OPT_METHOD = register(ShallowMethod(
    "cbe-opt", "CBE-opt: signs of a learned circulant projection of the sign-flipped, centred features, the "
    "circulant fitted by time-frequency alternation (unsupervised)", CBEOpt), listing_order=265)
