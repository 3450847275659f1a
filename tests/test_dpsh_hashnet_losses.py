"""DPSH's and HashNet's losses against numpy computations of their formulas written here with plain loops, on fixed
inputs, plus hand-computed small cases, gradients, numerical stability and bad inputs."""

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose

from baselines import dpsh, hashnet
from saeh.errors import SaehError

RTOL, ATOL = 1e-5, 1e-6


def value(tensor):
    return keras.ops.convert_to_numpy(tensor)


def random_multi_hot(rng, rows, classes):
    """Multi-hot rows with one to three labels each."""
    labels = np.zeros((rows, classes), np.float32)
    for row in labels:
        row[rng.choice(classes, size=rng.integers(1, 4), replace=False)] = 1
    return labels


def reference_softplus(x):
    """log(1 + e^x) in float64 without overflow: for x > 0 it is x + log(1 + e^-x)."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def reference_similarity(labels_a, labels_b):
    similar = np.zeros((len(labels_a), len(labels_b)))
    for i, row_a in enumerate(labels_a):
        for j, row_b in enumerate(labels_b):
            similar[i, j] = float(any(a > 0 and b > 0 for a, b in zip(row_a, row_b)))
    return similar


def reference_dpsh_official(u, labels, bank_u, bank_labels, lam):
    """The official batch loss as written in DPSH_CIFAR_10.py: sums divided by n * B, lambda on the second term."""
    batch, n = len(u), len(bank_u)
    similar = reference_similarity(labels, bank_labels)
    log_likelihood = 0.0
    for i in range(batch):
        for j in range(n):
            theta = 0.5 * sum(float(a) * float(b) for a, b in zip(u[i], bank_u[j]))
            log_likelihood += similar[i, j] * theta - reference_softplus(theta)
    regulariser = sum((float(np.sign(x)) - float(x)) ** 2 for row in u for x in row)
    return -log_likelihood / (n * batch) + lam * regulariser / (n * batch)


def reference_hashnet(h_a, labels_a, h_b, labels_b, alpha, threshold):
    """The paper's weighted sum over all cross pairs, divided by the number of pairs."""
    similar = reference_similarity(labels_a, labels_b)
    losses, kinds = [], []
    for i in range(len(h_a)):
        for j in range(len(h_b)):
            x = alpha * sum(float(a) * float(b) for a, b in zip(h_a[i], h_b[j]))
            log_term = x if x > threshold else reference_softplus(x)
            losses.append(log_term - similar[i, j] * x)
            kinds.append(similar[i, j] > 0)
    total = len(losses)
    similar_count = sum(kinds)
    dissimilar_count = total - similar_count
    weighted = 0.0
    for loss, is_similar in zip(losses, kinds):
        weighted += loss * (total / similar_count if is_similar else total / dissimilar_count)
    return weighted / total


RNG = np.random.default_rng(2016)
U = (RNG.normal(size=(5, 6)) * 2).astype(np.float32)
LABELS = random_multi_hot(RNG, 5, 4)
BANK_U = (RNG.normal(size=(9, 6)) * 2).astype(np.float32)
BANK_LABELS = random_multi_hot(RNG, 9, 4)


# ---------------------------------------------------------------- shared pieces

def test_stable_softplus_matches_log_one_plus_exp():
    x = np.concatenate([np.linspace(-30, 30, 121), [0.0, 1e-4, -1e-4]]).astype(np.float32)
    expected = [reference_softplus(float(v)) for v in x]
    assert_allclose(value(dpsh.stable_softplus(x)), expected, rtol=RTOL, atol=ATOL)


def test_stable_softplus_is_finite_at_large_arguments():
    result = value(dpsh.stable_softplus(np.array([200.0, -200.0, 1000.0, -1000.0], np.float32)))
    assert np.all(np.isfinite(result))
    assert_allclose(result, [200.0, 0.0, 1000.0, 0.0], rtol=1e-7, atol=1e-30)


# ---------------------------------------------------------------- DPSH

def test_dpsh_likelihood_matches_loops():
    expected = reference_dpsh_official(U, LABELS, BANK_U, BANK_LABELS, lam=0.0)
    assert_allclose(value(dpsh.dpsh_likelihood_loss(U, LABELS, BANK_U, BANK_LABELS)), expected, rtol=RTOL)


