"""KSH, kernel-based supervised hashing (Liu, Wang, Ji, Jiang & Chang, CVPR 2012, "Supervised hashing with kernels").

Hash function of bit k: h_k(x) = sgn(kbar(x)^T a_k), with a_k in R^m and the zero-centred kernel feature vector

    kbar(x) = [exp(-||x - z_1||^2 / (2 sigma)), ..., exp(-||x - z_m||^2 / (2 sigma))] - kernel_mean,

over m anchors z_1..z_m drawn at random (seeded) from the training features (all of them if fewer than m). As in
the authors' released code, sigma is the mean *squared* Euclidean distance between the training samples and the
anchors (so the bandwidth adapts to the feature scale), and kernel_mean is the mean kernel vector over all
training samples.

Training uses l labelled samples (drawn at random, seeded, from the training set; all of them if fewer). With
K (l, m) their centred kernel features, S (l, l) = 2 * [share a label] - 1 and r = hash_bits, the paper fits code
inner products to the similarity: min ||B B^T - r S||_F^2. It proceeds greedily, one bit at a time, against the
residue R_k = r S - sum_{t<k} b_t b_t^T, where b_t = sgn(K a_t):

1. Spectral initialisation: a0 = the top generalised eigenvector of (K^T R_k K) a = lambda (K^T K) a, scaled so
   that ||K a0||^2 = l (the relaxation sgn(x) ~ x of max b^T R_k b).
2. Smooth refinement: minimise  L(a) = -phi(K a)^T R_k phi(K a) / l^2  with phi(x) = 2 / (1 + exp(-x)) - 1
   = tanh(x / 2), starting from a0. Gradient: dL/da = -K^T ((R_k phi) * (1 - phi^2)) / l^2.
   We use scipy's L-BFGS-B with this analytic gradient, at most ``n_opt_iter`` iterations (the released code runs
   at most 500 iterations of an accelerated gradient method with backtracking and a loose stopping rule; L-BFGS
   is our choice: it needs no step-size rule and stops on its own gradient test, typically after 30-90
   iterations per bit on MNIST).
3. Keep whichever of a0 and the refined a gives the lower discrete loss -sgn(K a)^T R_k sgn(K a) (as the
   released code does), and subtract b b^T from the residue.

Hyperparameters (values from the paper and its released code): ``n_anchors`` m = 300, ``n_labelled`` l = 2000,
``n_opt_iter`` = 500. project(x) = kbar(x)^T A with A = [a_1 .. a_r]; code bit = [project > 0] (0 maps to 0).

Cost: the kernel over all N training samples is O(N m D); each bit costs an O(l^2 m) product plus the L-BFGS
iterations at O(l^2) each, independent of N (MNIST, 60,000 x 784, 32 bits: about 10 s to fit on one core).

Determinism: same seed, data, machine and BLAS thread count -> identical codes. The non-convex refinement
amplifies last-digit differences between BLAS thread counts (MNIST 32 bits: mAP@1000 0.871 with 2 OpenBLAS
threads, 0.878 with 1), a spread comparable to changing the seed (0.865-0.878 over seeds 0-2).
"""

import dataclasses

import numpy as np
import scipy.linalg
import scipy.optimize

from baselines.shallow import ShallowHasher, in_chunks, pairwise_similarity
from saeh.errors import SaehError
from saeh.methods import Hyperparameters, hyperparameter


def squared_distances(features, anchors):
    """||x_i - z_j||^2 for rows of `features` (n, D) and `anchors` (m, D), clipped at 0 against round-off."""
    squared = (features**2).sum(axis=1)[:, None] + (anchors**2).sum(axis=1)[None, :] - 2.0 * features @ anchors.T
    return np.maximum(squared, 0.0)


def _sign(values):
    return np.where(values > 0, 1.0, -1.0)


def _smooth_loss_and_gradient(vector, kernel, residue, scale):
    """L(a) = -phi^T R phi * scale with phi = tanh(K a / 2); gradient -K^T ((R phi) * (1 - phi^2)) * scale."""
    phi = np.tanh(0.5 * (kernel @ vector))
    residue_phi = residue @ phi
    loss = -float(phi @ residue_phi) * scale
    gradient = -(kernel.T @ (residue_phi * (1.0 - phi * phi))) * scale
    return loss, gradient


