"""DRSCH (baselines.drsch): its triplet margin loss and Laplacian regulariser against numpy computations written from
the formulas of METHODS.md section 12 on fixed inputs, the continuation schedule, the per-bit weights and the codes
cut to a shorter length by them, and a run through the training script scored at several lengths from one model.
The harness (tests/test_methods.py) trains it on single- and multi-label data."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import baselines
from baselines import drsch
from saeh.codes import make_codes
from saeh.errors import SaehError
from saeh.methods import ModelSpec

BITS = 12


def shares_a_label(labels_a, labels_b):
    return bool(np.any(np.logical_and(labels_a, labels_b)))


def reference_triplet_loss(outputs, labels, margin):
    """(1/|T|) sum over triplets (a, p, n) of max(0, C + ||r_a - r_p||^2 - ||r_a - r_n||^2), p != a sharing a label
    with a, n sharing none: loops over the triplets."""
    total, count = 0.0, 0
    for a in range(len(outputs)):
        for p in range(len(outputs)):
            for n in range(len(outputs)):
                if p == a or not shares_a_label(labels[a], labels[p]) or shares_a_label(labels[a], labels[n]):
                    continue
                to_positive = np.sum((outputs[a] - outputs[p]) ** 2)
                to_negative = np.sum((outputs[a] - outputs[n]) ** 2)
                total += max(0.0, margin + to_positive - to_negative)
                count += 1
    return total / max(count, 1)


def reference_laplacian(outputs, labels, other=0.001):
    """(1/2) tr(R^T L R), L = D - S, S_ij = 1 (shared label) or `other` for i != j, 0 on the diagonal."""
    count = len(outputs)
    similarity = np.array([[0.0 if i == j else (1.0 if shares_a_label(labels[i], labels[j]) else other)
                            for j in range(count)] for i in range(count)])
    laplacian = np.diag(similarity.sum(axis=1)) - similarity
    return 0.5 * np.trace(outputs.T @ laplacian @ outputs)


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_the_loss_terms_are_the_formulas_on_fixed_inputs(kind):
    rng = np.random.default_rng(5)
    outputs = rng.uniform(-1.5, 1.5, size=(9, BITS)).astype(np.float32)
    if kind == "single":
        labels = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 1, 2, 2, 0, 1]]
    else:
        labels = (rng.uniform(size=(9, 4)) > 0.6).astype(np.float32)
        labels[np.arange(9), rng.integers(0, 4, 9)] = 1
    for margin in (5.0, 12.9, 0.0):
        assert_allclose(float(drsch.triplet_margin_loss(outputs, labels, margin)),
                        reference_triplet_loss(outputs.astype(np.float64), labels, margin), rtol=1e-5)
    assert_allclose(float(drsch.laplacian_regulariser(outputs, labels)),
                    reference_laplacian(outputs.astype(np.float64), labels), rtol=1e-5)


def test_by_hand_a_satisfied_triplet_costs_nothing_and_one_class_has_no_triplet():
    # anchor 0, positive 1 at squared distance 1, negative 2 at squared distance 8: max(0, 5 + 1 - 8) = 0; C = 9: 2.
    outputs = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 2.0]], np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 0, 1]]
    # Triplets: (0, 1, 2) and (1, 0, 2), whose negative distance is 5: max(0, 5 + 1 - 5) = 1.
    assert float(drsch.triplet_margin_loss(outputs, labels, 5.0)) == pytest.approx((0.0 + 1.0) / 2)
    assert float(drsch.triplet_margin_loss(outputs, labels, 9.0)) == pytest.approx((2.0 + 5.0) / 2)
    assert float(drsch.triplet_margin_loss(outputs, np.ones((3, 1), np.float32))) == 0.0


def test_the_schedule_raises_slope_and_margin_at_equal_fractions_of_the_run():
    assert drsch.drsch_schedule(0, 800) == (5.0, 5.0)
    slope, margin = drsch.drsch_schedule(799, 800)  # 79 raises at the last step, as the released 790,000th
    assert slope == pytest.approx(5.0 * 1.1 ** 79) and margin == pytest.approx(5.0 + 7.9)
    assert drsch.drsch_schedule(15, 1600) == (5.0, 5.0) and drsch.drsch_schedule(20, 1600)[1] == pytest.approx(5.1)
    assert drsch.drsch_schedule(500, 800, raises=0, margin=2.0) == (5.0, 2.0)


def test_codes_are_cut_to_the_bits_of_the_largest_weights():
    weights = np.array([0.5, -2.0, 1.0, 2.0, 0.1])
    assert drsch.bits_by_weight(weights).tolist() == [1, 3, 2, 0, 4]  # |w|, ties by index
    codes = np.arange(10).reshape(2, 5)
    assert drsch.truncated_codes(codes, weights, 2).tolist() == [[1, 3], [6, 8]]
    dump = make_codes(np.array([[0.3, -0.2, 0.9, -0.7, 0.1]], np.float32), np.array([1]), threshold=0.0)
    cut = drsch.truncated_codes(dump, weights, 3)
    assert cut.hash_bin.tolist() == [[0, 0, 1]] and cut.hash_org.shape == (1, 3) and cut.label.tolist() == [1]
    with pytest.raises(SaehError, match="length must be at most the model's 5 bits; got 6"):
        drsch.truncated_codes(codes, weights, 6)
    with pytest.raises(SaehError, match=r"codes must be \(N, 5\)"):
        drsch.truncated_codes(codes[:, :4], weights, 2)


def test_the_network_weights_each_tanh_bit_and_registers_the_released_recipe():
    method = baselines.get("drsch")
    model = method.build(ModelSpec((16, 16, 1), 4, hash_bits=BITS, stack_num=1), method.resolve())
    assert sorted(model.output_names) == ["drsch_bit_weights", "hash_x"]
    assert model.get_layer("drsch_fc7").units == 512 and model.get_layer("drsch_fc7").activation.__name__ == "linear"
    assert float(model.get_layer("hash_x").beta.numpy()) == 2.5  # tanh(a z / 2), a = 5
    assert drsch.bit_weights(model).tolist() == [1.0] * BITS
    assert dict(method.hyperparameters) == {"margin": 5.0, "laplacian_weight": 0.001, "raises": 80}
    assert method.code.threshold == 0.0
    recipe = method.recipe
    assert (recipe.learning_rate, recipe.momentum, recipe.weight_decay, recipe.batch_size) == (0.003333, 0.0, 2.5e-4,
                                                                                               100)
    assert len(recipe.drops) == 15 and recipe.drops[0] == 1 / 16 and recipe.drop_factor == 0.3333
    with pytest.raises(SaehError, match="has no layer 'drsch_bit_weights'"):
        drsch.bit_weights(baselines.get("dnnh").build(ModelSpec((16, 16, 1), 4, hash_bits=BITS, stack_num=1),
                                                      baselines.get("dnnh").resolve()))


@pytest.mark.slow
def test_drsch_trains_through_the_script_and_scores_at_several_lengths_from_one_model(monkeypatch, capsys, tmp_path):
    """Measured (32 bits, seed 0, one residual block a stage, the released rate): after 1 epoch mAP@1000 0.359, and
    0.253 / 0.317 with the 8 / 16 bits of largest weight (after 3 epochs 0.524, and 0.341 / 0.341 / 0.399 at 8 / 16 /
    24 bits); random codes 0.105."""
    from script_helpers import trained_map_and_chance

    run_dir = str(tmp_path / "drsch")
    learned, chance = trained_map_and_chance(["--method", "drsch", "--which-data", "mnist-sample", "--stack-num", "1",
                                              "--epochs", "1", "--verbose", "0"], monkeypatch, capsys, run_dir)
    assert learned > chance + 0.15, (learned, chance)
    by_length = drsch.run_scores_at_lengths(run_dir, (8, 16, 32))
    assert by_length[32] == pytest.approx(learned)
    assert all(score > chance + 0.1 for score in by_length.values()), by_length
    query, database = drsch.run_codes_at_length(run_dir, 8)
    assert query.bits == database.bits == 8
