"""What a new user meets first: the paper's settings on a CPU refused with their cost, the offline data errors naming
every layout that works, the `saeh` console command, the shipped models found from an installed package, and one
clear line for each of the usual first mistakes."""

import json
import os
import re
import shutil
import sys

import numpy as np
import pytest

from saeh import cpu_cost, pretrained
from saeh.errors import SaehError
from script_helpers import REPO, error_line, run_script, training_call

TRAIN, GENERATE, EVALUATE = "hash_su_ae_train.py", "generate_hash.py", "evaluate.py"
CIFAR10_IMAGES = 45000  # the training part of CIFAR-10 under protocol ssdh


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(cpu_cost, "gpu_visible", lambda: False)


def test_the_paper_settings_on_a_cpu_are_refused_with_their_cost_and_a_preset(no_gpu):
    with pytest.raises(SaehError) as refused:
        cpu_cost.check_cpu_training(encoder="resnet_cifar", stack_num=18, epochs=90, training_images=CIFAR10_IMAGES,
                                    which_data="cifar10", agreed=False)
    message = str(refused.value)
    hours = 90 * CIFAR10_IMAGES / cpu_cost.images_per_second("resnet_cifar", 18) / 3600
    assert f"about {hours:.0f} hours" in message and "images/s" in message
    assert "--preset cifar10-fast or --preset cifar10-table" in message and "--yes-train-on-cpu" in message
    lines = []
    cpu_cost.check_cpu_training(encoder="resnet_cifar", stack_num=18, epochs=90, training_images=CIFAR10_IMAGES,
                                which_data="cifar10", agreed=True, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("note: ") and "going on" in lines[0]
    # The presets pass, and so does the paper's setting where a GPU is visible.
    for stack_num, epochs in ((2, 12), (1, 12)):
        cpu_cost.check_cpu_training(encoder="resnet_cifar", stack_num=stack_num, epochs=epochs,
                                    training_images=CIFAR10_IMAGES, which_data="cifar10", agreed=False)


def test_the_training_script_refuses_a_day_long_cpu_run_before_its_run_folder(tmp_path, monkeypatch, capsys, no_gpu):
    monkeypatch.setattr(cpu_cost, "REFUSED_ABOVE_HOURS", 0.5)  # mnist-sample's 4500 images at stack_num 18
    args = ["--which-data", "mnist-sample", "--epochs", "90", "--save-dir", str(tmp_path / "runs")]
    code, _, err = run_script(TRAIN, args, monkeypatch, capsys)
    assert code == 2
    assert re.search(r"is about \d+ hours .* use a preset of `python -m saeh.presets`", error_line(err, TRAIN))
    assert not (tmp_path / "runs").exists()
    code, out, _, given = training_call(args + ["--yes-train-on-cpu"], monkeypatch, capsys)
    assert code == 0 and given["stack_num"] == 18 and "note: resnet_cifar with stack_num 18 for 90 epochs" in out


@pytest.mark.parametrize("which_data, layouts", [
    ("cifar10", ["data_batch_1 .. data_batch_5 and test_batch", "cifar-10-batches-py/", "cifar-10-python.tar.gz",
                 "train/<class>/*.jpg and test/<class>/*.jpg", "airplane"]),
    ("mnist", ["mnist.npz", "x_train, y_train, x_test, y_test", "the file or its folder as data_dir"]),
    ("svhn", ["train_32x32.mat and test_32x32.mat", "under svhn/"]),
])
def test_offline_data_errors_name_every_layout_that_works(tmp_path, monkeypatch, which_data, layouts):
    from saeh.data import load_dataset
    from saeh.data.sources import arrays

    monkeypatch.setattr(arrays, "keras_load_data", lambda name: (_ for _ in ()).throw(ConnectionError("offline")))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(SaehError) as missing:
        load_dataset(which_data, data_dir=tmp_path)
    for layout in layouts:
        assert layout in str(missing.value), layout


def test_the_saeh_command_runs_every_script(capsys, monkeypatch):
    from saeh.cli import commands

    with open(os.path.join(REPO, "setup.py")) as handle:
        assert '"console_scripts": ["saeh = saeh.cli.commands:main"]' in handle.read()
    assert commands.main(["presets"]) == 0 and "cifar10-fast" in capsys.readouterr().out
    assert commands.main(["methods"]) == 0 and "dpsh" in capsys.readouterr().out
    assert commands.main(["trian"]) == 2
    assert capsys.readouterr().err.strip() == (
        "saeh: error: unknown command 'trian' (did you mean train?); expected one of " + ", ".join(commands.SUBCOMMANDS))
    assert commands.main(["train", "--which-data", "cifar", "--epochs", "1"]) == 2
    assert "saeh train: error: unknown dataset 'cifar' (did you mean cifar10?)" in capsys.readouterr().err
    for name in commands.SUBCOMMANDS:
        assert callable(commands.subcommand(name)), name
    with pytest.raises(SystemExit):
        commands.main(["generate", "--help"])
    assert "--load-path" in capsys.readouterr().out


def test_shipped_models_are_found_from_an_installed_package(tmp_path, monkeypatch, capsys):
    from saeh import shipped
    from saeh.api.hash_model import model_file

    # An installed package: no clone above it; setup.py's data_files put pretrained/ under <prefix>/share/saeh.
    monkeypatch.setattr(shipped, "__file__", str(tmp_path / "site-packages" / "saeh" / "shipped.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.delenv(shipped.PRETRAINED_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SaehError, match=r"the shipped models are: none found .*\(pip install \.\) or set "
                                        "SAEH_PRETRAINED=<clone>/pretrained"):
        model_file("saeh_mnist_32bits")
    with pytest.raises(SaehError, match="no shipped models: none found"):
        pretrained.main(["list"])
    installed = tmp_path / "prefix" / "share" / "saeh" / "pretrained"
    shutil.copytree(os.path.join(REPO, "pretrained", "saeh_mnist_32bits"), installed / "saeh_mnist_32bits")
    assert model_file("saeh_mnist_32bits") == str(installed / "saeh_mnist_32bits" / "model.keras")
    capsys.readouterr()
    assert pretrained.main(["list"]) == 0 and capsys.readouterr().out.startswith("saeh_mnist_32bits: ")
    monkeypatch.setenv(shipped.PRETRAINED_VARIABLE, os.path.join(REPO, "pretrained"))
    assert model_file("saeh_cifar10_32bits") == os.path.join(REPO, "pretrained", "saeh_cifar10_32bits", "model.keras")
    with open(os.path.join(REPO, "setup.py")) as handle:
        assert 'os.path.join("share", "saeh", os.path.normpath(folder))' in handle.read()


def test_a_run_folder_or_a_shipped_name_is_a_load_path(tmp_path, monkeypatch, capsys):
    from saeh.cli.common import model_argument

    folder = os.path.join(REPO, "pretrained", "saeh_mnist_32bits")
    assert model_argument("saeh_mnist_32bits") == model_argument(folder) == os.path.join(folder, "model.keras")
    code, out, err = run_script(GENERATE, ["--load-path", folder, "--which-data", "mnist-sample", "--out",
                                           str(tmp_path / "codes")], monkeypatch, capsys)
    assert code == 0, err
    assert (tmp_path / "codes" / "query.npz").exists() and (tmp_path / "codes" / "database.npz").exists()
    code, _, err = run_script(GENERATE, ["--load-path", str(tmp_path), "--which-data", "mnist-sample"],
                              monkeypatch, capsys)
    assert code == 2 and f"run folder {tmp_path} holds no model.keras" in error_line(err, GENERATE)


def test_a_text_file_named_npz_is_not_an_npz(tmp_path, monkeypatch, capsys):
    dump = tmp_path / "codes.npz"
    dump.write_text("hash_bin,label\n0101,3\n")
    code, _, err = run_script(EVALUATE, [str(dump)], monkeypatch, capsys)
    assert code == 2
    assert error_line(err, EVALUATE) == (f"{EVALUATE}: error: code dump {dump} is not an .npz file: not a zip archive "
                                         "(an .npz is a zip of .npy arrays)")


def test_a_near_dataset_name_gets_did_you_mean(tmp_path, monkeypatch, capsys):
    code, _, err = run_script(TRAIN, ["--which-data", "cifar", "--save-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "unknown dataset 'cifar' (did you mean cifar10?)" in error_line(err, TRAIN)


def test_a_load_path_trained_on_other_data_is_one_line_before_keras_speaks(tmp_path, monkeypatch, capsys):
    cifar_model = os.path.join(REPO, "pretrained", "saeh_cifar10_32bits")
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--stack-num", "2", "--epochs", "1",
                                      "--load-path", cifar_model, "--save-dir", str(tmp_path / "runs")],
                              monkeypatch, capsys)
    assert code == 2
    assert "was trained on images of shape (32, 32, 3), but mnist-sample has images of shape (28, 28, 1)" in (
        error_line(err, TRAIN))
    assert "Warning" not in err and not (tmp_path / "runs").exists()
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--stack-num", "1", "--epochs", "1",
                                      "--hash-bits", "16", "--load-path", "saeh_mnist_32bits", "--save-dir",
                                      str(tmp_path / "runs")], monkeypatch, capsys)
    assert code == 2 and "has 32-bit codes but --hash-bits is 16" in error_line(err, TRAIN)
    assert not (tmp_path / "runs").exists()


