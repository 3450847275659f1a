"""The models shipped in `pretrained/` and `python -m saeh.pretrained`, which cuts them from finished cells."""

import json
import os
import zipfile

import numpy as np
import pytest

from saeh import pretrained
from saeh.errors import SaehError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = pretrained.shipped(REPO)


def quiet(*args, **kwargs):
    pass


def test_the_index_is_rendered_from_the_shipped_folders():
    with open(os.path.join(REPO, pretrained.PRETRAINED, pretrained.INDEX), encoding="utf-8") as handle:
        assert handle.read() == pretrained.render_index(SHIPPED)
    assert SHIPPED, "the repository ships at least one trained model"


@pytest.mark.parametrize("name, record", SHIPPED, ids=[name for name, _ in SHIPPED])
def test_a_shipped_model_is_its_cells_run(name, record):
    from saeh.inference import encode, hash_bits, hash_threshold, load_hash_model

    folder = os.path.join(REPO, pretrained.PRETRAINED, name)
    with open(os.path.join(folder, "scores.json")) as handle:
        assert json.load(handle) == record["scores"]
    with open(os.path.join(folder, "run.json")) as handle:
        settings = json.load(handle)
    assert "data_dir" not in settings and settings["method"] == record["method"]
    assert settings["hash_bits"] == record["bits"] and settings["seed"] == record["seed"]
    assert os.path.getsize(os.path.join(folder, "model.keras")) < 5 * 2 ** 20
    model = load_hash_model(os.path.join(folder, "model.keras"))
    assert hash_bits(model) == record["bits"]
    images = np.random.default_rng(0).integers(0, 256, (6, *model.input_shape[1:]), dtype=np.uint8)
    outputs = encode(model, images)
    assert outputs.shape == (6, record["bits"]) and np.all(np.isfinite(outputs))
    assert hash_threshold(model) == 0.5  # SAEH's sigmoid layer


def fake_cell(root, *, compiled=True):
    """A finished cell with a small SAEH-minus model (stack_num 1, 8 bits, 8x8 grey images) and its result file."""
    import keras

    from saeh.losses import saeh_compile_arguments
    from saeh.models import build_saeh

    run_dir = os.path.join(root, "runs", "reproduce", "t", "cell")
    os.makedirs(run_dir)
    model = build_saeh((8, 8, 1), 2, hash_bits=8, stack_num=1, gamma=0.0)
    if compiled:
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), **saeh_compile_arguments(gamma=0.0))
        images = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
        labels = keras.utils.to_categorical([0, 1, 0, 1], 2)
        model.fit(images, {"hash_x": labels, "y_predict": labels}, epochs=1, verbose=0)
    model.save(os.path.join(run_dir, "model.keras"))
    settings = {"method": "saeh-minus", "which_data": "mnist-sample", "hash_bits": 8, "seed": 3,
                "data_dir": "/somewhere/only/on/the/training/machine"}
    scores = {"map@1000": 0.5, "precision@r2": 0.25, "empty@r2": 0.0, "n_query": 4, "n_database": 8}
    for file_name, content in (("run.json", settings), ("scores.json", scores)):
        with open(os.path.join(run_dir, file_name), "w") as handle:
            json.dump(content, handle)
    record = {"cell": "cell", "method": "saeh-minus", "dataset": "mnist-sample", "bits": 8, "preset": "tiny",
              "seed": 3, "protocol": "ssdh", "scores": scores, "wall_seconds": 120.0, "command": "python x.py",
              "machine": {"cpu": "Test CPU", "cpu_count": 2}, "run_dir": os.path.relpath(run_dir, root)}
    result = os.path.join(root, "results", "t", "cell.json")
    os.makedirs(os.path.dirname(result))
    with open(result, "w") as handle:
        json.dump(record, handle)
    return model, result


def test_a_resumed_runs_wall_time_is_a_lower_bound():
    record = {"wall_seconds": 5332.7}
    assert pretrained.wall_time(record) == "89 min"
    assert pretrained.wall_time({**record, "resumed": True}) == "at least 89 min (resumed; its last attempt)"


def weight_groups(path):
    """The top-level groups of the weights file inside a `.keras` archive."""
    import io

    import h5py

    with zipfile.ZipFile(path) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            return set(weights.keys())


