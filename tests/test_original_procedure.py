"""The original script's procedure as one flag (--original), load_path as the original meant it (weights only, the
whole schedule), the run folder as one object (overwrite and recovery agree on a run's files), resume by the
stored epoch count (mixed precision), and validation batches whose statistics mean what they mean in training."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import scipy.io

from saeh import training
from saeh.cli.train import parse_hyperparameter
from saeh.data import ImageSet, pipeline
from saeh.errors import SaehError
from saeh.losses import balance_term
from saeh.methods import SAEH, resolve_hyperparameters
from saeh.run_folder import RunFolder
from saeh.training import run_states
from saeh.training.checkpoints import completed_epochs
from saeh.training.compiled_model import build_compiled

from helpers import BRIEF_TRAINING, Crash, CrashAfterEpoch, separable_images, tiny_split
from script_helpers import error_line, run_script

TRAIN = "hash_su_ae_train.py"
GENERATE = "generate_hash.py"
SMALL = ["--stack-num", "1", "--hash-bits", "8", "--batch-size", "20", "--verbose", "0"]
# SAEH choosing its "best" epoch by the highest learning rate: epoch 1, so that best and last differ.
FIRST_EPOCH_IS_BEST = dataclasses.replace(SAEH, monitor=("learning_rate", "max"))


def weights_of(path, like):
    """The weights a model file holds, read into a clone of `like`."""
    model = keras.models.clone_model(like)
    model.load_weights(path)
    return model.get_weights()


def assert_same_weights(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def differ(first, second):
    return any(not np.array_equal(a, b) for a, b in zip(first, second))


# ---------------------------------------------------------------------------------------------------------------
# Which epoch's weights: best (default) or last (the original)

# "last" in the slow lane: the fast lane keeps the last epoch's weights through the original procedure's run below.
@pytest.mark.parametrize("final_weights", ["best", pytest.param("last", marks=pytest.mark.slow)])
def test_the_model_holds_the_best_or_the_last_epochs_weights(final_weights, separable_split, tmp_path):
    run_dir = str(tmp_path / final_weights)
    trained = training.train(FIRST_EPOCH_IS_BEST, separable_split, 4, run_dir, epochs=3,
                             final_weights=final_weights, **BRIEF_TRAINING)
    folder = RunFolder(run_dir)
    assert trained.best_epoch == 1
    model_weights = weights_of(folder.model, trained.model)
    last = weights_of(folder.last_checkpoint, trained.model)
    best = weights_of(folder.best_weights(1), trained.model)
    assert differ(last, best)
    assert_same_weights(model_weights, best if final_weights == "best" else last)
    assert trained.final_epoch == (1 if final_weights == "best" else 3)
    # The best epoch's weights are kept either way (the original's chk_pt.h5 was a side file too).
    assert os.path.exists(folder.best_weights(1))


def test_final_weights_must_be_best_or_last(separable_split, tmp_path):
    with pytest.raises(SaehError, match="final_weights must be one of best, last; got 'first'"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "run"), epochs=1, final_weights="first",
                       **BRIEF_TRAINING)
    assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------------------------------------------------------
# load_path: weights only, then the whole schedule

class TrainingStart(keras.callbacks.Callback):
    """What the model holds as training begins: its weights, the optimiser's step count and largest momenta."""

    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()
        self.iterations = int(self.model.optimizer.iterations.numpy())
        self.momenta = [np.abs(keras.ops.convert_to_numpy(variable)).max()
                        for variable in self.model.optimizer.variables if "momentum" in variable.path]


@pytest.mark.slow
def test_load_path_starts_the_whole_schedule_from_a_finished_model(separable_split, tmp_path):
    first = training.train(SAEH, separable_split, 4, str(tmp_path / "first"), epochs=1, **BRIEF_TRAINING)
    assert int(keras.models.load_model(first.model_path).optimizer.iterations.numpy()) > 0  # state to ignore

    start = TrainingStart()
    second = training.train(SAEH, separable_split, 4, str(tmp_path / "second"), epochs=3,
                            load_path=first.model_path, callbacks=[start], **BRIEF_TRAINING)
    # A finished model (of one epoch) trains all 3 epochs, not 2 more, from the first rate with a fresh optimiser.
    assert [row["epoch"] for row in second.history] == [1, 2, 3]
    assert [row["learning_rate"] for row in second.history] == [0.1, 0.02, 0.004]
    assert start.iterations == 0
    assert start.momenta and max(start.momenta) == 0
    assert_same_weights(start.weights, weights_of(first.model_path, first.model))


