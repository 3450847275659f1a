"""The three scripts end to end on a tiny image folder the test writes: `hash_su_ae_train.py` trains one epoch and
dumps codes, `generate_hash.py` dumps them again from the saved model, the dumps load, `evaluate.py` scores them.

The training run is shared by the whole module (each Keras training costs seconds of tracing); it runs in a
subprocess, as a user runs it. The other scripts run in this process through `runpy` (the real files, without a
second TensorFlow start-up) unless a fresh process is the point.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from saeh.codes import load_codes
from image_folders import write_class_folders
from script_helpers import error_line, run_script, training_call

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, GENERATE, EVALUATE = "hash_su_ae_train.py", "generate_hash.py", "evaluate.py"
CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, SIDE = 3, 24, 6, 16
GRAYSCALE_WARNING = "are grayscale; converted them to RGB"

# The tiny folder holds one grayscale image on purpose; in-process runs would repeat its warning in the summary.
pytestmark = pytest.mark.filterwarnings(f"ignore:.*{GRAYSCALE_WARNING}")


def write_image_folder(root):
    """The module's folder: one grayscale and one RGBA image join the training set (the loader converts both)."""
    return write_class_folders(root, CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, SIDE, gray=True, rgba=True)


def train_arguments(data_dir, save_dir):
    return ["--which-data", "folder", "--data-dir", data_dir, "--save-dir", save_dir, "--stack-num", "1",
            "--hash-bits", "8", "--batch-size", "16", "--epochs", "1"]


