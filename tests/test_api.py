"""The Python API (`saeh.load_model`, `saeh.CodeIndex`, `saeh.evaluate`, `saeh.train`) and search over one's own
images (`python -m saeh.cli.index`, `python -m saeh.cli.search --index`): a model trained from Python works with
the scripts; a folder of images (flat, or class folders) is indexed, saved, loaded and queried with the evaluator's
ranking; code dumps carry ids and paths; the metrics have one name everywhere."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from image_folders import write_class_folders
from script_helpers import REPO, run_script

from saeh.codes import load_codes, make_codes
from saeh.errors import SaehError

CLASSES, SIDE = 3, 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained from Python on an image folder whose images stay in their files (so dumps have paths)."""
    import saeh

    root = tmp_path_factory.mktemp("api")
    data_dir = write_class_folders(root / "data", CLASSES, 16, 4, SIDE, seed=3)
    result = saeh.train(which_data="folder", data_dir=data_dir, stream="on", stack_num=1, epochs=1, batch_size=16,
                        hash_bits=8, save_dir=str(root / "runs"), run_name="tiny", verbose=0)
    return {"result": result, "data_dir": data_dir, "root": root}


def write_flat_folder(folder, count, seed=0):
    """`count` RGB PNGs of another size than the model's, straight in `folder` (no class folders)."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        image = rng.integers(0, 255, (SIDE + 4, SIDE + 2, 3)).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(folder, f"photo{index}.png"))
    return str(folder)


def test_importing_saeh_does_no_work_and_names_the_api():
    code = ("import sys, saeh; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "print(sorted(saeh.__all__))")
    names = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in ("load_model", "HashModel", "CodeIndex", "evaluate", "train", "Codes", "build_saeh"):
        assert f"'{name}'" in names


def test_a_model_trained_from_python_works_with_the_scripts(trained, monkeypatch, capsys):
    """The README's old failure: a model trained from Python was refused by generate_hash.py (its run.json did not
    say which data it was trained on). `saeh.train` runs the training script's code path."""
    result = trained["result"]
    assert set(result.scores) >= {"map@1000", "precision@r2", "map@all"}
    with open(os.path.join(result.run_dir, "run.json")) as handle:
        assert json.load(handle)["which_data"] == "folder"
    code, out, err = run_script("generate_hash.py", ["--load-path", os.path.join(result.run_dir, "model.keras"),
                                                     "--overwrite", "--stream", "off"], monkeypatch, capsys)
    assert code == 0, err
    # Images decoded into memory keep their files' paths too: the dump names them.
    dumped = load_codes(os.path.join(result.run_dir, "codes", "database.npz"))
    assert len(dumped.paths) == len(dumped) and all(os.path.isfile(path) for path in dumped.paths)
    code, out, err = run_script("evaluate.py", [result.run_dir], monkeypatch, capsys)
    assert code == 0, err and "map@1000" in out
    model = result.load_model()
    assert model.method == "saeh" and model.bits == 8 and model.which_data == "folder"


def test_code_dumps_carry_ids_and_paths(trained):
    database = load_codes(os.path.join(trained["result"].run_dir, "codes", "database.npz"))
    np.testing.assert_array_equal(database.ids, np.arange(len(database)))
    assert len(database.paths) == len(database) and all(os.path.isfile(path) for path in database.paths)
    assert database.paths[0].startswith(os.path.join(trained["data_dir"], "train"))
    mat = load_codes(os.path.join(trained["result"].run_dir, "codes", "database.mat"))
    np.testing.assert_array_equal(mat.ids, database.ids)
    assert list(mat.paths) == list(database.paths)