def test_load_path_takes_a_weights_file(separable_split, tmp_path):
    """A .weights.h5 file as training writes its best epoch's (save_weights): training starts from its weights with a
    fresh optimiser. The file is of an untrained model with every weight moved by 0.5 from its initial value, so that
    no initialisation holds them, and an optimiser 5 steps on, a step count to ignore."""
    from saeh.methods import ModelSpec

    spec = ModelSpec((16, 16, 1), 4, hash_bits=BRIEF_TRAINING["hash_bits"], stack_num=BRIEF_TRAINING["stack_num"])
    weights = str(tmp_path / "start.weights.h5")
    model = build_compiled(SAEH, SAEH.resolve(), spec)
    model.optimizer.build(model.trainable_variables)  # with an optimiser state, as training's file has
    model.optimizer.iterations.assign(5)
    fresh = model.get_weights()
    moved = [value + 0.5 for value in fresh]
    model.set_weights(moved)
    model.save_weights(weights)
    start = TrainingStart()
    second = training.train(SAEH, separable_split, 4, str(tmp_path / "second"), epochs=1, load_path=weights,
                            callbacks=[start], **BRIEF_TRAINING)
    assert len(second.history) == 1
    assert_same_weights(start.weights, moved)
    assert start.iterations == 0


def test_load_path_weights_file_that_is_not_hdf5(separable_split, tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(SaehError, match=f"load_path {path} is not a readable weights file: not HDF5"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "run"), epochs=1, load_path=str(path), **BRIEF_TRAINING)
    assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------------------------------------------------------
# Resume by the stored count of completed epochs

class OverflowingLossScale(keras.callbacks.Callback):
    """Start the mixed-precision loss scale so high that the first steps overflow in float16 and are skipped (the
    loss-scale optimiser halves the scale on each), as a real run's first steps can be."""

    def __init__(self):
        super().__init__()
        self.iterations = None

    def on_train_begin(self, logs=None):
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.optimizer.dynamic_scale.assign(2.0 ** 40)

    def on_epoch_end(self, epoch, logs=None):
        self.iterations = int(self.model.optimizer.iterations.numpy())


@pytest.mark.slow
def test_resume_under_mixed_precision_continues_at_the_next_epoch(tmp_path):
    run_dir = str(tmp_path / "run")
    settings = dict(BRIEF_TRAINING, mixed_precision="mixed_float16")  # the loss-scaled policy (a GPU's)
    split = tiny_split(train=2 * settings["batch_size"])  # two steps an epoch (float16 steps are slow on a CPU)
    overflow = OverflowingLossScale()
    with pytest.raises(Crash):
        training.train(SAEH, split, 4, run_dir, epochs=3, callbacks=[overflow, CrashAfterEpoch(2)], **settings)
    # The loss-scale optimiser does not count the steps it skipped: its step counter alone would redo an epoch.
    assert overflow.iterations // 2 < 2
    folder = RunFolder(run_dir)
    assert completed_epochs(folder.last_checkpoint) == 2
    lines = []
    resumed = training.train(SAEH, split, 4, run_dir, epochs=3, **dict(settings, log=lines.append))
    assert any("at epoch 3 " in line for line in lines), lines
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]


@pytest.mark.slow
def test_settings_with_tuples_resume_as_the_same_run(separable_split, tmp_path):
    run_dir = str(tmp_path / "run")
    settings = {"which_data": "separable", "image_size": (16, 16)}
    with pytest.raises(Crash):
        training.train(SAEH, separable_split, 4, run_dir, epochs=2, settings=settings,
                       callbacks=[CrashAfterEpoch(1)], **BRIEF_TRAINING)
    resumed = training.train(SAEH, separable_split, 4, run_dir, epochs=2, settings=settings, **BRIEF_TRAINING)
    assert [row["epoch"] for row in resumed.history] == [1, 2]


@pytest.mark.parametrize("default, text, expected", [("name", "007", "007"), (3, "007", 7), (0.5, "1e-2", 0.01),
                                                     (True, "false", False)])
