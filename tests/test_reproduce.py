"""The reproduction runner (`python -m saeh.reproduce`): cells, result files, commits, the report.

All but the last test replace the training command by a fake that writes a run folder's run.json and scores.json;
the last runs two real cells (ITQ and SAEH-minus, the `tiny` preset) on the bundled MNIST sample."""

import json
import os
import re
import subprocess
import types

import numpy as np
import pytest

import saeh.codes
from saeh import registry
from saeh.codes import make_codes, save_codes, save_original_dump
from saeh.errors import SaehError
from saeh.retrieval import map_at_k
from saeh.reproduce import cli, layout, records, report, runner, tables
from saeh.run_folder import RunFolder, original_dump_name


def quiet(*args, **kwargs):
    pass


def flag(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


class FakeTraining:
    """Stands in for `run_command`: writes the run folder a real run would leave, with scores made from the seed."""

    def __init__(self, status=0):
        self.calls = []
        self.status = status

    def __call__(self, argv, *, cwd):
        self.calls.append(argv)
        if self.status:
            return self.status
        run_dir = os.path.join(cwd, flag(argv, "--save-dir"), flag(argv, "--run-name"))
        os.makedirs(run_dir, exist_ok=True)
        seed, bits = int(flag(argv, "--seed")), int(flag(argv, "--hash-bits"))
        procedure = "original" if "--original" in argv else "default"
        settings = {"method": flag(argv, "--method"), "which_data": flag(argv, "--which-data"), "hash_bits": bits,
                    "seed": seed, "preset": flag(argv, "--preset"), "procedure": procedure,
                    "protocol": "dsh" if procedure == "original" else flag(argv, "--protocol")}
        scores = {"map@1000": 0.5 + seed / 100, "precision@r2": 0.4, "empty@r2": 0.1, "map@all": 0.3 + bits / 1000,
                  "seconds": 1.5, "bits": bits,
                  "protocol": settings["protocol"], "procedure": procedure,
                  "n_query": 10, "n_database": 50}
        for name, content in (("run.json", settings), ("scores.json", scores)):
            with open(os.path.join(run_dir, name), "w") as handle:
                json.dump(content, handle)
        write_fake_codes(RunFolder(run_dir), settings)
        return 0


def fake_codes(count, seed, bits=8):
    rng = np.random.default_rng(seed)
    return make_codes(rng.random((count, bits)), rng.integers(0, 3, count))


def write_fake_codes(folder, settings):
    """The code dumps a run leaves: query/database .npz, or the original procedure's test-set dump."""
    if settings["procedure"] == "original":
        path = os.path.join(folder.run_dir, original_dump_name(settings["which_data"], settings["hash_bits"]))
        save_original_dump(path, fake_codes(10, settings["seed"]))
        return
    for name, count in (("query", 10), ("database", 50)):
        save_codes(folder.code_path(name), fake_codes(count, settings["seed"] + count))


def run_fake(tmp_path, table, fake=None, **kwargs):
    fake = fake or FakeTraining()
    written = runner.run_table(table, preset=kwargs.pop("preset", "cifar10-cpu"), repo_root=tmp_path, run=fake,
                               log=quiet, **kwargs)
    return fake, written


def test_the_cells_of_each_table():
    other = len(tables.other_sources_methods())
    counts = {"table1-mnist": (7 * 4 + other) * 3, "table1-cifar10": 2 * 3 + 5 + other, "table2-gamma": 5 * 3,
              "original-cifar10": 2 * 2, "dpsh-protocol-cifar10": 4 + 2,
              "bits-cifar10": 2 * 3 * 3, "ablation-cifar10": 1 + len(tables.ABLATED) + 2}
    assert set(counts) == set(tables.TABLES)
    every_id = []
    for table, count in counts.items():
        ids = [cell.id for cell in tables.cells(table, preset="paper", seeds=(0, 1, 2))]
        assert len(ids) == count and len(set(ids)) == count
        assert ids == [cell.id for cell in tables.cells(table, preset="paper", seeds=(0, 1, 2))]
        every_id += ids
    assert len(set(every_id)) == len(every_id)  # unique across tables too: a commit message names one file
    ids = {cell.id for cell in tables.cells("table2-gamma", preset="cifar10-cpu", seeds=(1,))}
    assert {"saeh_cifar10_32bits_gamma0.01_seed1_cifar10-cpu", "saeh_cifar10_32bits_gamma0_seed1_cifar10-cpu"} <= ids
    assert [cell.id for cell in tables.cells("original-cifar10", preset="paper", seeds=(4, 5))] == [
        "saeh_cifar10_32bits_original_seed4_paper", "saeh-minus_cifar10_32bits_original_seed4_paper",
        "saeh_cifar10_32bits_dsh_seed4_paper", "saeh-minus_cifar10_32bits_dsh_seed4_paper"]


def test_table1_cifar10_runs_the_baselines_for_the_first_seed_only():
    seeds = {}
    for cell in tables.cells("table1-cifar10", preset="paper", seeds=(3, 4)):
        seeds.setdefault(cell.method, []).append(cell.seed)
    assert seeds == {"saeh": [3, 4], "saeh-minus": [3, 4], "ssdh": [3], "dsh": [3], "cnnh-plus": [3], "itq": [3],
                     "ksh": [3], **{method: [3] for method in tables.other_sources_methods()}}


def test_table1_runs_every_registered_method_beyond_its_own(monkeypatch):
    """The methods of our other sources are read from the registry: a new method's module is all it takes."""
    others = tables.other_sources_methods()
    assert set(others) == set(registry.names()) - set(tables.TABLE1_METHODS) - {"cnn-text"}  # a text method
    assert others[-2:] == ("dlbhc", "classifier-codes")  # codes from a classifier after those of a hashing loss
    example = types.SimpleNamespace(name="example-hash", summary="Example: a test's method")
    registry.names()  # the method packages loaded before the example joins them
    # (listing order, method): its own number places it, here after the last method of a hashing loss and before
    # DLBHC (300)
    monkeypatch.setitem(registry._METHODS, example.name, (295, example))
    found = tables.cells("table1-mnist", preset="mnist-cpu", methods=[example.name])
    assert [(cell.method, cell.bits) for cell in found] == [("example-hash", 32)]
    assert tables.other_sources_methods() == (*others[:-2], "example-hash", *others[-2:])


def test_methods_select_their_cells_in_the_tables_order():
    chosen = tables.cells("table1-cifar10", preset="paper", seeds=(0, 1), methods=["itq", "saeh-minus"])
    assert [(cell.method, cell.seed) for cell in chosen] == [("saeh-minus", 0), ("saeh-minus", 1), ("itq", 0)]


@pytest.mark.parametrize("call, message", [
    (dict(table_name="table9", preset="paper"), "unknown table 'table9'; known tables: table1-mnist"),
    (dict(table_name="table2-gamma", preset="paper", methods=["dsh"]), "table table2-gamma has no method"),
    (dict(table_name="table1-mnist", preset="fast"), "unknown preset 'fast'"),
    (dict(table_name="table1-mnist", preset="paper", seeds=[1, 1]), "--seeds lists a seed twice"),
    (dict(table_name="table1-mnist", preset="paper", seeds=[]), "--seeds must be"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(SaehError, match=message):
        tables.cells(**call)


def test_commands_are_the_training_scripts(tmp_path):
    by_id = {cell.id: cell for table in ("table2-gamma", "original-cifar10")
             for cell in tables.cells(table, preset="cifar10-cpu")}
    argv = tables.command(by_id["saeh_cifar10_32bits_gamma0.01_seed0_cifar10-cpu"], repo_root=tmp_path,
                          data_dir="data")
    assert argv[1].endswith("hash_su_ae_train.py")
    assert argv[2:] == ["--method", "saeh", "--which-data", "cifar10", "--hash-bits", "32", "--seed", "0",
                        "--preset", "cifar10-cpu", "--gamma", "0.01", "--protocol", "ssdh",
                        "--data-dir", os.path.abspath("data"), "--save-dir", os.path.join("runs", "reproduce",
                                                                                          "table2-gamma"),
                        "--run-name", "saeh_cifar10_32bits_gamma0.01_seed0_cifar10-cpu", "--verbose", "2"]
    original = tables.command(by_id["saeh-minus_cifar10_32bits_original_seed0_cifar10-cpu"], repo_root=tmp_path)
    assert "--original" in original and "--protocol" not in original and "--gamma" not in original
    # Beside it, our procedure scored as the original's dump can only be: the test set against itself.
    ours = tables.command(by_id["saeh-minus_cifar10_32bits_dsh_seed0_cifar10-cpu"], repo_root=tmp_path)
    assert "--original" not in ours and flag(ours, "--protocol") == "dsh"
    # From the clone itself the recorded command is the one a user types there.
    root = layout.default_repository()
    line = tables.shell_line(tables.command(by_id["saeh_cifar10_32bits_gamma10_seed0_cifar10-cpu"],
                                            repo_root=root))
    assert line.startswith("python hash_su_ae_train.py --method saeh ")


def test_a_finished_cell_leaves_one_result_file_with_everything(tmp_path):
    fake, written = run_fake(tmp_path, "original-cifar10", seeds=(2,))
    assert len(fake.calls) == 4 and len(written) == 4
    path = tmp_path / "results" / "original-cifar10" / "saeh_cifar10_32bits_original_seed2_cifar10-cpu.json"
    assert str(path) in written
    record = json.loads(path.read_text())
    assert {key: record[key] for key in ("table", "cell", "method", "dataset", "protocol", "procedure", "bits",
                                         "gamma", "seed", "preset", "resumed")} == {
        "table": "original-cifar10", "cell": "saeh_cifar10_32bits_original_seed2_cifar10-cpu", "method": "saeh",
        "dataset": "cifar10", "protocol": "dsh", "procedure": "original", "bits": 32, "gamma": 1.0, "seed": 2,
        "preset": "cifar10-cpu", "resumed": False}
    assert record["scores"]["map@1000"] == pytest.approx(0.52) and record["scores"]["n_query"] == 10
    assert record["wall_seconds"] >= 0 and record["run"]["preset"] == "cifar10-cpu"
    assert record["git"] == {"head": None, "commit": None, "dirty": None}  # tmp_path is no repository
    assert record["machine"]["cpu"] and record["machine"]["python"] and "keras" in record["machine"]
    assert record["command"].startswith("python ") and "--verbose 2" in record["command"]
    assert record["run_dir"] == os.path.join("runs", "reproduce", "original-cifar10", record["cell"])
    assert set(record["curves"]) == {"pr_by_radius", "pr_by_rank"}


def brute_force_ball(query, database, radius):
    """Mean over the queries of (precision, recall) of the database items within `radius`, with loops."""
    precisions, recalls = [], []
    for code, label in zip(query.hash_bin, query.label):
        inside = [i for i, other in enumerate(database.hash_bin) if int(np.sum(code != other)) <= radius]
        relevant = [i for i in range(len(database)) if database.label[i] == label]
        hits = len([i for i in inside if database.label[i] == label])
        precisions.append(hits / len(inside) if inside else 0.0)
        recalls.append(hits / len(relevant) if relevant else 0.0)
    return float(np.mean(precisions)), float(np.mean(recalls))


def test_the_curves_of_a_result_are_its_runs_codes(tmp_path):
    _, written = run_fake(tmp_path, "table1-cifar10", methods=["dsh"])
    record = json.loads(open(written[0]).read())
    curve = record["curves"]["pr_by_radius"]
    assert curve["radius"] == list(range(9))
    query, database = fake_codes(10, 10), fake_codes(50, 50)
    for radius in (0, 2, 5, 8):
        precision, recall = brute_force_ball(query, database, radius)
        assert curve["precision"][radius] == pytest.approx(precision, abs=1e-5)
        assert curve["recall"][radius] == pytest.approx(recall, abs=1e-5)
    assert curve["recall"][8] == pytest.approx(1.0)
    ranks = record["curves"]["pr_by_rank"]
    assert ranks["rank"][0] == 1 and ranks["rank"][-1] == 50 and ranks["rank"] == sorted(set(ranks["rank"]))
    assert 20 < len(ranks["rank"]) <= records.CURVE_RANKS  # about CURVE_RANKS points (fewer when ranks coincide)
    # At rank N every item is retrieved: recall 1, precision the share of relevant items.
    shares = [np.mean(database.label == label) for label in query.label]
    assert ranks["recall"][-1] == pytest.approx(1.0) and ranks["precision"][-1] == pytest.approx(np.mean(shares),
                                                                                             abs=1e-5)


def test_curves_are_added_to_older_result_files_and_copied_cells(tmp_path, monkeypatch):
    run_fake(tmp_path, "table1-cifar10", methods=["saeh-minus", "saeh", "dsh"])
    run_fake(tmp_path, "table2-gamma")  # gamma 0 and 1 are copies; the other three train
    paths = sorted((tmp_path / "results").rglob("*.json"))
    assert len(paths) == 8
    for path in paths:  # as written before the curves were stored
        record = json.loads(path.read_text())
        del record["curves"]
        path.write_text(json.dumps(record))
    gone = tmp_path / "runs" / "reproduce" / "table1-cifar10" / "dsh_cifar10_32bits_seed0_cifar10-cpu"
    for child in sorted(gone.rglob("*"), reverse=True):
        child.unlink() if child.is_file() else child.rmdir()
    gone.rmdir()
    messages, loaded = [], []
    load_codes = saeh.codes.load_codes
    monkeypatch.setattr(saeh.codes, "load_codes", lambda path: loaded.append(path) or load_codes(path))
    changed = runner.add_curves(repo_root=tmp_path, log=messages.append)
    assert len(changed) == 7
    # Each trained cell's two dumps are read once, for its curves and its tie-averaged mAP together.
    assert len(loaded) == len(set(loaded)) == 2 * 5
    assert any("dsh_cifar10_32bits_seed0_cifar10-cpu" in message and "run folders are gone" in message
               for message in messages)
    by_name = {path.name: json.loads(path.read_text()) for path in paths}
    assert "curves" not in by_name["dsh_cifar10_32bits_seed0_cifar10-cpu.json"]
    copied = by_name["saeh_cifar10_32bits_gamma0_seed0_cifar10-cpu.json"]
    assert copied["curves"] == by_name["saeh-minus_cifar10_32bits_seed0_cifar10-cpu.json"]["curves"]
    # The tie-averaged mAP (the fake runs' scores.json lacks it, as runs before session 17 did): from the codes.
    trained = by_name["saeh-minus_cifar10_32bits_seed0_cifar10-cpu.json"]["scores"]
    query, database = fake_codes(10, 10), fake_codes(50, 50)
    pair = (query.hash_bin, database.hash_bin, query.label, database.label)
    assert trained["map_ties_averaged@1000"] == pytest.approx(map_at_k(*pair, k=50, ties="average"), abs=1e-12)
    assert trained["map_ties_averaged@all"] == pytest.approx(map_at_k(*pair, k=50, ties="average"), abs=1e-12)
    assert trained["map_ties_averaged@1000"] != pytest.approx(trained["map@1000"], abs=1e-6)  # 8 bits: many ties
    assert copied["scores"]["map_ties_averaged@1000"] == trained["map_ties_averaged@1000"]
    assert "map_ties_averaged@1000" not in by_name["dsh_cifar10_32bits_seed0_cifar10-cpu.json"]["scores"]
    assert runner.add_curves(repo_root=tmp_path, log=quiet) == []


def test_finished_cells_are_skipped_and_a_scored_run_folder_is_collected(tmp_path):
    fake, _ = run_fake(tmp_path, "original-cifar10")
    first = tmp_path / "results" / "original-cifar10" / "saeh_cifar10_32bits_original_seed0_cifar10-cpu.json"
    first.unlink()  # as if the runner was killed between the scores and the result file
    again, written = run_fake(tmp_path, "original-cifar10")
    assert again.calls == [] and written == [str(first)]
    record = json.loads(first.read_text())
    assert record["resumed"] is True and record["wall_seconds"] == 1.5  # the run's own time, from scores.json
    assert record["cpu_seconds"] is None  # not measured by this call
    assert run_fake(tmp_path, "original-cifar10")[0].calls == []


def test_a_failed_cell_stops_the_run_and_writes_nothing(tmp_path):
    with pytest.raises(SaehError, match="cell saeh_cifar10_32bits_original_seed0_cifar10-cpu failed .exit status 3"):
        run_fake(tmp_path, "original-cifar10", fake=FakeTraining(status=3))
    assert not (tmp_path / "results").exists()


def test_gamma_0_and_1_reuse_table1s_saeh_minus_and_saeh(tmp_path):
    run_fake(tmp_path, "table1-cifar10", seeds=(0, 1))
    fake, _ = run_fake(tmp_path, "table2-gamma", seeds=(0, 1))
    assert sorted(flag(argv, "--gamma") for argv in fake.calls) == ["0.01", "0.01", "0.1", "0.1", "10", "10"]
    results = tmp_path / "results"
    for gamma, method in (("0", "saeh-minus"), ("1", "saeh")):
        record = json.loads((results / "table2-gamma" / f"saeh_cifar10_32bits_gamma{gamma}_seed1_cifar10-cpu.json")
                            .read_text())
        source = f"{method}_cifar10_32bits_seed1_cifar10-cpu.json"
        assert record["reused_from"] == os.path.join("results", "table1-cifar10", source)
        assert record["scores"] == json.loads((results / "table1-cifar10" / source).read_text())["scores"]
        assert (record["table"], record["method"], record["gamma"]) == ("table2-gamma", "saeh", float(gamma))
    # Without table1's results, gamma 0 trains as SAEH with --gamma 0.
    fake, _ = run_fake(tmp_path / "alone", "table2-gamma")
    assert sorted(flag(argv, "--gamma") for argv in fake.calls) == ["0", "0.01", "0.1", "1", "10"]


def git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def test_commit_commits_each_result_file_on_its_own(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "test")
    (tmp_path / "README.md").write_text("x\n")
    git(tmp_path, "add", "README.md")
    git(tmp_path, "commit", "-q", "-m", "start")
    code_commit = git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "other.txt").write_text("someone else's work\n")
    git(tmp_path, "add", "other.txt")  # staged by someone else: must stay out of the result commits
    run_fake(tmp_path, "original-cifar10", commit=True)
    subjects = git(tmp_path, "log", "--format=%s").splitlines()
    assert subjects == ["results: saeh-minus_cifar10_32bits_dsh_seed0_cifar10-cpu",
                        "results: saeh_cifar10_32bits_dsh_seed0_cifar10-cpu",
                        "results: saeh-minus_cifar10_32bits_original_seed0_cifar10-cpu",
                        "results: saeh_cifar10_32bits_original_seed0_cifar10-cpu", "start"]
    for revision in ("HEAD", "HEAD~1", "HEAD~2", "HEAD~3"):
        files = git(tmp_path, "show", "--name-only", "--format=", revision).split()
        assert len(files) == 1 and files[0].startswith("results/original-cifar10/")
    assert git(tmp_path, "diff", "--cached", "--name-only").split() == ["other.txt"]
    record = json.loads((tmp_path / "results" / "original-cifar10" /
                         "saeh-minus_cifar10_32bits_original_seed0_cifar10-cpu.json").read_text())
    # The second cell ran after the first one's commit: the code commit is still the one before the results.
    assert record["git"]["commit"] == code_commit and record["git"]["dirty"] is True  # other.txt
    # Results written but not committed (a runner killed in between) are committed by the next run with --commit.
    run_fake(tmp_path, "original-cifar10", seeds=(1,))
    fake, _ = run_fake(tmp_path, "original-cifar10", seeds=(1,), commit=True)
    assert fake.calls == [] and git(tmp_path, "log", "-4", "--format=%s").splitlines() == [
        "results: saeh-minus_cifar10_32bits_dsh_seed1_cifar10-cpu",
        "results: saeh_cifar10_32bits_dsh_seed1_cifar10-cpu",
        "results: saeh-minus_cifar10_32bits_original_seed1_cifar10-cpu",
        "results: saeh_cifar10_32bits_original_seed1_cifar10-cpu"]
    assert git(tmp_path, "status", "--porcelain", "--", "results") == ""


def test_commit_needs_a_repository(tmp_path):
    with pytest.raises(SaehError, match="--commit needs a git repository"):
        run_fake(tmp_path, "original-cifar10", commit=True)


def write_result(root, table, method, seed, map_, precision, gamma=None, preset="cifar10-cpu", wall=60.0,
                 procedure="default", protocol="ssdh", **extra):
    cell = tables.Cell(table, method, "cifar10", 32, gamma, procedure, seed, preset, protocol=protocol)
    record = {"table": table, "cell": cell.id, "method": method, "dataset": "cifar10", "protocol": protocol,
              "procedure": procedure, "bits": 32, "gamma": tables.effective_gamma(cell), "seed": seed,
              "preset": preset, "scores": {"map@1000": map_, "precision@r2": precision, "empty@r2": 0.0},
              "wall_seconds": wall, "resumed": False, "git": {"head": "f" * 40, "commit": "abcdef1234", "dirty": False},
              "machine": {"cpu": "Test CPU", "cpu_count": 2}, "command": "python hash_su_ae_train.py", **extra}
    path = cell.result_path(root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(record, handle)


def hand_made_results(root):
    for seed, saeh, minus in ((0, 0.90, 0.88), (1, 0.91, 0.90), (2, 0.95, 0.91)):
        write_result(root, "table1-cifar10", "saeh", seed, saeh, 0.80)
        write_result(root, "table1-cifar10", "saeh-minus", seed, minus, 0.70)
    write_result(root, "table1-cifar10", "dsh", 0, 0.40, 0.30, wall=120.0)
    for seed, base, tenth in ((0, 0.80, 0.83), (1, 0.82, 0.86)):
        write_result(root, "table2-gamma", "saeh", seed, base, 0.5, gamma=0, reused_from="results/x.json")
        write_result(root, "table2-gamma", "saeh", seed, tenth, 0.6, gamma=0.1)


def test_the_report_gives_means_spreads_and_paired_differences(tmp_path):
    hand_made_results(tmp_path)
    text = report.render_report(records.all_results(tmp_path))
    assert "| SAEH | cifar10 | 32 | 92.00 ± 2.65 | 87.00 | 80.00 ± 0.00 | 0, 1, 2 |" in text
    assert "| SAEH-minus | cifar10 | 32 | 89.67 ± 1.53 | 84.56 | 70.00 ± 0.00 | 0, 1, 2 |" in text
    assert "| DSH | cifar10 | 32 | 40.00 | 40.19 | 30.00 | 0 |" in text
    assert ("| SAEH − SAEH-minus | cifar10 | 32 | +2.33 ± 1.53 (min +1.00, max +4.00) | +10.00 ± 0.00 (min +10.00, "
            "max +10.00) | 3 |") in text
    assert "| SAEH | cifar10 | 32 | 0 | 81.00 ± 1.41 | 84.56 | 50.00 ± 0.00 | 88.16 | 0, 1 |" in text
    assert "| SAEH | cifar10 | 32 | 0.1 | 84.50 ± 2.12 | 87.35 | 60.00 ± 0.00 | 88.90 | 0, 1 |" in text
    assert "| γ = 0.1 − γ = 0 | cifar10 | 32 | +3.50 ± 0.71 (min +3.00, max +4.00) | +10.00 ± 0.00" in text
    # 7 cells of 60 s and one of 120 s; the 2 copied cells of table2 are not timed again.
    assert "7 cells (0 copied from another table's identical run, not timed again); wall time 8.0 min" in text
    assert "4 cells (2 copied from another table's identical run, not timed again); wall time 2.0 min" in text
    assert "CPU: Test CPU (2 cores); commit(s): abcdef1." in text
    assert "stack_num 2 (ResNet-14-like)" in text
    assert ("No results yet for: `table1-mnist`, `original-cifar10`, `bits-cifar10`, `dpsh-protocol-cifar10`, "
            "`ablation-cifar10`.") in text
    saeh_row = text.index("| SAEH | cifar10")
    assert saeh_row < text.index("| SAEH-minus | cifar10") < text.index("| DSH | cifar10")  # the table's own order


def test_the_report_shows_the_tie_averaged_map_where_results_record_it(tmp_path):
    """A column beside mAP and in the paired differences, over the seeds that record it (older results do not)."""
    for seed, saeh, minus in ((0, (0.90, 0.89), (0.88, 0.90)), (1, (0.91, None), (0.90, None))):
        for method, (index_order, averaged) in (("saeh", saeh), ("saeh-minus", minus)):
            write_result(tmp_path, "table1-cifar10", method, seed, index_order, 0.8)
            if averaged is not None:
                path = tables.Cell("table1-cifar10", method, "cifar10", 32, None, "default", seed,
                                   "cifar10-cpu").result_path(tmp_path)
                record = json.loads(open(path).read())
                record["scores"]["map_ties_averaged@1000"] = averaged
                open(path, "w").write(json.dumps(record))
    text = report.render_report(records.all_results(tmp_path))
    assert "| method | data | bits | mAP@1000 (%) | mAP@1000 tie-averaged (%) | paper |" in text
    assert "| SAEH | cifar10 | 32 | 90.50 ± 0.71 | 89.00 (1 of 2) | 87.00 |" in text
    assert "| SAEH-minus | cifar10 | 32 | 89.00 ± 1.41 | 90.00 (1 of 2) | 84.56 |" in text
    assert ("| SAEH − SAEH-minus | cifar10 | 32 | +1.50 ± 0.71 (min +1.00, max +2.00) | -1.00 (1 pair) | "
            "+0.00 ± 0.00") in text
    write_result(tmp_path / "older", "table1-cifar10", "saeh", 0, 0.9, 0.8)
    assert "tie-averaged" not in report.render_report(records.all_results(tmp_path / "older"))


def test_the_report_sets_the_original_procedure_beside_ours_under_the_same_protocol(tmp_path):
    """original-cifar10: each procedure's rows named, SAEH − SAEH⁻ within each procedure, and each method's original
    − default difference paired by seed; the tables with one procedure keep their plain labels."""
    for method, original, ours in (("saeh", 0.70, 0.75), ("saeh-minus", 0.72, 0.74)):
        write_result(tmp_path, "original-cifar10", method, 1, original, 0.60, procedure="original", protocol="dsh")
        write_result(tmp_path, "original-cifar10", method, 1, ours, 0.50, protocol="dsh")
    write_result(tmp_path, "table1-cifar10", "saeh", 1, 0.9, 0.8)
    text = report.render_report(records.all_results(tmp_path))
    assert "| SAEH (original procedure) | cifar10 | 32 | 70.00 | 87.00 | 60.00 | 1 |" in text
    assert "| SAEH-minus (default procedure) | cifar10 | 32 | 74.00 | 84.56 | 50.00 | 1 |" in text
    assert "| SAEH − SAEH-minus (original procedure) | cifar10 | 32 | -2.00 | +0.00 | 1 |" in text
    assert "| SAEH − SAEH-minus (default procedure) | cifar10 | 32 | +1.00 | +0.00 | 1 |" in text
    assert "| SAEH: original − default procedure | cifar10 | 32 | -5.00 | +10.00 | 1 |" in text
    assert "| SAEH-minus: original − default procedure | cifar10 | 32 | -2.00 | +10.00 | 1 |" in text
    assert "| SAEH | cifar10 | 32 | 90.00 | 87.00 | 80.00 | 1 |" in text  # table1-cifar10: one procedure


def test_the_report_says_when_a_method_counts_its_epochs_in_outer_iterations(tmp_path):
    hand_made_results(tmp_path)
    note = "count their epochs in outer iterations over a sample"
    assert note not in report.render_report(records.all_results(tmp_path))
    write_result(tmp_path, "table1-cifar10", "adsh", 0, 0.5, 0.4)
    assert "ADSH counts its epochs in outer iterations over a sample: it trains" in report.render_report(
        records.all_results(tmp_path))
    write_result(tmp_path, "table1-cifar10", "dsah", 0, 0.5, 0.4)
    assert f"ADSH and DSAH {note}: they train" in report.render_report(records.all_results(tmp_path))


def test_the_report_without_results_says_so(tmp_path):
    text = report.render_report(records.all_results(tmp_path))
    assert "No reproduction results yet" in text and "±" not in text
    assert text.startswith(report.BEGIN) and text.endswith(report.END + "\n")


def test_the_report_replaces_only_its_section_and_again_changes_nothing(tmp_path):
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Results\n\nhand-written text\n")
    report.write_report(repo_root=tmp_path, log=quiet)
    first = results_md.read_bytes()
    assert first.startswith(b"# Results\n\nhand-written text\n\n" + report.BEGIN.encode())
    assert b"No reproduction results yet" in first
    hand_made_results(tmp_path)
    results_md.write_text(results_md.read_text() + "\n## Later section\n")
    report.write_report(repo_root=tmp_path, log=quiet)
    second = results_md.read_bytes()
    assert b"92.00 \xc2\xb1 2.65" in second and b"No reproduction results yet" not in second
    assert second.startswith(b"# Results\n\nhand-written text\n\n") and second.endswith(b"\n## Later section\n")
    report.write_report(repo_root=tmp_path, log=quiet)
    assert results_md.read_bytes() == second
    results_md.write_text(report.END + "\n" + report.BEGIN + "\n")
    with pytest.raises(SaehError, match="markers"):
        report.write_report(repo_root=tmp_path, log=quiet)


def test_the_full_report_removes_only_its_own_figures_it_no_longer_draws(tmp_path):
    hand_made_results(tmp_path)
    image = tmp_path / layout.IMAGES
    image.mkdir()
    for name in ("reproduce_pr_cifar10_32bits.png", "retrieval_grid.png"):  # a renamed figure; not the report's
        (image / name).write_bytes(b"old")
    report.write_report(repo_root=tmp_path, tables={"table1-cifar10": tables.TABLES["table1-cifar10"]},
                        log=quiet)
    assert (image / "reproduce_pr_cifar10_32bits.png").exists()  # a part of the tables: other figures untouched
    removed = []
    report.write_report(repo_root=tmp_path, log=removed.append)
    assert sorted(os.listdir(image)) == ["reproduce_table2_gamma.png", "retrieval_grid.png"]
    assert any("removed image/reproduce_pr_cifar10_32bits.png" in line for line in removed)


def test_the_dry_run_lists_cells_commands_and_budget(tmp_path, capsys):
    write_result(tmp_path, "table1-cifar10", "saeh", 0, 0.9, 0.8, wall=600.0, cpu_seconds=1080.0)
    assert cli.main(["run", "table1-cifar10", "--preset", "cifar10-cpu", "--seeds", "0", "1", "--dry-run",
                     "--repo-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[done] saeh_cifar10_32bits_seed0_cifar10-cpu" in out
    assert "[missing] saeh_cifar10_32bits_seed1_cifar10-cpu" in out
    assert "python " in out and "--run-name ksh_cifar10_32bits_seed0_cifar10-cpu" in out
    cells = 9 + len(tables.other_sources_methods())
    assert f"{cells} cells: 1 done" in out and f"{cells - 1} missing" in out
    assert f"budget: about 10.0 min for 1 of the {cells - 1} cells to train" in out
    assert f"no estimate for {cells - 2}" in out
    assert "CPU time: about 18.0 min for the 1 of them with a recorded CPU time" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_two_real_cells_on_mnist_images(tmp_path, mnist_subset):
    """ITQ and SAEH-minus (stack_num 1, one epoch: the tiny preset) through the real training script, on 640
    training and 160 test images of the bundled sample passed as --data-dir."""
    sample = tables.Table("sample", "test table", (tables.Group(("itq", "saeh-minus"), "mnist", (12,)),))
    data_dir = mnist_subset(640, 160)
    written = runner.run_table("sample", preset="tiny", repo_root=tmp_path, tables={"sample": sample}, log=quiet,
                               data_dir=data_dir)
    assert len(written) == 2
    for path in written:
        record = json.loads(open(path).read())
        assert 0 < record["scores"]["map@1000"] <= 1 and record["scores"]["n_query"] == 160
        assert record["run"]["preset"] == "tiny" and record["wall_seconds"] > 0 and record["cpu_seconds"] > 0
        assert record["command"].endswith(f"--data-dir {data_dir} --save-dir runs/reproduce/sample "
                                          f"--run-name {record['cell']} --verbose 2")
    minus = json.loads(open(written[1]).read())
    assert (minus["method"], minus["gamma"], minus["run"]["stack_num"], minus["run"]["epochs"]) == (
        "saeh-minus", 0.0, 1, 1)
    assert os.path.exists(tmp_path / "runs" / "reproduce" / "sample" / minus["cell"] / "model.keras")
    assert runner.run_table("sample", preset="tiny", repo_root=tmp_path, tables={"sample": sample},
                            log=quiet, data_dir=data_dir) == []


def test_bits_select_the_cells_of_those_code_lengths():
    found = tables.cells("table1-mnist", preset="mnist-cpu", methods=["saeh"], bits=[32, 12])
    assert [cell.bits for cell in found] == [12, 32]  # the table's order
    with pytest.raises(SaehError, match="table table1-cifar10 has no code length"):
        tables.cells("table1-cifar10", preset="cifar10-cpu", bits=[12])


def test_gammas_select_the_cells_of_those_recovery_weights():
    found = tables.cells("table2-gamma", preset="cifar10-fast", seeds=[1, 2], gammas=[10, 0.01])
    assert [(cell.gamma, cell.seed) for cell in found] == [(0.01, 1), (0.01, 2), (10.0, 1), (10.0, 2)]
    assert len(tables.cells("table2-gamma", preset="cifar10-fast", seeds=[1])) == 5
    with pytest.raises(SaehError, match="table table2-gamma has no gamma"):
        tables.cells("table2-gamma", preset="cifar10-fast", gammas=[0.5])
    with pytest.raises(SaehError, match="table table1-cifar10 has no gamma.*none"):
        tables.cells("table1-cifar10", preset="cifar10-fast", gammas=[1])


def test_ablations_select_the_cells_without_those_ingredients():
    found = tables.cells("ablation-cifar10", preset="cifar10-fast", ablations=["hash-terms", "full-recipe"])
    assert [(cell.method, cell.ablation) for cell in found] == [("saeh-minus", ()), ("saeh-minus", ("hash-terms",)),
                                                               ("saeh", ()), ("classifier-codes", ())]
    with pytest.raises(SaehError, match="table ablation-cifar10 has no ablation.*whitening"):
        tables.cells("ablation-cifar10", preset="cifar10-fast", ablations=["dropout"])
    with pytest.raises(SaehError, match="table table1-cifar10 has no ablation.*none"):
        tables.cells("table1-cifar10", preset="cifar10-fast", ablations=["lookahead"])


def test_no_train_writes_only_the_cells_that_need_no_training(tmp_path):
    run_fake(tmp_path, "table1-cifar10", methods=["saeh-minus"])
    fake, written = run_fake(tmp_path, "table2-gamma", train=False)
    assert fake.calls == []
    assert [os.path.basename(path) for path in written] == ["saeh_cifar10_32bits_gamma0_seed0_cifar10-cpu.json"]


def test_a_gamma_table_on_another_dataset():
    table = tables.gamma_table("gamma-mnist-sample", "mnist-sample", gammas=(0, 1))
    found = tables.cells(table.name, preset="tiny", tables={table.name: table})
    assert [(cell.method, cell.dataset, cell.bits, cell.gamma, cell.reuse) for cell in found] == [
        ("saeh", "mnist-sample", 32, 0, None), ("saeh", "mnist-sample", 32, 1, None)]
    assert tables.TABLES["table2-gamma"].groups[0].reuse == {0: ("table1-cifar10", "saeh-minus"),
                                                             1: ("table1-cifar10", "saeh")}


def test_the_dpsh_protocol_table_runs_under_that_protocol_and_reports_map_at_all(tmp_path):
    """DPSH under DPSH's protocol, its cells named by it, scored by mAP over the whole database beside its paper's
    numbers; the yardstick rows (SSDH, classifier codes) have no paper's number. ADSH and DSAH are not in it: their
    learned database codes cover their training and validation images only, a small part of this database."""
    fake, written = run_fake(tmp_path, "dpsh-protocol-cifar10")
    assert [flag(argv, "--protocol") for argv in fake.calls] == ["dpsh"] * 6
    assert [flag(argv, "--method") for argv in fake.calls][:4] == ["dpsh"] * 4
    assert [flag(argv, "--method") for argv in fake.calls][-2:] == ["ssdh", "classifier-codes"]
    assert os.path.basename(written[0]) == "dpsh_cifar10_12bits_dpsh_seed0_cifar10-cpu.json"
    text = report.render_report(records.all_results(tmp_path))
    assert "| mAP@all (%) | paper |" in text
    assert "| DPSH | cifar10 | 12 | 31.20 | 71.30 | 40.00 | 0 |" in text
    assert "| ADSH |" not in text and "| DSAH |" not in text
    assert re.search(r"\| SSDH\* \| cifar10 \| 32 \| [0-9.]+ \| – \| [0-9.]+ \| 0 \|", text)
    # A run folder of another protocol is not collected as this cell's.
    cell = tables.cells("dpsh-protocol-cifar10", preset="cifar10-cpu")[0]
    with pytest.raises(SaehError, match="holds a run of other settings"):
        records.check_run_matches(cell, {"method": "dpsh", "which_data": "cifar10", "hash_bits": 12, "seed": 0,
                                         "preset": "cifar10-cpu", "procedure": "default", "protocol": "ssdh"},
                                  "somewhere")


def test_the_ablation_table_trains_each_ingredient_removed_and_copies_the_full_recipe(tmp_path):
    cells = tables.cells("ablation-cifar10", preset="cifar10-fast", seeds=(3, 4))
    minus = [cell for cell in cells if cell.method == "saeh-minus"]
    assert minus[0].id == "saeh-minus_cifar10_32bits_full-recipe_seed3_cifar10-fast"
    assert minus[0].reused_cell().id == "saeh-minus_cifar10_32bits_seed3_cifar10-fast"
    assert [cell.ablation for cell in minus] == [(), *((name,) for name in tables.ABLATED)]
    assert {cell.seed for cell in cells} == {3}  # the first seed only
    assert minus[0].reused_cell().table == "table1-cifar10" and all(cell.reuse is None for cell in minus[1:])
    assert minus[4].id == "saeh-minus_cifar10_32bits_without-lookahead_seed3_cifar10-fast"
    argv = tables.command(minus[4], repo_root=tmp_path)
    assert flag(argv, "--ablate") == "lookahead" and "--ablate" not in tables.command(minus[0], repo_root=tmp_path)
    # The loss's terms are removed by SAEH's own weights, not by --ablate.
    terms = tables.command(minus[-1], repo_root=tmp_path)
    assert minus[-1].id == "saeh-minus_cifar10_32bits_without-hash-terms_seed3_cifar10-fast"
    assert (flag(terms, "--alpha"), flag(terms, "--beta")) == ("0", "0") and "--ablate" not in terms
    # Every recipe ablation names an ingredient the training script knows.
    from saeh import recipes

    assert set(tables.RECIPE_ABLATED) == set(recipes.ABLATIONS)


def test_the_ablation_report_sets_each_run_against_the_full_recipe(tmp_path):
    write_result(tmp_path, "ablation-cifar10", "saeh-minus", 0, 0.85, 0.80, preset="cifar10-fast", ablation=[],
                 reused_from="results/table1-cifar10/x.json",
                 selected_epoch={"epoch": 10, "validation_accuracy": 0.9}, wall=600.0)
    cell = tables.Cell("ablation-cifar10", "saeh-minus", "cifar10", 32, None, "default", 0, "cifar10-fast",
                       ablation=("lookahead",))
    record = {"table": "ablation-cifar10", "cell": cell.id, "method": "saeh-minus", "dataset": "cifar10",
              "protocol": "ssdh", "procedure": "default", "bits": 32, "gamma": 0.0, "seed": 0,
              "preset": "cifar10-fast", "scores": {"map@1000": 0.8325, "precision@r2": 0.7, "empty@r2": 0.0},
              "wall_seconds": 900.0, "resumed": False, "git": {"commit": "abc"}, "machine": {"cpu": "Test CPU",
                                                                                             "cpu_count": 2},
              "ablation": ["lookahead"], "selected_epoch": {"epoch": 10, "validation_accuracy": 0.885}}
    os.makedirs(os.path.dirname(cell.result_path(tmp_path)), exist_ok=True)
    with open(cell.result_path(tmp_path), "w") as handle:
        json.dump(record, handle)
    text = report.render_report(records.all_results(tmp_path))
    assert "| SAEH-minus | nothing (the full recipe) | – | 90.00 | 85.00 | 80.00 | – | 0 | copied |" in text
    assert "| SAEH-minus | lookahead | no Lookahead | 88.50 | 83.25 | 70.00 | -1.75 | 0 | 15.0 min |" in text
    assert text.index("nothing (the full recipe)") < text.index("| SAEH-minus | lookahead")


def test_the_report_shows_the_validation_accuracy_where_the_results_hold_it(tmp_path):
    write_result(tmp_path, "table1-cifar10", "saeh", 0, 0.90, 0.80, preset="cifar10-fast",
                 selected_epoch={"epoch": 9, "validation_accuracy": 0.93})
    write_result(tmp_path, "table1-cifar10", "saeh", 1, 0.92, 0.80, preset="cifar10-fast",
                 selected_epoch={"epoch": 10, "validation_accuracy": 0.91})
    write_result(tmp_path, "table1-cifar10", "saeh", 0, 0.70, 0.60, preset="cifar10-table")
    text = report.render_report(records.all_results(tmp_path))
    assert "| SAEH | cifar10 | 32 | 91.00 ± 1.41 | 87.00 | 80.00 ± 0.00 | 92.00 ± 1.41 | 0, 1 |" in text
    assert "| SAEH | cifar10 | 32 | 70.00 | 87.00 | 60.00 | 0 |" in text  # no accuracy recorded: no column


def test_the_report_marks_rows_trained_before_their_method_s_recipe(tmp_path):
    """A cell that recorded no recipe trained on SAEH's (`original`); where its method now trains with its authors'
    recipe, the row is marked and the mark explained; a cell with today's recipe, or SAEH's own, is not."""
    write_result(tmp_path, "table1-cifar10", "dpsh", 0, 0.48, 0.47, run={"encoder": "resnet_cifar"})
    write_result(tmp_path, "table1-cifar10", "adsh", 0, 0.55, 0.0, run={"encoder": "resnet_cifar", "recipe": "adsh"})
    write_result(tmp_path, "table1-cifar10", "saeh", 0, 0.70, 0.6, run={"encoder": "resnet_cifar"})
    write_result(tmp_path, "table1-cifar10", "dsh", 0, 0.40, 0.3, run={"encoder": "resnet_cifar"})  # SAEH's at 0.01
    text = report.render_report(records.all_results(tmp_path))
    assert "| DPSH † | cifar10 | 32 | 48.00 |" in text
    assert "| ADSH | cifar10 | 32 | 55.00 |" in text and "| SAEH | cifar10 | 32 | 70.00 |" in text
    assert "| DSH | cifar10 | 32 | 40.00 |" in text
    assert "† DPSH: trained with SAEH's recipe before the method's own" in text