def run_subprocess(script, args, cwd):
    """Run a top-level script in a fresh Python, as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(REPO, script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, _, names in os.walk(folder) for name in names)


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`, to show that nothing was changed."""
    result = {}
    for name in files_under(folder):
        with open(os.path.join(folder, name), "rb") as handle:
            result[name] = handle.read()
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of SAEH on the tiny folder, through `python hash_su_ae_train.py` in a subprocess."""
    base = tmp_path_factory.mktemp("cli")
    data_dir = write_image_folder(str(base / "data"))
    save_dir = str(base / "runs")
    args = train_arguments(data_dir, save_dir)
    result = run_subprocess(TRAIN, args, cwd=str(base))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = os.path.join(save_dir, "saeh_data_8bits")
    return {"base": str(base), "data_dir": data_dir, "save_dir": save_dir, "args": args, "run_dir": run_dir,
            "model": os.path.join(run_dir, "model.keras"), "codes": os.path.join(run_dir, "codes"),
            "out": result.stdout, "err": result.stderr}


def test_training_writes_a_complete_run(trained):
    run_dir = trained["run_dir"]
    for name in ("run.json", "history.json", "history.csv", "model.keras", "checkpoints/last.keras",
                 "scores.json", "codes/query.mat", "codes/query.npz",
                 "codes/database.mat", "codes/database.npz"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert [name for name in os.listdir(os.path.join(run_dir, "checkpoints")) if name.startswith("best")] == [
        "best-epoch-1.weights.h5"]
    assert not [name for name in files_under(run_dir) if ".tmp-" in name]
    with open(os.path.join(run_dir, "history.json")) as handle:
        history = json.load(handle)
    assert [row["epoch"] for row in history["epochs"]] == [1]
    for term in ("y_predict_loss", "y_decoded_loss", "hash_x_binary", "hash_x_balance", "learning_rate"):
        assert term in history["epochs"][0], term
    assert "map@1000 = " in trained["out"] and "precision@r2 = " in trained["out"]
    assert "Traceback" not in trained["err"]


def test_training_into_a_file_writes_one_line_per_epoch(trained):
    """Off a terminal (output captured or redirected) the default is one line per epoch: no progress bar, none of
    its backspaces."""
    assert "\b" not in trained["out"] and "\r" not in trained["out"]
    # TensorFlow's C++ notices (oneDNN's first int32 transpose prints one at error level, mid-training) stay held back.
    assert not [line for line in trained["err"].splitlines() if re.match(r"^[IWE]0000 ", line)], trained["err"]
    epoch_lines = [line for line in trained["out"].splitlines() if re.match(r"^\d+/\d+ - ", line)]
    assert len(epoch_lines) == 1, trained["out"][-2000:]
    # One grayscale image among RGB ones: converted, and said once; the RGBA image is read as RGB, said once too.
    assert trained["err"].count(GRAYSCALE_WARNING) == 1, trained["err"]
    assert "gray.png" in trained["err"]
    assert trained["err"].count("have an alpha (transparency) channel") == 1, trained["err"]


def test_codes_load_with_the_original_fields(trained):
    for name, count in (("query", CLASSES * TEST_PER_CLASS), ("database", CLASSES * TRAIN_PER_CLASS + 2)):
        mat = load_codes(os.path.join(trained["codes"], f"{name}.mat"))
        npz = load_codes(os.path.join(trained["codes"], f"{name}.npz"))
        assert mat.hash_bin.shape == (count, 8) and mat.hash_bin.dtype == np.uint8
        assert mat.hash_org.dtype == np.float32 and mat.label.shape == (count,)
        np.testing.assert_array_equal(mat.hash_bin, (mat.hash_org > 0.5).astype(np.uint8))
        np.testing.assert_array_equal(mat.hash_bin, npz.hash_bin)
        np.testing.assert_array_equal(mat.hash_org, npz.hash_org)
        np.testing.assert_array_equal(mat.label, npz.label)
        assert set(np.unique(mat.label)) == set(range(CLASSES))


def test_generate_hash_dumps_the_codes_the_training_wrote(trained, tmp_path):
    out = str(tmp_path / "codes")
    result = run_subprocess(GENERATE, ["--load-path", trained["model"], "--out", out], cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote query codes (18 x 8 bits)" in result.stdout
    assert sorted(os.listdir(out)) == ["database.mat", "database.npz", "query.mat", "query.npz"]
    for name in ("query", "database"):
        again = load_codes(os.path.join(out, f"{name}.mat"))
        first = load_codes(os.path.join(trained["codes"], f"{name}.npz"))
        np.testing.assert_array_equal(again.hash_bin, first.hash_bin)
        np.testing.assert_array_equal(again.label, first.label)
        np.testing.assert_allclose(again.hash_org, first.hash_org, atol=1e-6)


def test_evaluate_scores_the_dumps_as_the_training_did(trained, tmp_path, monkeypatch, capsys):
    query, database = (os.path.join(trained["codes"], f"{name}.npz") for name in ("query", "database"))
    summary = str(tmp_path / "summary.json")
    code, out, err = run_script(EVALUATE, ["--query", query, "--database", database, "--json", summary],
                                monkeypatch, capsys)
    assert code == 0, err
    assert "precision@r2" in out
    with open(summary) as handle:
        (record,) = json.load(handle)["runs"]
    with open(os.path.join(trained["run_dir"], "scores.json")) as handle:
        scores = json.load(handle)
    # 72 + 2 database images < 1000: mAP@1000 ranks the whole database.
    assert record["metrics"]["map@all"] == pytest.approx(scores["map@1000"], abs=1e-9)
    assert record["metrics"]["precision@r2"] == pytest.approx(scores["precision@r2"], abs=1e-9)
    for name in ("map_ties_averaged@all", "map_ties_averaged@1000"):  # the same here: the whole database
        assert record["metrics"]["map_ties_averaged@all"] == pytest.approx(scores[name], abs=1e-9)
    # Existing results are kept unless --overwrite is given.
    before = snapshot(str(tmp_path))
    code, out, err = run_script(EVALUATE, ["--query", query, "--database", database, "--json", summary],
                                monkeypatch, capsys)
    assert code == 2 and f"{summary} already exists; pass --overwrite" in error_line(err, EVALUATE)
    assert snapshot(str(tmp_path)) == before


def test_same_seed_gives_the_same_codes(trained, tmp_path, monkeypatch, capsys):
    """A second run of the same command (here in this process, the first in a fresh one) gives identical codes on
    a CPU, without --deterministic."""
    args = train_arguments(trained["data_dir"], str(tmp_path / "again"))
    code, out, err = run_script(TRAIN, args, monkeypatch, capsys)
    assert code == 0, err
    for name in ("query", "database"):
        first = load_codes(os.path.join(trained["codes"], f"{name}.npz"))
        second = load_codes(str(tmp_path / "again" / "saeh_data_8bits" / "codes" / f"{name}.npz"))
        assert 0 < first.hash_bin.mean() < 1  # real codes, not a constant that would match anyway
        np.testing.assert_array_equal(first.hash_bin, second.hash_bin)
        np.testing.assert_array_equal(first.hash_org, second.hash_org)


def test_finished_run_is_not_overwritten(trained, monkeypatch, capsys):
    before = snapshot(trained["run_dir"])
    code, out, err = run_script(TRAIN, trained["args"], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, TRAIN)
    assert f"{trained['run_dir']} already holds a finished run" in line and "--overwrite" in line
    assert snapshot(trained["run_dir"]) == before


def test_a_run_killed_before_its_scores_is_finished_by_the_same_command(trained, tmp_path, monkeypatch, capsys):
    """A kill after model.keras but before the codes and scores (encoding a large database takes minutes): the same
    command dumps and scores the trained model instead of refusing the run or training again."""
    import shutil

    save_dir = tmp_path / "runs"
    shutil.copytree(trained["save_dir"], save_dir)
    run_dir = save_dir / "saeh_data_8bits"
    shutil.rmtree(run_dir / "codes")
    os.remove(run_dir / "scores.json")
    model_before = (run_dir / "model.keras").read_bytes()
    args = train_arguments(trained["data_dir"], str(save_dir))
    code, out, err = run_script(TRAIN, args, monkeypatch, capsys)
    assert code == 0, err
    assert "already holds a finished run of these settings; using its model.keras" in out
    assert "Epoch 1/1" not in out  # not trained again
    assert (run_dir / "model.keras").read_bytes() == model_before
    with open(run_dir / "scores.json") as handle, open(os.path.join(trained["run_dir"], "scores.json")) as original:
        scores, expected = json.load(handle), json.load(original)
    assert scores["map@1000"] == expected["map@1000"]
    for name in ("query", "database"):
        np.testing.assert_array_equal(load_codes(str(run_dir / "codes" / f"{name}.npz")).hash_bin,
                                      load_codes(os.path.join(trained["codes"], f"{name}.npz")).hash_bin)


@pytest.mark.parametrize("flags, message", [
    (["--top-k", "0"], "--top-k must be a positive integer; got 0"),
    (["--radius", "-1"], "--radius must be a non-negative integer; got -1"),
])
def test_scoring_flags_are_checked_before_training(trained, tmp_path, monkeypatch, capsys, flags, message):
    args = train_arguments(trained["data_dir"], str(tmp_path / "runs"))
    code, out, err = run_script(TRAIN, [*args, *flags], monkeypatch, capsys)
    assert code == 2 and message in error_line(err, TRAIN)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("method, flags", [
    ("dsh", ["--set", "margin=12"]),
    ("itq", ["--epochs", "3"]),
])
def test_a_baseline_trains_through_the_script_into_the_same_dump(trained, tmp_path, monkeypatch, capsys, method,
                                                                   flags):
    """Any registered method runs through hash_su_ae_train.py and writes the dump generate_hash.py writes; DSH's
    linear code layer is binarised at 0; a flag a shallow method does not use is named, not silently dropped."""
    args = train_arguments(trained["data_dir"], str(tmp_path / "runs"))
    code, out, err = run_script(TRAIN, [*args, "--method", method, *flags], monkeypatch, capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / f"{method}_data_8bits"
    with open(run_dir / "run.json") as handle:
        assert json.load(handle)["method"] == method
    query = load_codes(str(run_dir / "codes" / "query.mat"))
    assert query.hash_bin.shape == (CLASSES * TEST_PER_CLASS, 8) and query.hash_bin.dtype == np.uint8
    if method == "dsh":
        with open(run_dir / "run.json") as handle:  # its own alpha (0.01), not SAEH's (0.1)
            assert json.load(handle)["hyperparameters"] == {"margin": 12, "alpha": 0.01}
        np.testing.assert_array_equal(query.hash_bin, (query.hash_org > 0).astype(np.uint8))
        assert (query.hash_org < 0).any()  # real-valued outputs around 0, not sigmoid outputs
    else:
        note = next(line for line in out.splitlines() if line.startswith("note: "))
        assert note.startswith("note: itq is not trained by the Keras loop and ignores ") and "--epochs" in note
    assert "map@1000 = " in out


def test_a_flag_for_another_method_is_refused(trained, tmp_path, monkeypatch, capsys):
    args = train_arguments(trained["data_dir"], str(tmp_path / "runs"))
    code, out, err = run_script(TRAIN, [*args, "--method", "dsh", "--alpha", "0.2"], monkeypatch, capsys)
    assert code == 2 and "--alpha is a weight of SAEH; method 'dsh' takes alpha, margin" in error_line(err, TRAIN)
    code, out, err = run_script(TRAIN, [*args, "--method", "dsh", "--features", trained["model"]], monkeypatch,
                                capsys)
    assert code == 2 and "--features is for the shallow methods" in error_line(err, TRAIN)
    assert not (tmp_path / "runs").exists()


def test_generate_hash_keeps_existing_dumps(trained, monkeypatch, capsys):
    before = snapshot(trained["codes"])
    code, out, err = run_script(GENERATE, ["--load-path", trained["model"]], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, GENERATE)
    assert os.path.join(trained["codes"], "query.mat") + " already exists; pass --overwrite" in line
    assert snapshot(trained["codes"]) == before


def test_generate_hash_never_mixes_old_and_new_dumps(trained, tmp_path, monkeypatch, capsys):
    """Only the database dumps exist: the query dumps are not written either, so the folder never pairs new query
    codes with an older model's database codes."""
    out = tmp_path / "codes"
    out.mkdir()
    for name in ("database.mat", "database.npz"):
        (out / name).write_bytes(open(os.path.join(trained["codes"], name), "rb").read())
    before = snapshot(str(out))
    code, _, err = run_script(GENERATE, ["--load-path", trained["model"], "--out", str(out)], monkeypatch, capsys)
    assert code == 2
    assert f"{out / 'database.mat'} already exists; pass --overwrite" in error_line(err, GENERATE)
    assert snapshot(str(out)) == before