def write_run_dumps(run_dir, which_data, seed):
    from saeh.codes import make_codes, save_codes

    os.makedirs(run_dir / "codes")
    (run_dir / "run.json").write_text(json.dumps({"which_data": which_data, "hash_bits": 8}))
    rng = np.random.default_rng(seed)
    for name in ("query", "database"):
        save_codes(run_dir / "codes" / f"{name}.npz", make_codes(rng.random((20, 8)), rng.integers(0, 10, 20)))


def test_query_codes_of_one_dataset_against_a_database_of_another_are_refused(tmp_path, monkeypatch, capsys):
    write_run_dumps(tmp_path / "cifar", "cifar10", 0)
    write_run_dumps(tmp_path / "mnist", "mnist", 1)
    query, database = tmp_path / "cifar" / "codes" / "query.npz", tmp_path / "mnist" / "codes" / "database.npz"
    code, _, err = run_script(EVALUATE, ["--query", str(query), "--database", str(database)], monkeypatch, capsys)
    assert code == 2
    assert error_line(err, EVALUATE).startswith(f"{EVALUATE}: error: query dump {query} holds codes of cifar10 (its "
                                                f"{tmp_path / 'cifar' / 'run.json'}) but database dump {database} "
                                                "codes of mnist")
    same_run = ["--query", str(query), "--database", str(tmp_path / "cifar" / "codes" / "database.npz")]
    assert run_script(EVALUATE, same_run, monkeypatch, capsys)[0] == 0


@pytest.mark.parametrize("script, args", [(GENERATE, []), ("saeh/cli/search.py", [])])
def test_help_of_the_scripts_that_use_a_trained_model_lists_no_training_only_flag(script, args, monkeypatch,
                                                                                   capsys):
    code, out, _ = run_script(script, ["--help"], monkeypatch, capsys)
    assert code == 0 and "--which-data" in out and "--select-on-test" not in out
    code, out, _ = run_script(TRAIN, ["--help"], monkeypatch, capsys)
    assert "--select-on-test" in out


def test_messages_name_flags_not_python_arguments(tmp_path):
    from saeh.atomic import check_writable

    (tmp_path / "grid.png").write_bytes(b"png")
    with pytest.raises(SaehError) as refused:
        check_writable(tmp_path / "grid.png", overwrite=False)
    assert str(refused.value).endswith("pass --overwrite to replace it")
