"""List datasets as the field's PyTorch hashing code lays them out (`train.txt`, `test.txt`, `database.txt` with
multi-hot rows, as for NUS-WIDE, MS-COCO and ImageNet-100): every file honoured or refused naming its line. The
tests write small list datasets of PNG images; the last one trains and scores through the training script."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import separable_multi_hot_images
from saeh.data import load_dataset, make_split
from saeh.errors import MissingDataError, SaehError

TRAIN, TEST, DATABASE = 20, 10, 40  # a database twice the training set, which it holds, as NUS-WIDE's does


def write_list_dataset(root, train=TRAIN, test=TEST, database=DATABASE, seed=0):
    """`root/images/<i>.png` (16x16 gray, one bright quadrant per label) and the lists: the first `database` images
    in database.txt, the first `train` of them in train.txt, the next `test` images in test.txt (0: no such file).
    Returns the labels of all images, row i for images/<i>.png."""
    images, labels = separable_multi_hot_images(max(train, database) + test, seed=seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image[..., 0], mode="L").save(os.path.join(root, "images", f"{index}.png"))
    first_test = max(train, database)
    for list_name, rows in (("train.txt", range(train)), ("database.txt", range(database)),
                            ("test.txt", range(first_test, first_test + test))):
        if len(rows):
            lines = [f"images/{row}.png {' '.join(str(label) for label in labels[row])}" for row in rows]
            with open(os.path.join(root, list_name), "w") as handle:
                handle.write("\n".join(lines) + "\n")
    return labels


def test_database_txt_is_the_database_searched(tmp_path):
    labels = write_list_dataset(tmp_path)
    logged = []
    data = load_dataset("list", data_dir=tmp_path, log=logged.append)
    assert (len(data.train), len(data.test), len(data.database)) == (TRAIN, TEST, DATABASE)
    np.testing.assert_array_equal(data.database.labels, labels[:DATABASE])
    np.testing.assert_array_equal(data.train_in_database, np.arange(TRAIN))
    np.testing.assert_array_equal(np.asarray(data.database.images)[:TRAIN], np.asarray(data.train.images))
    assert any("database.txt: the database searched, 40 images as given" in line for line in logged)

    split = make_split(data, protocol="ssdh", seed=0, validation_size=5)
    assert (len(split.train), len(split.validation), len(split.query), len(split.database)) == (15, 5, TEST, DATABASE)
    assert split.database is data.database and split.query is data.test
    # Each training and validation image is where the split says it is in the database.
    for image_set, rows in ((split.train, split.train_in_database), (split.validation, split.validation_in_database)):
        np.testing.assert_array_equal(np.asarray(split.database.images)[rows], np.asarray(image_set.images))
    assert ("validation 5 (carved from the training set), query 10 (test set), "
            "database 40 (the dataset's own database set, as given)") in split.describe()

    streamed = load_dataset("list", data_dir=tmp_path, stream=True)
    np.testing.assert_array_equal(np.asarray(streamed.database.images), np.asarray(data.database.images))
    np.testing.assert_array_equal(np.asarray(streamed.train.images), np.asarray(data.train.images))
    np.testing.assert_array_equal(np.asarray(streamed.test.images), np.asarray(data.test.images))


def test_database_txt_equal_to_train_txt_changes_nothing(tmp_path):
    write_list_dataset(tmp_path / "with", database=TRAIN)
    write_list_dataset(tmp_path / "without", database=0)
    logged = []
    with_database = load_dataset("list", data_dir=tmp_path / "with", log=logged.append)
    without = load_dataset("list", data_dir=tmp_path / "without")
    assert with_database.database is None and any("the training set is the database" in line for line in logged)
    first, second = (make_split(data, seed=3, validation_size=5) for data in (with_database, without))
    for name in ("train", "validation", "query", "database"):
        np.testing.assert_array_equal(getattr(first, name).images, getattr(second, name).images)
    np.testing.assert_array_equal(first.train_in_database, second.train_in_database)
    assert first.describe().replace("with", "without") == second.describe()


@pytest.mark.parametrize("protocol", ["dpsh", "dsh"])
def test_protocols_that_replace_the_database_refuse_a_given_one(tmp_path, protocol):
    write_list_dataset(tmp_path)
    data = load_dataset("list", data_dir=tmp_path)
    with pytest.raises(SaehError, match=rf"own database set \(40 images.*protocol '{protocol}'.*--protocol ssdh"):
        make_split(data, protocol=protocol, seed=0)


BAD_LINES = {
    # what is wrong: (the line written as line 2, the error it must raise)
    "wrong number of labels": ("images/0.png 0 1 0", r"3 label\(s\), but .*train\.txt has 4 per line"),
    "a label that is not 0/1": ("images/0.png 0 2 0 1", r"a multi-hot row must hold only 0 and 1; got '0 2 0 1'"),
    "a missing image": ("images/missing.png 0 1 0 0", r"image .*missing\.png does not exist"),
}


@pytest.mark.parametrize("list_name", ["test.txt", "database.txt"])
@pytest.mark.parametrize("wrong", sorted(BAD_LINES))
def test_a_bad_line_names_its_file_and_line(tmp_path, list_name, wrong):
    write_list_dataset(tmp_path)
    line, message = BAD_LINES[wrong]
    with open(tmp_path / list_name) as handle:
        lines = handle.read().splitlines()
    lines.insert(1, line)
    (tmp_path / list_name).write_text("\n".join(lines) + "\n")
    with pytest.raises(SaehError, match=rf"{list_name}:2: {message}"):
        load_dataset("list", data_dir=tmp_path)


def test_an_image_labelled_differently_in_two_lists_is_refused(tmp_path):
    labels = write_list_dataset(tmp_path)
    lines = (tmp_path / "database.txt").read_text().splitlines()
    lines[3] = "images/3.png " + " ".join(str(1 - label) for label in labels[3])
    (tmp_path / "database.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(SaehError, match=r"train\.txt:4: .*3\.png is labelled .*, but .*database\.txt:4 labels it"):
        load_dataset("list", data_dir=tmp_path)


@pytest.mark.parametrize("missing", ["test.txt", "train.txt"])
def test_a_missing_list_file_is_named(tmp_path, missing):
    write_list_dataset(tmp_path)
    os.remove(tmp_path / missing)
    if missing == "train.txt":
        os.remove(tmp_path / "database.txt")
    with pytest.raises(MissingDataError, match=rf"{missing} does not exist: .* needs the list files test\.txt "
                                                r"\(the queries\) and train\.txt \(the training images\)"):
        load_dataset("list", data_dir=tmp_path)


def test_training_script_searches_database_txt(tmp_path, capsys):
    """The codes dumped and scored are the database.txt images with their multi-hot labels (relevance: a shared
    label, `saeh.retrieval.metrics`)."""
    from saeh.cli import train
    from saeh.codes import load_codes

    root = tmp_path / "tags"
    labels = write_list_dataset(root, train=60, test=20, database=120)
    save_dir = tmp_path / "runs"
    status = train.main(["--which-data", str(root), "--method", "saeh", "--stack-num", "1", "--epochs", "1",
                         "--hash-bits", "8", "--batch-size", "32", "--save-dir", str(save_dir), "--verbose", "0",
                         "--top-k", "50"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "query 20 (test set), database 120 (the dataset's own database set, as given)" in printed
    run_dir = save_dir / "saeh_tags_8bits"
    for name, rows in (("query", range(120, 140)), ("database", range(120))):
        codes = load_codes(str(run_dir / "codes" / f"{name}.npz"))
        np.testing.assert_array_equal(codes.label, labels[rows])
    scores = json.loads((run_dir / "scores.json").read_text())
    assert (scores["n_query"], scores["n_database"]) == (20, 120) and 0 < scores["map@50"] <= 1


def test_an_asymmetric_method_learns_a_given_database_only_when_it_is_the_training_set(tmp_path):
    """ADSH's database codes are the ones it learns, one per training image: a database.txt holding other images
    is refused, naming the cause; one holding the training images in another order maps each to its row."""
    from saeh.registry import get
    from saeh.run_codes import learned_database_rows

    adsh = get("adsh")
    write_list_dataset(tmp_path / "larger")
    split = make_split(load_dataset("list", data_dir=tmp_path / "larger"), seed=0, validation_size=5)
    with pytest.raises(SaehError, match=r"20 of the 40 database images are neither.*own database set"):
        learned_database_rows(adsh, split)

    labels = write_list_dataset(tmp_path / "reordered", database=0)
    lines = [f"images/{row}.png {' '.join(str(label) for label in labels[row])}" for row in reversed(range(TRAIN))]
    (tmp_path / "reordered" / "database.txt").write_text("\n".join(lines) + "\n")
    split = make_split(load_dataset("list", data_dir=tmp_path / "reordered"), seed=0, validation_size=5)
    rows = learned_database_rows(adsh, split)
    np.testing.assert_array_equal(np.sort(rows), np.arange(TRAIN))
    learned_images = np.concatenate([np.asarray(split.train.images), np.asarray(split.validation.images)])
    np.testing.assert_array_equal(np.asarray(split.database.images)[rows], learned_images)
