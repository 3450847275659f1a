"""Every command shown in README.md and docs/*.md still means what the page says.

Each shell line of a fenced code block is checked: the package's own commands are parsed by their real argument
parsers (a flag renamed or removed fails here), with the names they take (a method, a preset, a table) looked up;
`pip install` may name only extras that setup.py declares; `jupyter execute` only notebooks that exist. Commands
that train or write files are parsed, not run (the suite trains each path elsewhere); cheap ones that only read are
run. Blocks fenced as ```python are executed.
"""

import argparse
import glob
import os
import re
import runpy
import shlex
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", *sorted(os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "docs", "*.md")))]
COMMAND_STARTS = ("python", "pip", "jupyter", "tensorboard")
ENVIRONMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def fenced_blocks(page):
    """[(language, text)] of the page's fenced code blocks."""
    with open(os.path.join(REPO, page), encoding="utf-8") as handle:
        text = handle.read()
    return re.findall(r"^```([a-z]*)\n(.*?)^```", text, flags=re.S | re.M)


def shell_commands(page):
    """The page's shell commands: each a list of argv lists (one per `&&` part), environment assignments dropped."""
    commands = []
    for language, block in fenced_blocks(page):
        if language not in ("", "bash", "sh", "shell"):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            if not line.lstrip().startswith(COMMAND_STARTS) and not ENVIRONMENT.match(line.lstrip()):
                continue  # a diagram or a listing, not a command
            words = shlex.split(line, comments=True)
            while words and ENVIRONMENT.match(words[0]):
                words = words[1:]
            if not words or not words[0].startswith(COMMAND_STARTS):
                continue
            parts, part = [], []
            for word in words:
                if word == "&&":
                    parts.append(part)
                    part = []
                else:
                    part.append(word)
            commands.append([*parts, part])
    return commands


ALL_COMMANDS = [(page, " ".join(" ".join(part) for part in parts), parts)
                for page in PAGES for parts in shell_commands(page)]


class Parsed(Exception):
    """Raised by the patched parser once the arguments are parsed, so that nothing after the parse runs."""


def parse_script(path, argv, monkeypatch):
    """Run a script of the repository up to its argument parser's `parse_args`, with `argv`."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [path, *argv])
    with pytest.raises(Parsed):
        runpy.run_path(os.path.join(REPO, path), run_name="__main__")


def check_python(argv, monkeypatch):
    from saeh import presets, registry

    if argv[:2] == ["-m", "pytest"]:
        return  # the README's test command: CI runs exactly that line
    if argv[0] == "hash_su_ae_train.py":
        from saeh.cli import train

        args = presets.parse_args(train.build_parser(train.SETTINGS), argv[1:])
        registry.get(args.method)  # an unknown method is refused here
        return
    modules = {"generate_hash.py": "saeh.cli.generate", "evaluate.py": "saeh.cli.evaluate",
               "saeh.reproduce": "saeh.reproduce.cli", "saeh.cli.search": "saeh.cli.search",
               "saeh.cli.index": "saeh.cli.index", "saeh.cli.serve": "saeh.cli.serve",
               "saeh.cli.cache": "saeh.cli.cache", "saeh.pretrained": "saeh.pretrained"}
    name, rest = (argv[1], argv[2:]) if argv[0] == "-m" else (argv[0], argv[1:])
    if name in modules:
        module = __import__(modules[name], fromlist=["build_parser"])
        parser = module.build_parser(None) if name == "generate_hash.py" else module.build_parser()
        args = parser.parse_args(rest)
        if name == "saeh.reproduce" and getattr(args, "table", None):
            from saeh.reproduce.tables import TABLES

            assert args.table in TABLES
        if getattr(args, "preset", None):
            presets.settings(args.preset)
        return
    if name.startswith(("benchmarks/", "tools/")):
        parse_script(name, rest, monkeypatch)
        return
    raise AssertionError(f"no check for the command `python {' '.join(argv)}`: add one to this test")


def check_pip(argv):
    assert argv[:2] == ["pip", "install"], argv
    target = argv[-1]
    extras = re.fullmatch(r"\.(?:\[([a-z,]+)\])?", target)
    assert extras, f"pip installs {target!r}, not this package"
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as handle:
        setup = handle.read()
    for extra in filter(None, (extras.group(1) or "").split(",")):
        assert f'"{extra}":' in setup, f"setup.py declares no extra {extra!r}"


@pytest.mark.parametrize("page, text, parts", ALL_COMMANDS, ids=[f"{page}: {text[:70]}" for page, text, _ in
                                                                  ALL_COMMANDS])
def test_each_documented_command_parses(page, text, parts, monkeypatch):
    monkeypatch.chdir(REPO)
    for argv in parts:
        if argv[0] == "pip":
            check_pip(argv)
        elif argv[0] == "python":
            check_python(argv[1:], monkeypatch)
        elif argv[0] == "jupyter":
            assert os.path.isfile(os.path.join(REPO, argv[-1])), f"{page}: no notebook {argv[-1]}"
        elif argv[0] == "tensorboard":
            assert "--logdir" in argv
        else:
            raise AssertionError(f"{page}: no check for `{' '.join(argv)}`")


def test_the_pages_show_commands_and_the_checker_sees_them():
    """The extraction itself: the Quickstart's two commands are found, each in two `&&` parts."""
    readme = shell_commands("README.md")
    assert [parts[0][:3] for parts in readme[:2]] == [["pip", "install", "-e"], ["pip", "install", "-e"]]
    assert readme[0][1][:2] == ["python", "hash_su_ae_train.py"]
    assert len(ALL_COMMANDS) >= 20


def test_a_renamed_flag_in_a_page_fails_its_check(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit):
        check_python(["hash_su_ae_train.py", "--which-dataset", "mnist"], monkeypatch)
    with pytest.raises(Exception, match="nosuch"):
        check_python(["hash_su_ae_train.py", "--method", "nosuch"], monkeypatch)
    with pytest.raises(AssertionError, match="no extra"):
        check_pip(["pip", "install", "-e", ".[nosuch]"])


# docs/API.md's tutorial trains, searches and serves (about 22 CPU-seconds): slow, as tests/test_api.py covers the
# same API in the fast lane.
PAGES_TO_RUN = [pytest.param(page, marks=pytest.mark.slow) if page == os.path.join("docs", "API.md") else page
                for page in PAGES]


@pytest.mark.parametrize("page", PAGES_TO_RUN)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    """A page's ```python blocks run in order in one namespace (a tutorial builds on its earlier blocks), in an
    empty working folder (what they write stays out of the repository)."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for language, block in fenced_blocks(page):
        if language == "python":
            exec(compile(block, page, "exec"), namespace)


def test_cheap_commands_run(capsys):
    """Commands that only read: the runner's dry run lists cells and their commands."""
    from saeh.reproduce import cli

    cli.main(["run", "table2-gamma", "--preset", "cifar10-table", "--seeds", "0", "1", "2", "--data-dir", "DIR",
              "--dry-run"])
    assert "python hash_su_ae_train.py --method saeh" in capsys.readouterr().out