def greedy_projections(kernel, similarity, hash_bits, n_opt_iter):
    """KSH's bit-by-bit optimisation. kernel: (l, m) centred kernel features; similarity: (l, l) +-1.

    Returns (A (m, bits), info) where info lists, per bit, whether the smooth refinement was kept.
    """
    n_labelled, n_anchors = kernel.shape
    residue = hash_bits * similarity
    gram = kernel.T @ kernel
    # A tiny ridge keeps the generalised eigenproblem well posed when anchors are (near) duplicates.
    gram_ridged = gram + (1e-10 * np.trace(gram) / n_anchors + 1e-300) * np.eye(n_anchors)
    scale = 1.0 / float(n_labelled) ** 2
    projections = np.zeros((n_anchors, hash_bits))
    refined_kept = []
    for bit in range(hash_bits):
        target = kernel.T @ residue @ kernel
        target = 0.5 * (target + target.T)
        _, top = scipy.linalg.eigh(target, gram_ridged, subset_by_index=[n_anchors - 1, n_anchors - 1])
        spectral = top[:, 0]
        spectral_norm = float(spectral @ gram @ spectral)
        if spectral_norm <= 0:
            raise SaehError("ksh: the labelled kernel features are degenerate (all projections vanish)")
        spectral = spectral * np.sqrt(n_labelled / spectral_norm)
        result = scipy.optimize.minimize(
            _smooth_loss_and_gradient,
            spectral,
            args=(kernel, residue, scale),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": n_opt_iter},
        )
        spectral_codes = _sign(kernel @ spectral)
        refined_codes = _sign(kernel @ result.x)
        # Keep the candidate whose binary codes fit the residue better (larger b^T R b = lower loss).
        if refined_codes @ residue @ refined_codes > spectral_codes @ residue @ spectral_codes:
            projections[:, bit], codes = result.x, refined_codes
            refined_kept.append(True)
        else:
            projections[:, bit], codes = spectral, spectral_codes
            refined_kept.append(False)
        residue -= np.outer(codes, codes)
    return projections, {"refined_kept": refined_kept}


@dataclasses.dataclass(frozen=True)
class KSHHyperparameters(Hyperparameters):
    """KSH's settings (module docstring; values from the paper and its released code)."""

    n_anchors: int = hyperparameter(300, "positive integer", "kernel anchors m drawn from the training features")
    n_labelled: int = hyperparameter(2000, "positive integer", "labelled training samples l the bits are fitted on")
    n_opt_iter: int = hyperparameter(500, "positive integer", "most L-BFGS iterations of each bit's refinement")


class KSH(ShallowHasher):
    """Kernel-based supervised hashing; fit needs labels ((N,) class ids or (N, C) multi-hot)."""

    name = "ksh"
    supervised = True
    defaults = KSHHyperparameters()

    def _fit(self, features, labels, hyperparameters):
        n_samples = len(features)
        # Both counts are upper bounds: a training set smaller than them is used whole.
        n_anchors = min(hyperparameters.n_anchors, n_samples)
        n_labelled = min(hyperparameters.n_labelled, n_samples)
        if n_labelled < 2:
            raise SaehError(f"ksh: fit needs at least 2 labelled samples; got {n_labelled}")
        rng = np.random.default_rng(self.seed)
        anchors = np.asarray(features[np.sort(rng.choice(n_samples, n_anchors, replace=False))], dtype=np.float64)
        labelled = np.sort(rng.choice(n_samples, n_labelled, replace=False))

        distances = in_chunks(features, lambda chunk: squared_distances(chunk, anchors))
        sigma = float(distances.mean())
        if sigma <= 0:
            raise SaehError("ksh: all training features coincide with the anchors; the kernel width would be 0")
        kernel_all = np.exp(distances / (-2.0 * sigma), out=distances)
        kernel_mean = kernel_all.mean(axis=0)
        kernel = kernel_all[labelled] - kernel_mean
        del kernel_all, distances

        similarity = pairwise_similarity(labels[labelled])
        projections, info = greedy_projections(kernel, similarity, self.hash_bits, hyperparameters.n_opt_iter)
        self.fit_info_ = dict(info, n_anchors=n_anchors, n_labelled=n_labelled, labelled_index=labelled)
        return {"anchors": anchors, "sigma": np.float64(sigma), "kernel_mean": kernel_mean, "projection": projections}

    def _centred_kernel(self, chunk):
        anchors, sigma, kernel_mean = self.state["anchors"], float(self.state["sigma"]), self.state["kernel_mean"]
        return np.exp(squared_distances(chunk, anchors) / (-2.0 * sigma)) - kernel_mean

    def kernel_features(self, features):
        """Zero-centred kernel features kbar(x) (N, m) of `features` against the fitted anchors."""
        return in_chunks(features, self._centred_kernel)

    def _project(self, features):
        projection = self.state["projection"]
        return in_chunks(features, lambda chunk: self._centred_kernel(chunk) @ projection)