def test_generate_hash_write_error_leaves_the_old_dumps(trained, tmp_path, monkeypatch, capsys):
    """A full disk while writing a dump: the error names the file and the reason, the old dumps stay whole and no
    temporary file is left."""
    import errno

    import scipy.io

    out = tmp_path / "codes"
    out.mkdir()
    for name, content in snapshot(trained["codes"]).items():
        (out / name).write_bytes(content)
    before = snapshot(str(out))

    def disk_full(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"MATLAB 5.0 MAT-file, trunc")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(scipy.io, "savemat", disk_full)
    code, out_text, err = run_script(GENERATE, ["--load-path", trained["model"], "--out", str(out), "--overwrite"],
                                     monkeypatch, capsys)
    assert code == 2
    line = error_line(err, GENERATE)
    assert f"could not write {out / 'query.mat'}: No space left on device" in line
    assert snapshot(str(out)) == before  # no partial file under a final name, no temporary left


def test_generate_hash_on_images_of_another_shape(trained, tmp_path, monkeypatch, capsys):
    other = tmp_path / "small.npz"
    rng = np.random.default_rng(0)
    np.savez(other, x_train=rng.integers(0, 255, (20, 12, 12), dtype=np.uint8), y_train=np.arange(20) % 2,
             x_test=rng.integers(0, 255, (6, 12, 12), dtype=np.uint8), y_test=np.arange(6) % 2)
    out = tmp_path / "codes"
    code, _, err = run_script(GENERATE, ["--load-path", trained["model"], "--which-data", str(other),
                                         "--out", str(out)], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, GENERATE)
    assert "images of shape (12, 12, 1), but the model expects (16, 16, 3)" in line
    assert not out.exists()