def test_ship_cuts_a_run_folder_to_what_using_the_model_needs(tmp_path):
    from saeh.inference import encode, load_hash_model

    model, result = fake_cell(str(tmp_path))
    folder = pretrained.ship(result, "tiny_model", repo_root=str(tmp_path), log=quiet)
    assert sorted(os.listdir(folder)) == ["model.keras", "result.json", "run.json", "scores.json"]
    original = os.path.join(tmp_path, "runs", "reproduce", "t", "cell", "model.keras")
    assert "optimizer" in weight_groups(original)
    assert "optimizer" not in weight_groups(os.path.join(folder, "model.keras"))  # no optimiser state carried over
    assert os.path.getsize(os.path.join(folder, "model.keras")) < os.path.getsize(original)
    images = np.random.default_rng(2).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    shipped_model = load_hash_model(os.path.join(folder, "model.keras"))
    np.testing.assert_allclose(encode(shipped_model, images), encode(model, images), rtol=1e-6, atol=1e-6)
    with open(os.path.join(folder, "run.json")) as handle:
        assert "data_dir" not in json.load(handle)
    assert pretrained.shipped(str(tmp_path))[0][0] == "tiny_model"
    index = (tmp_path / "pretrained" / "README.md").read_text()
    assert ("| `tiny_model` | saeh-minus | mnist-sample | 8 | tiny | 3 | 50.00 | 25.00 | ssdh | 4 × 8 | Test CPU (2 "
            "cores) | 2 min |") in index
    with pytest.raises(SaehError, match="already exists; pass --overwrite"):
        pretrained.ship(result, "tiny_model", repo_root=str(tmp_path), log=quiet)
    pretrained.ship(result, "tiny_model", repo_root=str(tmp_path), overwrite=True, log=quiet)


def test_ship_refuses_what_it_cannot_ship(tmp_path):
    _, result = fake_cell(str(tmp_path), compiled=False)
    with pytest.raises(SaehError, match="--name must be lower-case"):
        pretrained.ship(result, "Bad Name", repo_root=str(tmp_path), log=quiet)
    with pytest.raises(SaehError, match="does not exist"):
        pretrained.ship(str(tmp_path / "nothing.json"), "x", repo_root=str(tmp_path), log=quiet)
    record = json.loads(open(result).read())
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps({**record, "reused_from": "results/t/cell.json"}))
    with pytest.raises(SaehError, match="is a copy of results/t/cell.json"):
        pretrained.ship(str(copy), "x", repo_root=str(tmp_path), log=quiet)
    os.remove(os.path.join(tmp_path, record["run_dir"], "model.keras"))
    with pytest.raises(SaehError, match="holds no model.keras"):
        pretrained.ship(result, "x", repo_root=str(tmp_path), log=quiet)


MNIST_MODELS = [(name, record) for name, record in SHIPPED if record["dataset"] == "mnist"]


@pytest.mark.parametrize("name, record", MNIST_MODELS, ids=[name for name, _ in MNIST_MODELS])
def test_an_mnist_model_dumps_searches_and_scores_on_the_bundled_sample(name, record, tmp_path, monkeypatch,
                                                                         capsys):
    """Out of the box: generate_hash.py and search on the shipped model, the data flags pointing at the bundled
    MNIST sample (the same digits as full MNIST, offline)."""
    from saeh.cli.search import main as search
    from script_helpers import run_script

    model = os.path.join(REPO, pretrained.PRETRAINED, name, "model.keras")
    code, out, err = run_script("generate_hash.py", ["--load-path", model, "--which-data", "mnist-sample",
                                                     "--out", str(tmp_path / "codes")], monkeypatch, capsys)
    assert code == 0, err
    code, out, err = run_script("evaluate.py", ["--query", str(tmp_path / "codes" / "query.npz"), "--database",
                                                str(tmp_path / "codes" / "database.npz"), "--json",
                                                str(tmp_path / "scores.json")], monkeypatch, capsys)
    assert code == 0, err
    scores = json.loads((tmp_path / "scores.json").read_text())
    # The sample's digits are full MNIST's (its queries among the test images the model was scored on).
    assert scores["runs"][0]["metrics"]["map@1000"] > 0.9
    assert search(["--model", model, "--which-data", "mnist-sample", "--query-index", "0", "--top-k", "5",
                   "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")
