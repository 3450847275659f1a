"""Training from Python with the training script's settings: `saeh.train(which_data="mnist-sample", ...)` turns its
keyword arguments into the script's flags and runs the very code path of `hash_su_ae_train.py`
(`saeh.cli.train.train_from_arguments`), so a model trained from Python has the same run folder (run.json with its
data settings, code dumps, scores.json) and works with `generate_hash.py`, `evaluate.py` and search."""

import argparse
import dataclasses
import os

from saeh.errors import SaehError


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """A finished training run: its folder, the scores it printed (as scores.json holds them: map@1000,
    precision@r2, ...) and its code dumps ({"query": path, "database": path}); scores and dumps are None on a worker
    other than the chief."""

    run_dir: str
    scores: dict | None
    codes: dict | None

    def load_model(self, safe_mode=True):
        """The trained model (`saeh.load_model` of the run folder)."""
        from saeh.api.hash_model import load_model

        return load_model(self.run_dir, safe_mode=safe_mode)


def _flags_by_setting(parser):
    """{setting name (the flag's dest): [its actions]} of the training script's parser, help left out."""
    actions = {}
    for action in parser._actions:  # argparse offers no public list of a parser's arguments
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            actions.setdefault(action.dest, []).append(action)
    return actions


def _flag_words(name, value, actions):
    """The command-line words that give setting `name` the value `value`."""
    switches = {action.const: action.option_strings[0] for action in actions
                if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))}
    if switches:
        if not isinstance(value, bool):
            raise SaehError(f"{name} is on or off: pass True or False; got {value!r}")
        return [switches[value]] if value in switches else []  # no flag for it: the script's default is that value
    action = actions[0]
    if value is None:
        return []
    if name == "hyperparameters":  # --set NAME=VALUE, repeated
        return [word for key, item in dict(value).items() for word in (action.option_strings[0], f"{key}={item}")]
    if isinstance(action, argparse._AppendAction):
        return [word for item in value for word in (action.option_strings[0], str(item))]
    if isinstance(value, (list, tuple)):
        return [action.option_strings[0], *map(str, value)]
    return [action.option_strings[0], os.fspath(value) if isinstance(value, os.PathLike) else str(value)]


def training_arguments(**settings):
    """The flags of `hash_su_ae_train.py` that give `settings` (each named as the flag, with _ for -: which_data,
    hash_bits, epochs, preset, save_dir, hyperparameters={"gamma": 0}, ...); an unknown name is refused, listing
    the known ones."""
    from saeh.cli.train import SETTINGS, build_parser

    actions = _flags_by_setting(build_parser(SETTINGS))
    unknown = sorted(set(settings) - set(actions))
    if unknown:
        raise SaehError(f"unknown training setting(s) {', '.join(unknown)}; the settings are: "
                        f"{', '.join(sorted(actions))}")
    return [word for name, value in settings.items() for word in _flag_words(name, value, actions[name])]


def train(**settings):
    """Train a hashing method as `hash_su_ae_train.py` does, with its settings as keyword arguments (see
    `python hash_su_ae_train.py --help`; e.g. method="saeh", which_data="mnist-sample", stack_num=1, epochs=1,
    hash_bits=32, preset="mnist-cpu", save_dir="runs", run_name=..., overwrite=True, hyperparameters={"gamma": 0}).
    Writes the run folder as the script does and returns a `TrainingResult`."""
    from saeh.cli import quiet_tensorflow_start
    from saeh.cli.train import train_from_arguments

    argv = training_arguments(**settings)
    with quiet_tensorflow_start():
        outcome = train_from_arguments(argv)
    return TrainingResult(run_dir=outcome["run_dir"], scores=outcome["scores"], codes=outcome["codes"])