@pytest.mark.parametrize("stream", [True, False], ids=["in-files", "in-memory"])
@pytest.mark.parametrize("protocol", ["ssdh", "dpsh"])
def test_every_set_of_a_split_knows_its_images_files_in_memory_or_not(trained, stream, protocol):
    """The paths follow the rows through the protocol's subsets (and DPSH's pooled train + test), so that a dump's
    paths name the images its codes came from, whether the images were decoded into memory or not."""
    from saeh.data import load_dataset, make_split
    from saeh.data.decoding import decode_image
    from saeh.dumps import with_image_ids

    data = load_dataset("folder", data_dir=trained["data_dir"], stream=stream)
    split = make_split(data, protocol=protocol, seed=0, validation_size=4)
    for name in ("train", "validation", "query", "database"):
        image_set = getattr(split, name)
        assert image_set.paths is not None and len(image_set.paths) == len(image_set), name
        for row in (0, len(image_set) - 1):
            decoded = decode_image(image_set.paths[row])[0]
            np.testing.assert_array_equal(np.asarray(image_set.images[row]).reshape(decoded.shape), decoded)
    dumped = with_image_ids(make_codes(np.zeros((len(split.query), 8)), split.query.labels), split.query)
    assert list(dumped.paths) == list(split.query.paths)


def test_image_set_paths_must_be_one_per_image():
    from saeh.data import ImageSet

    with pytest.raises(SaehError, match=r"paths must be \(N,\) file names with N = 2; got shape \(3,\)"):
        ImageSet(np.zeros((2, 4, 4, 3), np.uint8), np.arange(2), paths=["a", "b", "c"])


def test_an_old_dump_without_ids_still_reads(tmp_path):
    from saeh.codes import save_codes

    codes = make_codes(np.random.default_rng(0).random((5, 8)), np.arange(5) % 2)
    save_codes(tmp_path / "old.npz", codes)
    loaded = load_codes(tmp_path / "old.npz")
    assert loaded.ids is None and loaded.paths is None


def test_load_model_takes_a_run_folder_a_file_or_a_shipped_name(trained):
    import saeh

    run_dir = trained["result"].run_dir
    assert saeh.load_model(run_dir).path == os.path.join(run_dir, "model.keras")
    assert saeh.load_model(os.path.join(run_dir, "model.keras")).identity["which_data"] == "folder"
    shipped = saeh.load_model("pretrained/saeh_mnist_32bits")
    assert shipped.identity["which_data"] == "mnist" and shipped.bits == 32
    with pytest.raises(SaehError, match="neither a run folder.*shipped models are: .*saeh_mnist_32bits"):
        saeh.load_model("no_such_model")


def test_encode_takes_arrays_files_and_folders_alike(trained, tmp_path):
    import saeh
    from saeh.user_images import read_images

    model = trained["result"].load_model()
    flat = write_flat_folder(tmp_path / "flat", 5)
    from_folder = model.encode(flat)
    files = sorted(os.path.join(flat, name) for name in os.listdir(flat))
    from_files = model.encode(files)
    pixels = read_images(files, model.image_shape)
    from_array = model.encode(pixels)
    from_floats = model.encode(pixels / 255.0)
    for codes in (from_files, from_array, from_floats):
        np.testing.assert_array_equal(codes.hash_bin, from_folder.hash_bin)
    assert from_folder.label is None and list(from_folder.paths) == files
    classes = model.encode(os.path.join(trained["data_dir"], "test"))
    np.testing.assert_array_equal(classes.label, np.repeat(np.arange(CLASSES), 4))
    with pytest.raises(SaehError, match="float images must hold pixels scaled to"):
        model.encode(pixels * 1.0)
    assert isinstance(from_folder, saeh.Codes)