def test_set_values_are_converted_by_the_method_only(default, text, expected):
    name, value = parse_hyperparameter(f"some-setting={text}")
    assert (name, value) == ("some_setting", text)
    resolved = resolve_hyperparameters("m", {"some_setting": default}, {name: value})["some_setting"]
    assert resolved == expected and type(resolved) is type(expected)


# ---------------------------------------------------------------------------------------------------------------
# One object owns a run folder's files

def test_starting_again_removes_every_file_of_the_old_run_and_nothing_else(tmp_path):
    folder = RunFolder(tmp_path / "run")
    files = [folder.run_file, folder.history, folder.history_csv, folder.model, folder.scores,
             folder.last_checkpoint, folder.best_weights(3), folder.code_path("query"),
             folder.code_path("database", ".mat"), folder.original_dump("cifar10", 32), folder.shallow_model,
             os.path.join(folder.logs, "events"), os.path.join(folder.run_dir, ".tmp-0123abcd-model.keras")]
    for path in files:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("{}")
    mine = tmp_path / "run" / "notes.txt"
    mine.write_text("the user's own file")
    assert run_states.prepare_run_dir(folder.run_dir, {"a": 1}, resume=True, overwrite=True) == run_states.NEW
    assert sorted(os.listdir(folder.run_dir)) == ["notes.txt", "run.json"]
    assert folder.settings() == {"a": 1}


@pytest.mark.slow
def test_overwrite_then_a_kill_before_the_scores_is_recovered_not_refused(tiny_npz, tmp_path, monkeypatch,
                                                                          capsys):
    save_dir = str(tmp_path / "runs")
    args = ["--which-data", tiny_npz, "--save-dir", save_dir, "--epochs", "1", *SMALL]
    assert run_script(TRAIN, args, monkeypatch, capsys)[0] == 0
    folder = RunFolder(os.path.join(save_dir, "saeh_tiny_8bits"))
    assert folder.is_scored()
    # --overwrite trains again; then a kill right after model.keras, before codes and scores.
    from saeh import dumps

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dumps, "dump_run_codes", killed)
    code, _, _ = run_script(TRAIN, [*args, "--overwrite", "--seed", "1"], monkeypatch, capsys)
    assert code == 130 and os.path.exists(folder.model)
    assert not folder.is_scored() and not os.path.exists(folder.codes)
    monkeypatch.undo()
    code, out, err = run_script(TRAIN, [*args, "--seed", "1"], monkeypatch, capsys)
    assert code == 0, err
    assert "already holds a finished run of these settings" in out
    assert folder.is_scored()


# ---------------------------------------------------------------------------------------------------------------
# --original through the scripts

def test_original_run_trains_on_everything_keeps_the_last_epoch_and_dumps_the_test_set(tiny_npz, tmp_path,
                                                                                     monkeypatch, capsys):
    save_dir = str(tmp_path / "runs")
    code, out, err = run_script(TRAIN, ["--which-data", tiny_npz, "--save-dir", save_dir, "--epochs", "2",
                                        "--original", *SMALL], monkeypatch, capsys)
    assert code == 0, err
    folder = RunFolder(os.path.join(save_dir, "saeh_tiny_8bits_original"))
    settings = folder.settings()
    assert (settings["procedure"], settings["protocol"], settings["select_on_test"],
            settings["final_weights"]) == ("original", "dsh", True, "last")
    assert "train 60 (whole training set), validation 15 (the query set itself" in out
    assert "protocol dsh: the 15 test images as queries and as the database" in out
    # Only the test set is dumped, under the original's name and in its types.
    dump = folder.original_dump("tiny", 8)
    assert os.path.basename(dump) == "tiny_hash_8bits_res_testset_su_ae.mat"
    assert not os.path.exists(folder.codes)
    kinds = {name: (shape, kind) for name, shape, kind in scipy.io.whosmat(dump)}
    assert kinds == {"hash_org": ((15, 8), "double"), "hash_bin": ((15, 8), "int64"), "label": ((15, 1), "uint8")}
    raw = scipy.io.loadmat(dump)
    np.testing.assert_array_equal(raw["hash_bin"], (raw["hash_org"] > 0.5).astype(np.int64))
    with np.load(tiny_npz) as data:
        np.testing.assert_array_equal(raw["label"][:, 0], data["y_test"])
    with open(folder.scores) as handle:
        scores = json.load(handle)
    assert (scores["protocol"], scores["procedure"], scores["n_query"], scores["n_database"]) == (
        "dsh", "original", 15, 15)
    # The model is the last epoch's, the very weights of the last checkpoint.
    model = keras.models.load_model(folder.model, compile=False)
    assert_same_weights(model.get_weights(), weights_of(folder.last_checkpoint, model))
    # generate_hash.py on that model writes the same dump, as the original's generate_hash.py did.
    os.rename(dump, dump + ".first")
    code, _, err = run_script(GENERATE, ["--load-path", folder.model], monkeypatch, capsys)
    assert code == 0, err
    again = scipy.io.loadmat(dump)
    for name in ("hash_org", "hash_bin", "label"):
        np.testing.assert_array_equal(again[name], raw[name])
    # evaluate.py on the run folder scores the same dump as the script did.
    code, out, err = run_script("evaluate.py", [folder.run_dir], monkeypatch, capsys)
    assert code == 0, err
    assert "each query stays in the database" in out


