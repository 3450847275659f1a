"""Presets: named bundles of training settings for `hash_su_ae_train.py --preset NAME`."""

import json
import os

import pytest

from saeh import defaults, presets
from saeh.cli import train
from saeh.errors import SaehError
from script_helpers import error_line, run_script, training_call


def parse(argv, **script_settings):
    parser = train.build_parser({**train.SETTINGS, **script_settings})
    return presets.parse_args(parser, argv)


def test_every_preset_gives_every_setting_and_only_those():
    for name in presets.names():
        values = presets.settings(name)
        assert set(values) == set(presets.PRESET_SETTINGS)
        assert "hash_bits" not in presets.get(name).settings  # a table axis, not a preset's


def test_the_paper_preset_is_the_papers_setting_with_no_deviation():
    values = presets.settings("paper")
    assert (values["stack_num"], values["epochs"], values["batch_size"], values["augment"]) == (18, 90, 64, False)
    assert values["learning_rate"] is None  # each method's own: 0.1 for SAEH
    assert presets.deviations("paper") == []


def test_deviations_follow_the_settings():
    assert presets.deviations("cifar10-cpu") == [
        "stack_num 2 (ResNet-14-like) instead of 18 (ResNet-110)",
        "12 epochs instead of 90, the step schedule scaled (saeh.defaults.step_starts): 4 / 3 / 3 / 2 epochs at the "
        "four rates",
        "random flips and pad-and-crop augmentation (the original used none)",
    ]
    assert len(presets.deviations("mnist-cpu")) == 2 and len(presets.deviations("tiny")) == 2
    for epochs in (1, 3, 12, 90):
        assert sum(presets.epochs_per_rate(epochs)) == epochs
    assert presets.resnet_depth(defaults.STACK_NUM) == 110


def test_a_preset_replaces_the_scripts_settings_and_flags_replace_the_preset():
    assert parse([], stack_num=7).stack_num == 7
    args = parse(["--preset", "cifar10-cpu"], stack_num=7, epochs=5)
    assert (args.stack_num, args.epochs, args.batch_size, args.augment) == (2, 12, 64, True)
    args = parse(["--preset", "cifar10-cpu", "--epochs", "3", "--no-augment", "--stack-num", "4"])
    assert (args.stack_num, args.epochs, args.augment, args.preset) == (4, 3, False, "cifar10-cpu")
    assert parse(["--preset", "mnist-cpu", "--augment"]).augment is True


def test_the_resnet50_preset_gives_the_encoder_and_names_it_as_a_deviation():
    args = parse(["--preset", "cifar10-resnet50"])
    assert (args.encoder, args.epochs, args.augment) == ("resnet50", 3, True)
    assert parse(["--preset", "cifar10-resnet50", "--encoder", "resnet_cifar"]).encoder == "resnet_cifar"
    assert parse(["--preset", "cifar10-table"]).encoder == defaults.ENCODER
    found = presets.deviations("cifar10-resnet50")
    assert found[0].startswith("encoder resnet50 instead of resnet_cifar")
    assert not any("stack_num" in line for line in found)  # the depth of resnet_cifar says nothing of ResNet50
    assert "stack_num" not in presets.describe("cifar10-resnet50")


def test_an_unknown_preset_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    save_dir = tmp_path / "runs"
    code, _, err = run_script("hash_su_ae_train.py", ["--which-data", "mnist-sample", "--preset", "fast",
                                                      "--save-dir", str(save_dir)], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, "hash_su_ae_train.py")
    assert "'fast'" in line and all(name in line for name in presets.names())
    assert not save_dir.exists()
    with pytest.raises(SaehError, match="known presets"):
        presets.settings("fast")


