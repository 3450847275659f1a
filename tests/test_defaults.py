"""The original learning-rate schedule and its scaling to shorter runs."""

import pytest

from saeh import defaults


def test_ninety_epochs_is_the_original_schedule():
    rates = [defaults.learning_rate(epoch) for epoch in range(90)]
    assert rates[:30] == [0.1] * 30
    assert rates[30:55] == [0.02] * 25
    assert rates[55:75] == [0.004] * 20
    assert rates[75:] == [0.0008] * 15


@pytest.mark.parametrize("epochs, expected", [
    (12, [0.1] * 4 + [0.02] * 3 + [0.004] * 3 + [0.0008] * 2),
    (3, [0.1, 0.02, 0.0008]),
    (1, [0.1]),
])
def test_shorter_runs_keep_the_steps_in_proportion(epochs, expected):
    assert [defaults.learning_rate(epoch, epochs) for epoch in range(epochs)] == expected


def test_bad_epochs():
    with pytest.raises(ValueError, match="epochs must be positive"):
        defaults.learning_rate(0, 0)


def test_another_starting_rate_keeps_the_ratios():
    rates = [defaults.learning_rate(epoch, 12, base=0.01) for epoch in (0, 4, 7, 10)]
    assert rates == pytest.approx([0.01, 0.002, 0.0004, 0.00008])