def test_dpsh_likelihood_two_by_two_by_hand():
    """theta = 1/2 u bank^T = [[2, 0], [0, 2]] with s = identity."""
    u = np.array([[2.0, 0.0], [0.0, 2.0]], np.float32)
    labels = np.eye(2, dtype=np.float32)
    expected = (2 * (math.log(1 + math.e ** 2) - 2) + 2 * math.log(2)) / 4
    assert_allclose(value(dpsh.dpsh_likelihood_loss(u, labels, u, labels)), expected, rtol=RTOL)


def test_dpsh_likelihood_is_stable_at_theta_200():
    """theta = +200 and -200: log(1 + e^theta) - s theta tends to 0 (s = 1 at +200, s = 0 at -200) or to 200."""
    u = np.array([[20.0]], np.float32)
    bank = np.array([[20.0], [-20.0]], np.float32)
    agreeing = dpsh.dpsh_likelihood_loss(u, [[1, 0]], bank, [[1, 0], [0, 1]])
    disagreeing = dpsh.dpsh_likelihood_loss(u, [[0, 1]], bank, [[1, 0], [0, 1]])
    assert_allclose(value(agreeing), 0.0, atol=1e-30)
    assert_allclose(value(disagreeing), 200.0, rtol=1e-7)
    variable = tf.Variable(u)
    with tf.GradientTape() as tape:
        loss = dpsh.dpsh_likelihood_loss(variable, [[0, 1]], bank, [[1, 0], [0, 1]])
    gradient = tape.gradient(loss, variable).numpy()
    # mean of softplus(theta_1) (s = 0) and softplus(theta_2) - theta_2 (s = 1), theta = 10 u and -10 u:
    # d/du = 1/2 (sigma(200) * 10 + (sigma(-200) - 1) * -10) = 10, with sigma(200) = 1 and sigma(-200) = 0.
    assert np.all(np.isfinite(gradient))
    assert_allclose(gradient, [[10.0]], rtol=1e-6)


def test_dpsh_bank_gets_no_gradient_and_u_gets_the_analytic_one():
    u, bank = tf.Variable(U), tf.Variable(BANK_U)
    with tf.GradientTape() as tape:
        loss = dpsh.dpsh_likelihood_loss(u, LABELS, bank, BANK_LABELS)
    grad_u, grad_bank = tape.gradient(loss, [u, bank])
    assert grad_bank is None or not np.any(grad_bank.numpy())
    similar = reference_similarity(LABELS, BANK_LABELS)
    expected = np.zeros(U.shape)
    for i in range(len(U)):
        for j in range(len(BANK_U)):
            theta = 0.5 * float(np.dot(U[i].astype(np.float64), BANK_U[j]))
            expected[i] += (1 / (1 + math.exp(-theta)) - similar[i, j]) * 0.5 * BANK_U[j] / (len(U) * len(BANK_U))
    assert_allclose(grad_u.numpy(), expected, rtol=1e-4, atol=1e-7)


def test_dpsh_quantization_matches_loops_and_hand_case():
    expected = sum((float(np.sign(x)) - float(x)) ** 2 for row in U for x in row) / len(U)
    assert_allclose(value(dpsh.dpsh_quantization_loss(U)), expected, rtol=RTOL)
    # (1 - 0.5)^2 + (-1 + 2)^2 + (0 - 0)^2 = 1.25 for the first row, (1 - 3)^2 = 4 for the second: mean 2.625.
    hand = np.array([[0.5, -2.0, 0.0], [3.0, 1.0, -1.0]], np.float32)
    assert_allclose(value(dpsh.dpsh_quantization_loss(hand)), 2.625, rtol=RTOL)


def test_dpsh_quantization_gradient_treats_sign_as_constant():
    u = tf.Variable(U)
    with tf.GradientTape() as tape:
        loss = dpsh.dpsh_quantization_loss(u)
    assert_allclose(tape.gradient(loss, u).numpy(), -2 * (np.sign(U) - U) / len(U), rtol=1e-5, atol=1e-7)