def test_generate_hash_checks_bits_against_the_run(trained, tmp_path, monkeypatch, capsys):
    (tmp_path / "model.keras").write_bytes(open(trained["model"], "rb").read())
    with open(os.path.join(trained["run_dir"], "run.json")) as handle:
        settings = json.load(handle)
    (tmp_path / "run.json").write_text(json.dumps({**settings, "hash_bits": 16}))
    code, _, err = run_script(GENERATE, ["--load-path", str(tmp_path / "model.keras")], monkeypatch, capsys)
    assert code == 2
    assert "has 8 hash bits but its run.json says 16" in error_line(err, GENERATE)
    assert not (tmp_path / "codes").exists()


def test_search_draws_the_top_k_of_a_query(trained, tmp_path, capsys):
    """`python -m saeh.cli.search`: a query-set image and an image file, against the model's database. The results
    it prints are the evaluator's ranking: the k smallest Hamming distances, ties broken by database index."""
    import re

    from PIL import Image

    from saeh.cli.search import main as search
    from saeh.cli.search import read_query_image
    from saeh.inference import encode, hash_threshold, load_hash_model
    from saeh.retrieval import hamming_distances

    def printed_results(out):
        return [(int(index), int(distance)) for index, distance in
                re.findall(r"^ *\d+\. database image (\d+)\b.*? at Hamming distance (\d+)$", out, flags=re.M)]

    def expected_results(query_code, database_codes, k):
        distances = hamming_distances(query_code[None, :], database_codes)[0]
        assert np.array_equal(distances, np.count_nonzero(query_code != database_codes, axis=1))
        ranking = np.argsort(distances, kind="stable")[:k]  # stable: equal distances stay in database order
        return [(int(index), int(distances[index])) for index in ranking]

    grid = str(tmp_path / "grid.png")
    database_dump = os.path.join(trained["codes"], "database.npz")
    database = load_codes(database_dump)
    # The last query (last class) and a k past one class's images: its neighbours are not the first database
    # items, and the top k spans several distances with ties.
    last_query, top_k = CLASSES * TEST_PER_CLASS - 1, TRAIN_PER_CLASS + 6
    assert search(["--model", trained["model"], "--query-index", str(last_query), "--top-k", str(top_k),
                   "--database", database_dump, "--out", grid]) == 0
    out = capsys.readouterr().out
    query_code = load_codes(os.path.join(trained["codes"], "query.npz")).hash_bin[last_query]
    assert printed_results(out) == expected_results(query_code, database.hash_bin, top_k)
    assert f"wrote {grid}" in out
    assert Image.open(grid).size[0] > 100
    image_file = str(tmp_path / "query.png")
    Image.fromarray(np.full((30, 20), 200, np.uint8)).save(image_file)  # grey, another size: converted
    assert search(["--model", trained["model"], "--image", image_file, "--out", str(tmp_path / "g2.png")]) == 0
    model = load_hash_model(trained["model"])
    image_code = encode(model, read_query_image(image_file, tuple(model.input_shape[1:])))[0] > hash_threshold(model)
    assert printed_results(capsys.readouterr().out) == expected_results(image_code.astype(np.uint8),
                                                                        database.hash_bin, 10)  # default --top-k
    from saeh.errors import SaehError

    with pytest.raises(SaehError, match="already exists"):
        search(["--model", trained["model"], "--query-index", "0", "--out", grid])
    with pytest.raises(SaehError, match="--query-index must lie in"):
        search(["--model", trained["model"], "--query-index", "999", "--out", str(tmp_path / "g3.png")])


