"""What the scripts say: stderr free of TensorFlow's start-up log, help texts that state each default once, and
hyperparameters given as text checked against the method's defaults."""

import argparse
import os
import re
import subprocess
import sys

import pytest

from saeh.cli import TF_LOG_LEVEL, HeldBackImport, run
from saeh.errors import SaehError
from saeh.methods import resolve_hyperparameters
from script_helpers import REPO, error_line, run_script

TRAIN, GENERATE, EVALUATE, SEARCH = "hash_su_ae_train.py", "generate_hash.py", "evaluate.py", "saeh/cli/search.py"

# Runs a script as `python SCRIPT ARGS` does, then says on stdout whether TensorFlow was imported: the failures below
# must come after TensorFlow's start-up, or they would not test that its log stays off stderr.
RUN_AND_TELL_IF_TENSORFLOW = """\
import atexit, runpy, sys
atexit.register(lambda: print("tensorflow imported:", "tensorflow" in sys.modules))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_in_subprocess(script, args, cwd):
    """(exit status, stdout, stderr) of `python script args`, without a TF_CPP_MIN_LOG_LEVEL of the test's own."""
    environment = {name: value for name, value in os.environ.items() if name != TF_LOG_LEVEL}
    result = subprocess.run([sys.executable, "-c", RUN_AND_TELL_IF_TENSORFLOW, os.path.join(REPO, script), *args],
                            cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def assert_only_the_error_line(code, out, err, script):
    assert code == 2, err
    assert "tensorflow imported: True" in out, out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), err


def test_train_error_after_tensorflow_started_is_the_only_line_on_stderr(tmp_path):
    code, out, err = run_in_subprocess(TRAIN, ["--which-data", "mnist-sample", "--gamma", "-1", "--stack-num", "1",
                                               "--epochs", "1", "--save-dir", str(tmp_path / "runs")], tmp_path)
    assert_only_the_error_line(code, out, err, TRAIN)
    assert "gamma" in err


