"""CNNH, the plain method (baselines.cnnh_plain): CNNH+'s stage 1 and its code layer alone, trained through the
training script. The harness (tests/test_methods.py) trains it on single- and multi-label data and checks that it
learns each image's own stage-1 code."""

import pytest

import baselines

BITS = 12


def test_cnnh_is_cnnh_plus_without_the_classifier():
    """CNNH shares CNNH+'s stage 1 (the same hook and setting, hence the same codes) and has the code layer alone."""
    from saeh.methods import ModelSpec

    plain, plus = baselines.get("cnnh"), baselines.get("cnnh-plus")
    assert plain.prepare is plus.prepare and dict(plain.hyperparameters) == {"stage1_iterations": None}
    model = plain.build(ModelSpec((16, 16, 1), 4, hash_bits=BITS, stack_num=1), plain.resolve())
    assert model.output_names == ["hash_x"] and model.get_layer("hash_x").units == BITS
    assert plain.monitor == ("val_loss", "min") and plain.recipe.source == plus.recipe.source
    assert plain.compile_arguments(None, None, plain.resolve())["loss"] == {"hash_x": "binary_crossentropy"}


@pytest.mark.slow
def test_cnnh_trains_through_the_script_on_the_bundled_sample_and_beats_random_codes(monkeypatch, capsys, tmp_path):
    """Measured (32 bits, seed 0, one residual block a stage, 1 epoch): mAP@1000 0.861 (3 epochs: 0.929), random
    codes 0.105."""
    from script_helpers import trained_map_and_chance

    learned, chance = trained_map_and_chance(["--method", "cnnh", "--which-data", "mnist-sample", "--stack-num", "1",
                                              "--epochs", "1", "--verbose", "0"], monkeypatch, capsys,
                                             str(tmp_path / "cnnh"))
    assert learned > 0.75 and learned > chance + 0.6, (learned, chance)
