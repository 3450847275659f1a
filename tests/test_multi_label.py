"""Multi-hot labels through the training script: the test writes a tiny `list` dataset (PNG files, `train.txt` and
`test.txt` with multi-hot rows, NUS-WIDE/COCO style), runs `hash_su_ae_train.py`'s main in this process for SAEH
and for SSDH (both choose their best epoch by the classifier's validation accuracy), and reads what the run left:
the history, the code dumps and the scores."""

import json
import os

import numpy as np
import pytest

from saeh.cli import train
from saeh.codes import load_codes

CLASS_NAMES = ("sky", "water", "person", "animal")
BITS = 8
EPOCHS = 2
DATASET = "tags"  # the data folder's name, which names the run: <method>_tags_8bits


def write_list_dataset(root, image_sets):
    """`root/images/<list>-<i>.png` and `root/<list>` lines 'images/<list>-<i>.png 0 1 1 0' for each (list file name,
    ImageSet) of `image_sets`, plus classes.txt."""
    from PIL import Image

    os.makedirs(os.path.join(root, "images"))
    for list_name, image_set in image_sets.items():
        lines = []
        for index, (image, labels) in enumerate(zip(image_set.images, image_set.labels)):
            relative = f"images/{os.path.splitext(list_name)[0]}-{index:03d}.png"
            Image.fromarray(image[..., 0], mode="L").save(os.path.join(root, relative))
            lines.append(f"{relative} {' '.join(str(label) for label in labels)}")
        with open(os.path.join(root, list_name), "w") as handle:
            handle.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "classes.txt"), "w") as handle:
        handle.write("\n".join(CLASS_NAMES) + "\n")
    return root


@pytest.fixture(scope="module")
def list_dataset(tmp_path_factory, multi_hot_split):
    """The multi-hot images of tests/conftest.py as files: its database (all 280 training images) as train.txt,
    its 40 queries as test.txt, so that the script's ssdh split has the same query and database sets."""
    root = str(tmp_path_factory.mktemp("multi_label") / DATASET)
    return write_list_dataset(root, {"train.txt": multi_hot_split.database, "test.txt": multi_hot_split.query})


# SSDH in the slow lane: the script's multi-hot path is the same for every method (SAEH's run checks it fast).
@pytest.mark.parametrize("method", ["saeh", pytest.param("ssdh", marks=pytest.mark.slow)])
def test_training_script_on_multi_hot_labels(method, list_dataset, multi_hot_split, tmp_path, capsys):
    save_dir = str(tmp_path / "runs")
    status = train.main(["--which-data", "list", "--data-dir", list_dataset, "--method", method, "--stack-num", "1",
                         "--epochs", str(EPOCHS), "--hash-bits", str(BITS), "--batch-size", "32",
                         "--save-dir", save_dir, "--verbose", "0"])
    printed = capsys.readouterr().out
    assert status == 0
    run_dir = os.path.join(save_dir, f"{method}_{DATASET}_{BITS}bits")

    with open(os.path.join(run_dir, "history.json")) as handle:
        history = json.load(handle)
    assert (history["monitor"], history["mode"]) == ("val_y_predict_accuracy", "max")
    accuracies = [row["val_y_predict_accuracy"] for row in history["epochs"]]
    assert len(accuracies) == EPOCHS and all(0 <= accuracy <= 1 for accuracy in accuracies)
    assert history["best_epoch"] == 1 + int(np.argmax(accuracies))  # the first of equal bests

    for name, image_set in (("query", multi_hot_split.query), ("database", multi_hot_split.database)):
        for suffix in (".mat", ".npz"):
            codes = load_codes(os.path.join(run_dir, "codes", name + suffix))
            assert codes.hash_bin.shape == (len(image_set), BITS) and codes.hash_bin.dtype == np.uint8
            assert codes.label.shape == (len(image_set), len(CLASS_NAMES))
            np.testing.assert_array_equal(codes.label, image_set.labels)

    with open(os.path.join(run_dir, "scores.json")) as handle:
        scores = json.load(handle)
    assert (scores["n_query"], scores["n_database"], scores["bits"]) == (40, 280, BITS)
    assert 0 < scores["map@1000"] <= 1 and 0 <= scores["precision@r2"] <= 1
    assert f"map@1000 = {scores['map@1000']:.4f} precision@r2 = " in printed