def test_dpsh_loss_is_the_official_batch_form():
    expected = reference_dpsh_official(U, LABELS, BANK_U, BANK_LABELS, lam=7.0)
    assert_allclose(value(dpsh.dpsh_loss(U, LABELS, BANK_U, BANK_LABELS, 7.0)), expected, rtol=RTOL)
    # the quantisation term carries eta / n, n = 9 rows of the bank
    likelihood = value(dpsh.dpsh_likelihood_loss(U, LABELS, BANK_U, BANK_LABELS))
    quantization = value(dpsh.dpsh_quantization_loss(U))
    assert_allclose(value(dpsh.dpsh_loss(U, LABELS, BANK_U, BANK_LABELS, 7.0)), likelihood + 7.0 / 9 * quantization,
                    rtol=RTOL)


def test_dpsh_default_eta_is_the_official_demo_value():
    assert dpsh.ETA == 10.0
    assert inspect.signature(dpsh.dpsh_loss).parameters["eta"].default == dpsh.ETA


@pytest.mark.parametrize("eta", [-1.0, float("nan"), True, "10"])
def test_dpsh_loss_rejects_bad_eta(eta):
    with pytest.raises(SaehError, match="eta"):
        dpsh.dpsh_loss(U, LABELS, BANK_U, BANK_LABELS, eta)


@pytest.mark.parametrize("arguments, name", [
    ((U[:, :4], LABELS, BANK_U, BANK_LABELS), "bank_u"),
    ((U, LABELS[:3], BANK_U, BANK_LABELS), "labels"),
    ((U, LABELS, BANK_U, BANK_LABELS[:4]), "bank_labels"),
    ((U, LABELS, BANK_U, BANK_LABELS[:, :3]), "bank_labels"),
    ((U[0], LABELS, BANK_U, BANK_LABELS), "u must be"),
])
def test_dpsh_likelihood_rejects_mismatched_shapes(arguments, name):
    with pytest.raises(SaehError, match=name):
        dpsh.dpsh_likelihood_loss(*arguments)


# ---------------------------------------------------------------- HashNet

def test_hashnet_alpha():
    assert hashnet.hashnet_alpha(48) == pytest.approx(10 / 48)
    assert hashnet.hashnet_alpha(np.int64(12)) == pytest.approx(10 / 12)


@pytest.mark.parametrize("bits", [0, -4, 1.5, True, "48"])
def test_hashnet_alpha_rejects_bad_bits(bits):
    with pytest.raises(SaehError, match="bits"):
        hashnet.hashnet_alpha(bits)


def test_hashnet_beta_schedule():
    assert hashnet.hashnet_beta(0) == 1.0
    assert hashnet.hashnet_beta(199) == 1.0
    assert hashnet.hashnet_beta(200) == pytest.approx(math.sqrt(2.0))
    assert hashnet.hashnet_beta(399) == pytest.approx(math.sqrt(2.0))
    assert hashnet.hashnet_beta(10000) == pytest.approx(math.sqrt(51.0))
    assert hashnet.hashnet_beta(10000) == pytest.approx(7.14, abs=0.005)
    assert hashnet.hashnet_beta(np.int64(10199)) == pytest.approx(math.sqrt(51.0))
    assert hashnet.hashnet_beta(30, gamma=0.1, power=1.0, step=10) == pytest.approx(4.0)


@pytest.mark.parametrize("arguments, name", [
    ({"iteration": -1}, "iteration"),
    ({"iteration": 2.0}, "iteration"),
    ({"iteration": True}, "iteration"),
    ({"iteration": 5, "step": 0}, "step"),
    ({"iteration": 5, "gamma": -0.1}, "gamma"),
])
def test_hashnet_beta_rejects_bad_arguments(arguments, name):
    with pytest.raises(SaehError, match=name):
        hashnet.hashnet_beta(**arguments)


H_A = np.tanh(RNG.normal(size=(6, 8)) * 2).astype(np.float32)
H_B = np.tanh(RNG.normal(size=(7, 8)) * 2).astype(np.float32)
H_B[:3] = H_A[:3]  # aligned pairs, so that alpha = 3 puts some x above 15
LABELS_A = random_multi_hot(RNG, 6, 5)
LABELS_B = random_multi_hot(RNG, 7, 5)


@pytest.mark.parametrize("alpha", [10 / 8, 3.0])
def test_hashnet_pair_loss_matches_loops(alpha):
    """alpha = 3 puts some of the pairs above the threshold (x up to 24), alpha = 10 / 8 none."""
    logits = alpha * H_A.astype(np.float64) @ H_B.T
    assert (alpha == 3.0) == bool(np.any(logits > 15))
    expected = reference_hashnet(H_A, LABELS_A, H_B, LABELS_B, alpha, 15.0)
    assert_allclose(value(hashnet.hashnet_pair_loss(H_A, LABELS_A, H_B, LABELS_B, alpha)), expected, rtol=RTOL)


