"""The original learning-rate schedule and its scaling to other run lengths."""

import pytest

from saeh import defaults


def original_scheduler(epoch):
    """The original hash_su_ae_train.py's scheduler, written out as it is there; Keras calls it with 0-based
    epochs."""
    if epoch <= 30:
        return 0.1
    if epoch <= 55:
        return 0.02
    if epoch <= 75:
        return 0.004
    return 0.0008


def test_ninety_epochs_is_the_original_schedule_epoch_by_epoch():
    for epoch in range(90):
        assert defaults.learning_rate(epoch) == original_scheduler(epoch), f"epoch {epoch}"
    rates = [defaults.learning_rate(epoch) for epoch in range(90)]
    assert [rates.count(rate) for rate in (0.1, 0.02, 0.004, 0.0008)] == [31, 25, 20, 14]
    assert defaults.step_starts(90) == [0, 31, 56, 76]


@pytest.mark.parametrize("epochs, expected", [
    (12, [0.1] * 4 + [0.02] * 3 + [0.004] * 3 + [0.0008] * 2),
    (8, [0.1] * 3 + [0.02] * 2 + [0.004] * 2 + [0.0008]),
    (5, [0.1, 0.1, 0.02, 0.004, 0.0008]),
    (4, [0.1, 0.02, 0.004, 0.0008]),
    (3, [0.1, 0.02, 0.004]),
    (1, [0.1]),
])
def test_other_run_lengths_keep_the_steps_in_proportion(epochs, expected):
    assert [defaults.learning_rate(epoch, epochs) for epoch in range(epochs)] == expected


@pytest.mark.parametrize("epochs", range(4, 271))
def test_every_rate_appears_in_order_from_four_epochs_on(epochs):
    rates = [defaults.learning_rate(epoch, epochs) for epoch in range(epochs)]
    assert rates[0] == 0.1
    assert sorted(set(rates), reverse=True) == [0.1, 0.02, 0.004, 0.0008]
    assert rates == sorted(rates, reverse=True)
    # Each start is within one epoch of its place as a fraction of the original 90 (rounding, or the nudge that
    # keeps every rate in short runs).
    for start, (original_start, _) in zip(defaults.step_starts(epochs), defaults.LR_STEPS):
        assert abs(start - original_start * epochs / defaults.EPOCHS) <= 1


def test_multiples_of_ninety_stretch_the_original_exactly():
    assert defaults.step_starts(180) == [0, 62, 112, 152]
    assert defaults.step_starts(45) == [0, 16, 28, 38]  # 15.5, 28 and 38 of 45: half rounds up


@pytest.mark.parametrize("epochs", [0, -3, 2.5, True])
def test_bad_epochs(epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        defaults.learning_rate(0, epochs)


def test_another_starting_rate_keeps_the_ratios():
    rates = [defaults.learning_rate(epoch, 12, base=0.01) for epoch in (0, 4, 7, 10)]
    assert rates == pytest.approx([0.01, 0.002, 0.0004, 0.00008])
