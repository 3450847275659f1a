"""evaluate.py end to end on small dumps written with saeh.codes.save_codes: table, JSON, PNGs, and clear errors."""

import json

import numpy as np
import pytest

from saeh.cli import run
from saeh.cli.evaluate import main
from saeh.codes import Codes, make_codes, save_codes
from saeh.retrieval import map_at_k, precision_within_radius

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_dump(path, n, bits, seed, multi_label=False, n_classes=4):
    """Codes like a trained model's: outputs near a per-class centre, binarised at 0.5."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(bits).random((n_classes, bits))  # shared by every dump of this length
    classes = rng.integers(0, n_classes, n)
    outputs = np.clip(centres[classes] + rng.normal(0, 0.2, (n, bits)), 0, 1)
    labels = np.eye(n_classes + 1, dtype=np.uint8)[classes] if multi_label else classes
    save_codes(path, make_codes(outputs, labels))
    return str(path)


@pytest.fixture
def dumps(tmp_path):
    return {
        "query": write_dump(tmp_path / "query32.mat", 40, 32, seed=1),
        "database": write_dump(tmp_path / "database32.npz", 300, 32, seed=2),
        "query12": write_dump(tmp_path / "query12.mat", 40, 12, seed=3),
        "database12": write_dump(tmp_path / "database12.npz", 300, 12, seed=4),
    }


def run_cli(argv, capsys):
    code = run(main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_query_and_database_give_table_json_and_figures(dumps, tmp_path, capsys):
    out_dir = tmp_path / "results"
    json_path = tmp_path / "extra" / "summary.json"
    code, out, err = run_cli(
        ["--query", dumps["query"], "--database", dumps["database"], "--out-dir", str(out_dir), "--plots",
         "--json", str(json_path), "--top-k", "100"],
        capsys,
    )
    assert code == 0, err
    for name in ("map@100", "map_ties_averaged@100", "map@all", "precision@r2", "empty@r2", "precision@1",
                 "precision@100"):
        assert name in out
    assert "precision@1000" not in out  # capped at N = 300
    document = json.loads((out_dir / "retrieval.json").read_text())
    assert document == json.loads(json_path.read_text())
    (record,) = document["runs"]
    assert record["query"] == dumps["query"] and record["query_in_database"] is False
    assert record["bits"] == 32 and record["n_query"] == 40 and record["n_database"] == 300
    assert sorted(record["metrics"]) == sorted(
        ["map@100", "map_ties_averaged@100", "map@all", "map_ties_averaged@all", "precision@r2", "recall@r2",
         "empty@r2", "precision_nonempty@r2", "precision@1", "precision@10", "precision@100", "precision@300",
         "recall@1", "recall@10", "recall@100", "recall@300"]
    )
    # The numbers are the library's, computed on the dumps' 0/1 codes.
    from saeh.codes import load_codes

    query, database = load_codes(dumps["query"]), load_codes(dumps["database"])
    args = (query.hash_bin, database.hash_bin, query.label, database.label)
    assert record["metrics"]["map@100"] == pytest.approx(map_at_k(*args, k=100), abs=1e-12)
    assert record["metrics"]["map@all"] == pytest.approx(map_at_k(*args, k="all"), abs=1e-12)
    assert record["metrics"]["precision@r2"] == pytest.approx(precision_within_radius(*args).precision, abs=1e-12)
    assert len(record["curves"]["pr_by_radius"]["precision"]) == 33
    for name in ("pr_by_radius.png", "precision_at_k.png"):
        assert (out_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert not (out_dir / "precision_vs_bits.png").exists()  # one run: no bits figure


def test_one_dump_is_queries_and_database(dumps, capsys, tmp_path):
    argv = [dumps["database"], "--top-k", "all", "--radius", "0", "--json", str(tmp_path / "r.json")]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "each query stays in the database" in out
    (record,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert record["query_in_database"] is True and record["n_query"] == record["n_database"] == 300
    assert "map@300" in record["metrics"] and record["metrics"]["empty@r0"] == 0.0  # each finds itself


def test_several_runs_draw_precision_against_bits(dumps, tmp_path, capsys):
    out_dir = tmp_path / "figures"
    code, out, err = run_cli(
        ["--run", f"SAEH={dumps['query12']},{dumps['database12']}",
         "--run", f"SAEH={dumps['query']},{dumps['database']}",
         "--run", f"self={dumps['database']}", "--out-dir", str(out_dir), "--plots"],
        capsys,
    )
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header == ["SAEH", "12b", "SAEH", "32b", "self", "32b"]
    assert (out_dir / "precision_vs_bits.png").read_bytes()[:8] == PNG_MAGIC
    runs = json.loads((out_dir / "retrieval.json").read_text())["runs"]
    assert [(r["label"], r["bits"], r["query_in_database"]) for r in runs] == [
        ("SAEH", 12, False), ("SAEH", 32, False), ("self", 32, True)
    ]


def test_existing_outputs_need_overwrite(dumps, tmp_path, capsys):
    argv = ["--query", dumps["query"], "--database", dumps["database"], "--out-dir", str(tmp_path / "o"), "--plots"]
    assert run_cli(argv, capsys)[0] == 0
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert run_cli(argv + ["--overwrite"], capsys)[0] == 0


def test_help_says_the_query_stays_in_the_database(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "each query stays in the database" in " ".join(capsys.readouterr().out.split())


@pytest.fixture
def broken(tmp_path):
    rng = np.random.default_rng(0)
    paths = {
        "multi": write_dump(tmp_path / "multi.npz", 30, 32, seed=5, multi_label=True),
        "multi6": str(tmp_path / "multi6.npz"),
        "empty": str(tmp_path / "empty.mat"),
        "text": str(tmp_path / "codes.txt"),
        "no_label": str(tmp_path / "no_label.npz"),
    }
    save_codes(paths["multi6"], make_codes(rng.random((30, 32)), np.eye(6, dtype=np.uint8)[rng.integers(0, 6, 30)]))
    save_codes(paths["empty"], Codes(np.zeros((0, 32), np.float32), np.zeros((0, 32), np.uint8), np.zeros(0, int)))
    (tmp_path / "codes.txt").write_text("0 1 1 0\n")
    np.savez(paths["no_label"], hash_bin=np.zeros((4, 32), np.uint8))
    return paths


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda d, b: ["--query", d["query12"], "--database", d["database"]],
         "has 12-bit codes but database dump {database} has 32-bit codes"),
        (lambda d, b: ["--query", d["query"], "--database", b["multi"]], "(class ids) but database dump"),
        (lambda d, b: ["--query", b["multi"], "--database", b["multi6"]], "multi-hot with 5 classes) but"),
        (lambda d, b: ["--query", b["empty"], "--database", d["database"]], "query dump {empty} holds no codes"),
        (lambda d, b: [b["empty"]], "dump {empty} holds no codes"),
        (lambda d, b: ["--query", d["query"], "--database", b["text"]], "unknown format '.txt'"),
        (lambda d, b: [b["no_label"]], "lacks the field(s) label"),
        (lambda d, b: [d["query"] + ".missing.mat"], "does not exist"),
        (lambda d, b: [d["query"], "--query", d["query"], "--database", d["database"]], "not both"),
        (lambda d, b: ["--query", d["query"]], "--query and --database go together"),
        (lambda d, b: [], "nothing to evaluate"),
        (lambda d, b: [d["query"], "--plots"], "--plots needs --out-dir"),
        (lambda d, b: [d["query"], "--top-k", "0"], "--top-k must be a positive integer or 'all'; got '0'"),
        (lambda d, b: [d["query"], "--radius", "-1"], "--radius must be a non-negative integer"),
        (lambda d, b: ["--run", "nolabel"], "--run expects LABEL=QUERY,DATABASE"),
        (lambda d, b: ["--run", "x=a,b,c"], "--run expects LABEL=QUERY,DATABASE"),
    ],
)
def test_errors_exit_2_with_one_clear_line(dumps, broken, argv, message, capsys):
    code, out, err = run_cli(argv(dumps, broken), capsys)
    assert code == 2
    assert err.count("\n") == 1 and ": error: " in err
    assert message.format(**dumps, **broken) in err, err