def reference_thuml(outputs1, labels1, outputs2, labels2, alpha, threshold, pairs):
    """thuml/HashNet's pair loss (85387b8, pytorch/src/loss.py) over the (row of outputs1, row of outputs2) pairs
    listed in `pairs`: similarity = labels overlap (l.26); x = alpha <h1, h2> (sigmoid_param, l.8); loss
    log(1 + e^-|x|) + max(x, 0) - s x (l.32), x itself above l_threshold (l.10-21); weights S / S1 and S / S0 over
    the pairs (l.34-38); the weighted sum over S (l.40). train.py l.194-215 forms the pairs: every row of one batch
    with every row of another, independently drawn."""
    terms = []
    for i, j in pairs:
        similar = float(np.dot(labels1[i], labels2[j]) > 0)
        x = alpha * float(np.dot(np.asarray(outputs1[i], np.float64), outputs2[j]))
        log_term = x if x > threshold else math.log(1 + math.exp(-abs(x))) + max(x, 0.0)
        terms.append((similar, log_term - similar * x))
    total = len(terms)
    s1 = sum(1 for similar, _ in terms if similar)
    s0 = total - s1
    return sum(loss * (total / s1 if similar else total / s0) for similar, loss in terms) / total


def test_hashnet_one_batch_pairs_two_different_images_as_the_official_streams():
    """The training loss of a batch: thuml's loss over its ordered pairs (i, j) with i != j, two different images as
    the official code's two independently drawn batches pair them; never an image with itself."""
    batch = len(H_A)
    pairs = [(i, j) for i in range(batch) for j in range(batch) if i != j]
    for alpha in (10 / 8, 3.0):
        expected = reference_thuml(H_A, LABELS_A, H_A, LABELS_A, alpha, 15.0, pairs)
        loss = hashnet.HashNetLoss(alpha)  # the loss training uses
        assert_allclose(value(loss(LABELS_A, H_A)), expected, rtol=RTOL)
        assert_allclose(value(hashnet.hashnet_batch_loss(H_A, LABELS_A, alpha)), expected, rtol=RTOL)
        with_self = reference_thuml(H_A, LABELS_A, H_A, LABELS_A, alpha, 15.0, [(i, j) for i in range(batch)
                                                                              for j in range(batch)])
        assert abs(with_self - expected) > 1e-3
    # Two streams: every cross pair, as thuml's loss takes them.
    cross = [(i, j) for i in range(len(H_A)) for j in range(len(H_B))]
    assert_allclose(value(hashnet.hashnet_pair_loss(H_A, LABELS_A, H_B, LABELS_B, 3.0)),
                    reference_thuml(H_A, LABELS_A, H_B, LABELS_B, 3.0, 15.0, cross), rtol=RTOL)
    # One image has no pair: no loss.
    assert value(hashnet.hashnet_batch_loss(H_A[:1], LABELS_A[:1], 3.0)) == 0.0


def test_hashnet_weights_by_hand():
    """x = [2, 0, -2], s = [1, 0, 0]: w = 3/1 for the similar pair, 3/2 for the others; loss = l1 + (l2 + l3) / 2."""
    h_a = np.array([[1.0, 0.0]], np.float32)
    h_b = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    loss = hashnet.hashnet_pair_loss(h_a, [[1, 0, 0]], h_b, np.eye(3), alpha=2.0)
    expected = (math.log(1 + math.e ** 2) - 2) + (math.log(2) + math.log(1 + math.e ** -2)) / 2
    assert_allclose(value(loss), expected, rtol=RTOL)


@pytest.mark.parametrize("similar", [True, False])
def test_hashnet_one_kind_of_pair_only_is_the_plain_mean(similar):
    labels_b = np.tile(LABELS_A[:1], (len(H_B), 1)) if similar else 1 - np.tile(LABELS_A[:1], (len(H_B), 1))
    h_a, labels_a = H_A[:1], LABELS_A[:1]
    logits = 2.0 * h_a.astype(np.float64) @ H_B.T
    expected = np.mean([reference_softplus(x) - similar * x for x in logits[0]])
    variable = tf.Variable(h_a)
    with tf.GradientTape() as tape:
        loss = hashnet.hashnet_pair_loss(variable, labels_a, H_B, labels_b, 2.0)
    assert_allclose(value(loss), expected, rtol=RTOL)
    assert np.all(np.isfinite(tape.gradient(loss, variable).numpy()))