def test_generate_error_on_a_truncated_model_is_the_only_line_on_stderr(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04truncated")
    code, out, err = run_in_subprocess(GENERATE, ["--load-path", str(model), "--which-data", "mnist-sample"], tmp_path)
    assert_only_the_error_line(code, out, err, GENERATE)
    assert str(model) in err


def write_module(folder, name, failing):
    """A module that writes to file descriptor 2 when imported (as TensorFlow's C++ libraries do), then fails if
    `failing`."""
    source = "import os\nos.write(2, b'start-up log line\\n')\n"
    if failing:
        source += "raise ImportError('a library is missing')\n"
    (folder / f"{name}.py").write_text(source)


@pytest.mark.parametrize("failing", [False, True])
def test_held_back_import_shows_its_log_only_when_it_fails(tmp_path, monkeypatch, capfd, failing):
    name = f"noisy_start_{'failing' if failing else 'working'}"
    write_module(tmp_path, name, failing)
    monkeypatch.syspath_prepend(str(tmp_path))
    probed = []
    hook = HeldBackImport(name, then=lambda module: probed.append(os.write(2, b"probe log line\n")))
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    capfd.readouterr()
    try:
        if failing:
            with pytest.raises(ImportError, match="a library is missing"):
                __import__(name)
        else:
            __import__(name)
    finally:
        sys.modules.pop(name, None)
    err = capfd.readouterr().err
    if failing:
        assert "start-up log line" in err and not probed
    else:
        assert err == "" and probed
    assert hook not in sys.meta_path  # one-shot


def test_run_quiets_tensorflow_only_while_it_runs_and_keeps_the_users_log_level(monkeypatch):
    seen = []

    def main(argv):
        seen.append((os.environ.get(TF_LOG_LEVEL), any(isinstance(hook, HeldBackImport) for hook in sys.meta_path)))

    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as in a fresh process; main does not import it
    monkeypatch.delenv(TF_LOG_LEVEL, raising=False)
    assert run(main) == 0
    assert seen == [("2", True)]
    # Nothing left behind for later processes to take as the user's level, nor a hook for later imports.
    assert TF_LOG_LEVEL not in os.environ and not any(isinstance(hook, HeldBackImport) for hook in sys.meta_path)
    monkeypatch.setenv(TF_LOG_LEVEL, "0")
    assert run(main) == 0
    assert seen[1] == ("0", False) and os.environ[TF_LOG_LEVEL] == "0"


def help_entries(text):
    """{flag or positional name: its help entry, whitespace collapsed} from an argparse help message."""
    sections = text[re.search(r"^(positional arguments|options):$", text, re.MULTILINE).start():]
    entries = {}
    for entry in re.split(r"\n  (?=\S)", sections)[1:]:
        entries[entry.split()[0].rstrip(",")] = " ".join(entry.split())
    return entries


def assert_states_its_default_once(entries, parser_actions):
    for action in parser_actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert name in entries, f"{name} missing from the help"
        assert action.help, f"{name} has no help text"
        entry = entries[name]
        assert entry.count("(default") <= 1 and "(default: None)" not in entry, entry


def script_parsers():
    from saeh.cli import evaluate, generate, search

    return {GENERATE: generate.build_parser("runs/model.keras"), EVALUATE: evaluate.build_parser(),
            SEARCH: search.build_parser()}


@pytest.mark.parametrize("script", [GENERATE, EVALUATE, SEARCH])
def test_every_flag_has_help_that_states_its_default_once(script, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_script(script, ["--help"], monkeypatch, capsys)
    assert code == 0
    assert_states_its_default_once(help_entries(out), script_parsers()[script]._actions)


def test_train_help_states_each_default_once(monkeypatch, capsys):
    """hash_su_ae_train.py's parser uses ArgumentDefaultsHelpFormatter, which adds "(default: ...)" to every help
    that does not state its own."""
    from saeh.cli import train

    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_script(TRAIN, ["--help"], monkeypatch, capsys)
    assert code == 0
    assert_states_its_default_once(help_entries(out), train.build_parser(train.SETTINGS)._actions)
    assert "(default: cifar10)" in help_entries(out)["--which-data"]
    assert "(default: 0.1)" in help_entries(out)["--alpha"]


def test_hyperparameters_take_the_type_of_their_default():
    defaults = {"weight": 0.1, "iterations": 50, "normalise": False, "name": "pairs", "margin": None}
    resolved = resolve_hyperparameters("test", defaults, {"weight": 1, "iterations": "24", "normalise": "True",
                                                         "name": 3, "margin": "12.5"})
    assert resolved == {"weight": 1.0, "iterations": 24, "normalise": True, "name": "3", "margin": 12.5}
    assert type(resolved["weight"]) is float and type(resolved["iterations"]) is int
    assert resolve_hyperparameters("test", defaults, {"normalise": 0, "iterations": 24.0})["normalise"] is False


@pytest.mark.parametrize("name, value, expected", [
    ("weight", "abc", "a finite number"), ("weight", "nan", "a finite number"), ("iterations", 2.5, "an integer"),
    ("iterations", True, "an integer"), ("normalise", "yes", "a boolean"), ("margin", "wide", "a finite number"),
])
def test_a_hyperparameter_that_does_not_convert_is_named_with_its_method(name, value, expected):
    defaults = {"weight": 0.1, "iterations": 50, "normalise": False, "margin": None}
    with pytest.raises(SaehError) as raised:
        resolve_hyperparameters("test", defaults, {name: value})
    message = str(raised.value)
    assert f"{name} of method 'test'" in message and expected in message and repr(value) in message, message


def test_train_rejects_a_hyperparameter_that_is_not_a_number(tmp_path, monkeypatch, capsys):
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--set", "alpha=abc",
                                      "--save-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, TRAIN)
    assert "alpha of method 'saeh' must be a finite number; got 'abc'" in line, line


def test_train_checks_and_records_a_shallow_method_s_hyperparameters(tmp_path, monkeypatch, capsys):
    import json

    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--method", "ksh", "--set", "n_anchors=0",
                                      "--save-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, TRAIN)
    assert "hyperparameter n_anchors of method 'ksh' must be a positive integer" in line, line
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--method", "itq", "--hash-bits", "8",
                                      "--set", "n_iter=3", "--save-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 0, err
    with open(tmp_path / "itq_mnist-sample_8bits" / "run.json") as handle:
        assert json.load(handle)["hyperparameters"] == {"n_iter": 3}


def test_epochs_none_is_refused_before_resnet50_s_warm_up_uses_them(tmp_path):
    """epochs=None in a Python caller's settings passes the script's flag checks (None stands for "not given" there):
    the library's check comes first, not a TypeError in the warm-up's min()."""
    from saeh.cli import train

    with pytest.raises(SaehError, match="epochs must be a positive integer; got None"):
        train.main(["--which-data", "mnist-sample", "--encoder", "resnet50", "--save-dir", str(tmp_path)],
                   settings={"epochs": None})


def test_train_passes_a_converted_hyperparameter_to_training(tmp_path, monkeypatch, capsys):
    from saeh import training

    given = {}

    def stop_before_training(*args, hyperparameters, **kwargs):
        given.update(hyperparameters)
        raise SaehError("stopped before training")

    monkeypatch.setattr(training, "train", stop_before_training)
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--set", "alpha=1", "--save-dir", str(tmp_path)],
                              monkeypatch, capsys)
    assert code == 2 and "stopped before training" in error_line(err, TRAIN)
    assert given["alpha"] == 1.0 and type(given["alpha"]) is float


def test_train_refuses_an_asymmetric_method_whose_database_holds_images_it_does_not_learn(tmp_path, monkeypatch,
                                                                                         capsys):
    """Under protocol dpsh most database images are neither training nor validation images: ADSH would mix their
    network codes with its learned ones. The script says so before training."""
    from saeh import training

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(training, "train", must_not_train)
    code, _, err = run_script(TRAIN, ["--which-data", "mnist-sample", "--method", "adsh", "--protocol", "dpsh",
                                      "--save-dir", str(tmp_path)], monkeypatch, capsys)
    line = error_line(err, TRAIN)
    assert code == 2 and re.search(r"method 'adsh' is asymmetric.*under protocol 'dpsh' \d+ of the \d+ database "
                                   r"images are neither.*--protocol ssdh", line), line
    assert os.listdir(tmp_path) == []