def test_an_index_of_a_folder_is_saved_loaded_and_queried_in_the_evaluators_order(trained, tmp_path):
    import saeh
    from saeh.retrieval import HammingIndex

    model = trained["result"].load_model()
    folder = os.path.join(trained["data_dir"], "train")
    index = saeh.CodeIndex.from_images(model, folder)
    assert index.class_names == ("class0", "class1", "class2") and len(index) == CLASSES * 16
    path = index.save(tmp_path / "index.npz")
    with pytest.raises(SaehError, match="already exists"):
        index.save(path)
    loaded = saeh.CodeIndex.load(path)
    np.testing.assert_array_equal(loaded.codes.hash_bin, index.codes.hash_bin)
    assert loaded.model["path"] == os.path.abspath(model.path) and loaded.class_names == index.class_names
    queries = model.encode(os.path.join(trained["data_dir"], "test"))
    found = loaded.query(queries, top_k=7)
    ids, distances = HammingIndex(index.codes.hash_bin).search(queries.hash_bin, 7)
    for row, neighbours in enumerate(found):
        np.testing.assert_array_equal(neighbours.rows, ids[row])
        np.testing.assert_array_equal(neighbours.distances, distances[row])
        assert list(neighbours.paths) == list(index.codes.paths[ids[row]])
    by_image = loaded.query(queries.paths[:1], top_k=7)[0]  # an image file, encoded by the index's model
    np.testing.assert_array_equal(by_image.rows, ids[0])
    within = loaded.query(queries, radius=1)
    assert all(np.all(each.distances <= 1) for each in within)
    assert f"[{index.class_names[found[0].labels[0]]}]" in found[0].lines()[0]
    scores = saeh.evaluate(queries, loaded, top_k=10)
    assert {"map@10", "map@all", "precision@r2", "empty@r2", "precision@10"} <= set(scores["metrics"])


def test_index_and_search_a_flat_folder_from_the_command_line(trained, tmp_path, capsys):
    """A flat folder of one's own photos: indexed once, queried by an image file, results printed with their files
    and drawn. (The data loaders refuse such a folder: it has no train/ folder.)"""
    from saeh.cli.index import main as index
    from saeh.cli.search import main as search

    flat = write_flat_folder(tmp_path / "photos", 6, seed=1)
    out_index = str(tmp_path / "photos.npz")
    assert index(["--model", trained["result"].run_dir, "--images", flat, "--out", out_index]) == 0
    assert "indexed 6 images" in capsys.readouterr().out
    query = os.path.join(flat, "photo2.png")
    grid = str(tmp_path / "grid.png")
    assert search(["--index", out_index, "--image", query, "--top-k", "3", "--out", grid]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"  1. image 2 {query} at Hamming distance 0"
    assert len([line for line in lines if " at Hamming distance " in line]) == 3
    with open(grid, "rb") as handle:
        assert handle.read(4) == b"\x89PNG"


def test_search_uses_the_database_codes_dumped_beside_the_model(trained, tmp_path, monkeypatch, capsys):
    """The dumped codes/database.npz is used, not the database encoded again; the results name files and classes."""
    import saeh.run_codes
    from saeh.cli.search import main as search

    def refuse(*args, **kwargs):
        raise AssertionError("the database was encoded again")

    monkeypatch.setattr(saeh.run_codes, "run_database_codes", refuse)
    model_path = os.path.join(trained["result"].run_dir, "model.keras")
    assert search(["--model", model_path, "--query-index", "0", "--top-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "codes/database.npz (dumped beside the model)" in out
    first = next(line for line in out.splitlines() if line.startswith("  1. database image "))
    assert trained["data_dir"] in first and "[class" in first
    from saeh.cli.index import main as index

    dumped = str(tmp_path / "dumped.npz")
    assert index(["--model", model_path, "--out", dumped]) == 0  # no --images: the dumped codes
    assert len(saeh.CodeIndex.load(dumped)) == len(load_codes(os.path.join(trained["result"].run_dir, "codes",
                                                                          "database.npz")))


def test_metrics_have_one_name_everywhere():
    """evaluate_codes (evaluate.py's table and JSON) names the metrics as scores.json does, each name one word
    (measure@depth: no spaces, so it is one field in a shell, a table or a pandas column)."""
    from saeh.retrieval.report import evaluate_codes, score

    rng = np.random.default_rng(0)
    query = make_codes(rng.random((20, 16)), rng.integers(0, 3, 20))
    database = make_codes(rng.random((50, 16)), rng.integers(0, 3, 50))
    scores = score(query, database, top_k=10)
    metrics = evaluate_codes(query, database, top_k=10)["metrics"]
    for name, value in scores.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12), name
    for name in metrics:
        assert name.count("@") == 1 and not any(character.isspace() for character in name), name


def test_train_refuses_an_unknown_setting_by_name():
    import saeh

    with pytest.raises(SaehError, match="unknown training setting.*hash_bitz.*hash_bits"):
        saeh.train(hash_bitz=8)