def test_hashnet_threshold_switches_above_not_at():
    """With threshold 1: x = 1 keeps log(1 + e^x), x just above it is replaced by x (one dissimilar pair)."""
    at = hashnet.hashnet_pair_loss([[1.0]], [[1, 0]], [[1.0]], [[0, 1]], alpha=1.0, threshold=1.0)
    above = hashnet.hashnet_pair_loss([[1.0]], [[1, 0]], [[1.0]], [[0, 1]], alpha=1.0, threshold=0.999)
    assert_allclose(value(at), math.log(1 + math.e), rtol=RTOL)
    assert_allclose(value(above), 1.0, rtol=RTOL)


def test_hashnet_default_threshold_switches_exactly_above_15():
    """At the default threshold the two forms differ by log(1 + e^-15) ~ 3e-7, below float32's resolution at 15,
    but their gradients differ: for a similar pair, d/dx is sigmoid(x) - 1 = -sigmoid(-15) in the log form and 0 in
    the linear one. x = alpha <h_a, h_b> = 1 * 3 * 5 = 15 exactly; 3 * 5.00001 is above."""
    assert inspect.signature(hashnet.hashnet_pair_loss).parameters["threshold"].default == 15.0

    def gradient(h_b):
        variable = tf.Variable([[3.0]])
        with tf.GradientTape() as tape:
            loss = hashnet.hashnet_pair_loss(variable, [[1]], [[h_b]], [[1]], alpha=1.0)
        return float(tape.gradient(loss, variable).numpy()[0, 0])

    assert gradient(5.0) == pytest.approx(-5.0 / (1 + math.exp(15)), rel=0.05)
    assert gradient(5.00001) == 0.0


def test_hashnet_is_finite_at_large_logits():
    """x = +-200 through unbounded inputs: the similar pair at +200 and the dissimilar one at -200 cost ~0."""
    h_a = np.array([[20.0]], np.float32)
    h_b = np.array([[10.0], [-10.0]], np.float32)
    loss = hashnet.hashnet_pair_loss(h_a, [[1, 0]], h_b, [[1, 0], [0, 1]], alpha=1.0)
    assert_allclose(value(loss), 0.0, atol=1e-30)
    loss = hashnet.hashnet_pair_loss(h_a, [[1, 0]], h_b, [[0, 1], [1, 0]], alpha=1.0)
    assert_allclose(value(loss), 400.0, rtol=1e-7)  # 200 + 200: w = 2 for each of the two pairs, divided by 2 pairs


def test_hashnet_multi_label_similarity_is_label_overlap():
    """labels_a shares label 1 with the first row of labels_b and label 0 with the third; nothing with the second."""
    h_a = np.array([[1.0, 0.0]], np.float32)
    h_b = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    loss = hashnet.hashnet_pair_loss(h_a, [[1, 1, 0]], h_b, [[0, 1, 0], [0, 0, 1], [1, 0, 1]], alpha=1.0)
    # x = 1 for all three; similar pairs cost log(1 + e) - 1, the dissimilar one log(1 + e): mean similar + mean dis.
    assert_allclose(value(loss), (math.log(1 + math.e) - 1) + math.log(1 + math.e), rtol=RTOL)


@pytest.mark.parametrize("arguments, name", [
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": -1.0}, "alpha"),
    ({"alpha": 1.0, "threshold": float("inf")}, "threshold"),
    ({"alpha": 1.0, "h_b": H_B[:, :5]}, "h_b"),
    ({"alpha": 1.0, "labels_a": LABELS_A[:2]}, "labels_a"),
    ({"alpha": 1.0, "labels_b": LABELS_B[:, :2]}, "labels_b"),
])
def test_hashnet_pair_loss_rejects_bad_inputs(arguments, name):
    inputs = {"h_a": H_A, "labels_a": LABELS_A, "h_b": H_B, "labels_b": LABELS_B, **arguments}
    with pytest.raises(SaehError, match=name):
        hashnet.hashnet_pair_loss(**inputs)