@pytest.mark.parametrize("flags, warmup", [(["--encoder", "resnet50"], 1.0), (["--encoder", "resnet50", "--epochs",
                                           "1", "--warmup-epochs", "0"], 0.0), ([], 0.0),
                                          (["--warmup-epochs", "0.5"], 0.5)])
def test_the_script_warms_resnet50_up_by_default(flags, warmup, tmp_path, monkeypatch, capsys):
    """The resnet50 encoder trains with a one-epoch warm-up unless told otherwise; the others (the original's
    network) without one unless asked."""
    code, out, _, given = training_call(["--which-data", "mnist-sample", "--epochs", "2", "--save-dir", str(tmp_path),
                                         *flags], monkeypatch, capsys)
    assert code == 0
    assert given["warmup_epochs"] == warmup
    assert ("warm-up over the first 1 epoch(s)" in out) == (flags == ["--encoder", "resnet50"])


@pytest.mark.parametrize("flags, jit_compile", [([], "auto"), (["--jit-compile", "on"], True),
                                                (["--jit-compile", "off"], False)])
def test_the_script_passes_jit_compile_to_training(flags, jit_compile, tmp_path, monkeypatch, capsys):
    """--jit-compile's words reach the library as Keras's values: "auto", True, False."""
    code, _, _, given = training_call(["--which-data", "mnist-sample", "--epochs", "1", "--save-dir", str(tmp_path),
                                       *flags], monkeypatch, capsys)
    assert code == 0
    assert (given["jit_compile"], type(given["jit_compile"])) == (jit_compile, type(jit_compile))