def test_run_json_records_the_preset(tmp_path, monkeypatch, capsys):
    code, out, err = run_script("hash_su_ae_train.py", [
        "--method", "itq", "--which-data", "mnist-sample", "--hash-bits", "12", "--preset", "tiny",
        "--save-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 0, err
    assert "ignores" not in out  # the preset's deep settings are no flags the user gave
    with open(tmp_path / "itq_mnist-sample_12bits" / "run.json") as handle:
        assert json.load(handle)["preset"] == "tiny"


def test_a_run_is_not_resumed_under_another_preset(tmp_path):
    from saeh.run_folder import RunFolder
    from saeh.training import run_states

    run_dir = str(tmp_path / "run")
    run_states.prepare_run_dir(run_dir, {"method": "saeh", "preset": "tiny"}, resume=True, overwrite=False)
    folder = RunFolder(run_dir)
    os.makedirs(folder.checkpoints)
    open(folder.last_checkpoint, "wb").close()  # an unfinished run with a checkpoint
    with pytest.raises(SaehError, match="other settings.*preset: 'tiny' -> 'mnist-cpu'"):
        run_states.prepare_run_dir(run_dir, {"method": "saeh", "preset": "mnist-cpu"}, resume=True, overwrite=False)


def test_the_listing_names_every_preset_and_its_deviations(capsys):
    assert presets.main() == 0
    out = capsys.readouterr().out
    for name in presets.names():
        assert f"{name}: {presets.get(name).description}" in out
    assert "no deviation from the paper" in out and "ResNet-14-like" in out


def test_from_preset_names_the_settings_the_preset_gave_and_no_flag_overrode():
    assert parse([]).from_preset == ()
    args = parse(["--preset", "mnist-cpu", "--epochs", "3", "--augment"])
    assert set(args.from_preset) == set(presets.PRESET_SETTINGS) - {"epochs", "augment"}
    assert args.epochs == 3  # the preset's own value, given as a flag: still the flag's


def test_a_presets_epochs_are_image_visits_for_a_method_that_samples_its_epochs():
    """ADSH's epoch is one outer iteration over 3 x 2,000 sampled images: 3 passes over MNIST's 54,000 training
    images are 27 of them; a method whose epoch is one pass keeps the count."""
    import baselines

    assert baselines.get("adsh").epochs_for_passes(3, 54000) == 27
    assert baselines.get("dsah").epochs_for_passes(3, 54000) == 27
    assert baselines.get("adsh").epochs_for_passes(3, 54000, hyperparameters={"inner_epochs": 1}) == 81
    assert baselines.get("adsh").epochs_for_passes(12, 1000) == 4  # 1,000 images: every one sampled, 3 passes
    for name in ("saeh", "dpsh", "hashnet"):
        assert baselines.get(name).epochs_for_passes(3, 54000) == 3


# The bundled sample's 4,500 training images, 3 passes; ADSH's epoch here visits 500 x 3 of them.
@pytest.mark.parametrize("flags, epochs", [([], 9), (["--epochs", "2"], 2)])
def test_the_script_trains_a_sampling_method_for_the_presets_image_visits(flags, epochs, tmp_path, monkeypatch,
                                                                         capsys):
    code, out, split, given = training_call([
        "--which-data", "mnist-sample", "--method", "adsh", "--preset", "mnist-cpu", "--set", "num_samples=500",
        "--save-dir", str(tmp_path), *flags], monkeypatch, capsys)
    assert code == 0
    assert (given["epochs"], len(split.train)) == (epochs, 4500)
    assert ("passes over the" in out) == (not flags)


@pytest.mark.parametrize("argv, method, expected", [
    (["--preset", "cifar10-table"], "dpsh", (128, "recipe dpsh's")),  # the authors' batch over the preset's 64
    (["--preset", "cifar10-table", "--batch-size", "32"], "dpsh", (32, "--batch-size")),  # a flag over both
    (["--batch-size", "64"], "hashnet", (64, "--batch-size")),  # even the default value, when given
    ([], "hashnet", (72, "recipe hashnet's")),
    (["--preset", "cifar10-table"], "saeh", (64, "preset cifar10-table's")),  # SAEH's recipe names no batch
    ([], "saeh", (64, "the script's setting")),
    (["--preset", "cifar10-fast"], "dpsh", (1024, "preset cifar10-fast's")),  # whitened_cnn's recipe replaces DPSH's
])
def test_the_batch_size_is_the_flags_then_the_methods_recipes_then_the_presets(argv, method, expected):
    from saeh import registry

    args = parse(argv)
    assert train.batch_size_for(registry.get(method), args) == expected


@pytest.mark.slow
def test_a_method_with_a_recipe_batch_trains_at_it_and_the_log_says_so(tmp_path, monkeypatch, capsys):
    code, out, err = run_script("hash_su_ae_train.py", [
        "--method", "dpsh", "--which-data", "mnist-sample", "--hash-bits", "12", "--preset", "tiny",
        "--save-dir", str(tmp_path), "--run-name", "dpsh", "--verbose", "0"], monkeypatch, capsys)
    assert code == 0, err
    assert "batch size 128 (recipe dpsh's" in out
    with open(tmp_path / "dpsh" / "run.json") as handle:
        recorded = json.load(handle)
    assert (recorded["batch_size"], recorded["recipe"]) == (128, "dpsh")