@pytest.mark.parametrize("flags, message", [
    (["--protocol", "ssdh"], "--original scores the test set against itself (protocol dsh); got --protocol ssdh"),
    (["--validation-size", "0.2"], "--validation-size does not apply"),
    (["--method", "itq"], "--original is the deep methods' training procedure; 'itq' is not trained by it"),
])
def test_original_refuses_flags_that_would_change_its_procedure(flags, message, tiny_npz, tmp_path, monkeypatch,
                                                                  capsys):
    code, _, err = run_script(TRAIN, ["--which-data", tiny_npz, "--save-dir", str(tmp_path), "--original",
                                      *flags, *SMALL], monkeypatch, capsys)
    assert code == 2
    assert message in error_line(err, TRAIN)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# Validation batches

def class_sorted_set(count=200, classes=4, seed=0):
    images, labels = separable_images(count, classes=classes, seed=seed)
    order = np.argsort(labels, kind="stable")
    return ImageSet(images[order], labels[order])


def test_validation_batch_statistics_on_class_sorted_data_are_training_like(separable_split, tmp_path):
    sorted_set = class_sorted_set(count=600)  # more than a few batches of any size, of one class each in order
    split = dataclasses.replace(separable_split, validation=sorted_set)
    trained = training.train(SAEH, split, 4, str(tmp_path / "run"), epochs=2, final_weights="last", **BRIEF_TRAINING)
    logged = trained.history[-1]["val_hash_x_balance"]
    codes = trained.model.predict(pipeline.image_batches(sorted_set.images, 200), verbose=0)["hash_x"]
    batch = BRIEF_TRAINING["batch_size"]

    def mean_balance(order):
        return np.mean([float(balance_term(codes[order[start:start + batch]]))
                        for start in range(0, len(order), batch)])

    rng = np.random.default_rng(7)
    training_like = np.mean([mean_balance(rng.permutation(len(codes))) for _ in range(50)])
    in_stored_order = mean_balance(np.arange(len(codes)))
    # Stored class by class, one-class batches make the term several times its training value; mixed, it matches.
    assert in_stored_order > 2 * training_like, (in_stored_order, training_like)
    assert logged == pytest.approx(training_like, rel=0.25), (logged, training_like, in_stored_order)


def test_validation_order_is_seeded_and_keeps_targets_with_their_images():
    sorted_set = class_sorted_set(40)
    per_sample = {"label": pipeline.label_matrix(sorted_set.labels, 4)}

    def batches(seed):
        dataset = pipeline.validation_batches(sorted_set.images, per_sample,
                                              lambda images, batch: {"y": batch["label"], "x": images}, 10, seed)
        return [(images.numpy(), targets["y"].numpy()) for images, targets in dataset]

    first, again, other = batches(0), batches(0), batches(1)
    for (images, labels), (images_again, _) in zip(first, again):
        np.testing.assert_array_equal(images, images_again)
        # Every batch mixes classes, and each label is still its own image's.
        assert len(set(labels.argmax(axis=1))) > 1
        for image, label in zip(images, labels):
            pixels = np.round(image * 255).astype(np.uint8)
            row = np.flatnonzero((sorted_set.images == pixels).all(axis=(1, 2, 3)))[0]
            assert sorted_set.labels[row] == label.argmax()
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
