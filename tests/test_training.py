"""The training loop: files of a run, resume at the right epoch and learning rate, refusals, divergence."""

import csv
import json
import os
import re
import shutil
import zipfile

import keras
import numpy as np
import pytest

from saeh import defaults, training
from saeh.errors import SaehError
from saeh.methods import SAEH
from saeh.training.callbacks import CONSTANT_BITS_LOG, CollapseWatch
from saeh.training.checkpoints import completed_epochs
from saeh.training.compiled_model import build_compiled, mixed_precision_policy

from helpers import BRIEF_TRAINING, Crash, CrashAfterEpoch


class RecordLearningRate(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.rates[epoch] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def test_run_files_and_history(separable_split, tmp_path):
    run_dir = str(tmp_path / "run")
    trained = training.train(SAEH, separable_split, 4, run_dir, epochs=2, settings={"which_data": "separable"},
                             **BRIEF_TRAINING)
    for name in ("run.json", "history.json", "history.csv", "model.keras", "checkpoints/last.keras",
                 f"checkpoints/best-epoch-{trained.best_epoch}.weights.h5", "logs"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert not [name for name in os.listdir(run_dir) if name.startswith(".tmp-")]
    # Only the best epoch's weights are kept.
    assert [name for name in os.listdir(os.path.join(run_dir, "checkpoints")) if name.startswith("best")] == [
        f"best-epoch-{trained.best_epoch}.weights.h5"]
    with open(os.path.join(run_dir, "history.json")) as handle:
        history = json.load(handle)
    with open(os.path.join(run_dir, "history.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for term in ("y_predict_loss", "y_decoded_loss", "hash_x_binary", "hash_x_balance", "hash_x_loss",
                 "val_y_predict_accuracy", "learning_rate"):
        assert term in history["epochs"][0], term
        assert float(rows[1][term]) == pytest.approx(history["epochs"][1][term]), term
    assert history["best_epoch"] == trained.best_epoch
    with open(os.path.join(run_dir, "run.json")) as handle:
        assert json.load(handle)["which_data"] == "separable"


class CopyRunAfterEpoch(keras.callbacks.Callback):
    """Copy the run folder to `destination` right after epoch `epoch` (1-based) was checkpointed: the files a crash
    at that moment leaves, while this run goes on uninterrupted."""

    def __init__(self, epoch, source, destination):
        super().__init__()
        self.epoch, self.source, self.destination = epoch, source, destination

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            shutil.copytree(self.source, self.destination)


@pytest.mark.slow
def test_resume_continues_at_the_right_epoch_and_learning_rate(separable_split, tmp_path):
    """A run resumed from what a crash after epoch 2 of 4 leaves runs epochs 3 and 4 only, at their rates, and ends
    where the uninterrupted run does. The crash's files are a copy of the uninterrupted run's folder taken then (one
    training fewer than crashing a second run: crashed runs resume in the tests below)."""
    epochs = 4
    run_dir = str(tmp_path / "resumed")
    uninterrupted = training.train(SAEH, separable_split, 4, str(tmp_path / "whole"), epochs=epochs,
                                   callbacks=[CopyRunAfterEpoch(2, str(tmp_path / "whole"), run_dir)], **BRIEF_TRAINING)
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    assert completed_epochs(os.path.join(run_dir, "checkpoints", "last.keras")) == 2
    rates = RecordLearningRate()
    messages = []
    resumed = training.train(SAEH, separable_split, 4, run_dir, epochs=epochs, callbacks=[rates],
                             **{**BRIEF_TRAINING, "log": messages.append})
    assert sorted(rates.rates) == [2, 3]  # only epochs 3 and 4 were run again
    for epoch, rate in rates.rates.items():
        assert rate == pytest.approx(defaults.learning_rate(epoch, epochs))
    assert any("resuming" in message and "epoch 3" in message for message in messages)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    # Same data order, same optimiser state: the resumed run ends where the uninterrupted one does.
    for a, b in zip(uninterrupted.history, resumed.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)


class RecordBatchLearningRate(keras.callbacks.Callback):
    """The rate each training batch runs at, as {(epoch, batch): rate} (0-based)."""

    def __init__(self):
        super().__init__()
        self.rates, self.epoch = {}, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.rates[self.epoch, batch] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


@pytest.mark.slow
def test_warm_up_ramps_the_rate_linearly_and_resumes_exactly(separable_split, tmp_path):
    """240 images at batch 40 are 6 steps an epoch: a warm-up of 1.5 epochs ramps the rate over steps 1-9 to the
    schedule's rate of the epoch, then leaves it to the schedule; a run resumed after epoch 1 does the same."""
    epochs, run_dir = 2, str(tmp_path / "resumed")
    whole = RecordBatchLearningRate()
    training.train(SAEH, separable_split, 4, str(tmp_path / "whole"), epochs=epochs, warmup_epochs=1.5,
                   callbacks=[whole, CopyRunAfterEpoch(1, str(tmp_path / "whole"), run_dir)], **BRIEF_TRAINING)
    expected = {(epoch, batch): defaults.learning_rate(epoch, epochs) * min(1.0, (6 * epoch + batch + 1) / 9)
                for epoch in range(epochs) for batch in range(6)}
    assert whole.rates == pytest.approx(expected)
    assert whole.rates[0, 0] == pytest.approx(0.1 / 9) and whole.rates[1, 3] == pytest.approx(0.02)
    with open(os.path.join(str(tmp_path / "whole"), "run.json")) as handle:
        assert json.load(handle)["warmup_epochs"] == 1.5
    resumed = RecordBatchLearningRate()
    training.train(SAEH, separable_split, 4, run_dir, epochs=epochs, warmup_epochs=1.5, callbacks=[resumed],
                   **BRIEF_TRAINING)
    assert resumed.rates == pytest.approx({key: rate for key, rate in expected.items() if key[0] == 1})


@pytest.mark.slow
def test_a_run_resumed_under_a_one_device_strategy_drops_weights_newer_than_its_checkpoint(separable_split,
                                                                                              tmp_path):
    """Two properties of one crashed and resumed run (one run: its training is what takes the time):

    - A crash after an epoch's best weights were written but before its last.keras: that epoch is redone, and its
      stale best weights must never become the final model's.
    - On one GPU the loop trains and resumes under OneDeviceStrategy (whose dataset prefetches to the GPU); the same
      code path runs here on the CPU device."""
    import tensorflow as tf

    run_dir = str(tmp_path / "run")
    with pytest.raises(Crash):
        training.train(SAEH, separable_split, 4, run_dir, epochs=2, callbacks=[CrashAfterEpoch(1)],
                       strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), **BRIEF_TRAINING)
    checkpoints = os.path.join(run_dir, "checkpoints")
    with open(os.path.join(checkpoints, "best-epoch-2.weights.h5"), "wb") as handle:
        handle.write(b"weights of an epoch last.keras does not hold")

    class ListCheckpoints(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.names = sorted(os.listdir(checkpoints))

    listing = ListCheckpoints()
    # Resumed under the strategy: the optimiser's state is restored into the strategy's variables.
    resumed = training.train(SAEH, separable_split, 4, run_dir, epochs=2, callbacks=[listing],
                             strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), **BRIEF_TRAINING)
    assert listing.names == ["best-epoch-1.weights.h5", "last.keras"], "the stale best weights were not dropped"
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert sorted(os.listdir(checkpoints)) == [f"best-epoch-{resumed.best_epoch}.weights.h5", "last.keras"]
    assert np.isfinite(resumed.history[1]["loss"]), "no finite loss after resuming under OneDeviceStrategy"
    assert resumed.model.distribute_strategy.__class__.__name__ == "OneDeviceStrategy"


@pytest.fixture(scope="module")
def finished_run(separable_split, tmp_path_factory):
    """A finished one-epoch SAEH run, trained once for the tests that act on a finished run folder; each acts on its
    own copy (`copy_of`)."""
    return training.train(SAEH, separable_split, 4, str(tmp_path_factory.mktemp("finished") / "run"), epochs=1,
                          **BRIEF_TRAINING)


def copy_of(trained, tmp_path):
    """A copy of the run folder of `trained` under `tmp_path`; its path as a str."""
    return shutil.copytree(trained.run_dir, str(tmp_path / "run"))


def test_a_finished_run_is_reused_only_when_asked(separable_split, finished_run, tmp_path):
    run_dir, first = copy_of(finished_run, tmp_path), finished_run
    messages = []
    again = training.train(SAEH, separable_split, 4, run_dir, epochs=1, reuse_finished=True,
                           **{**BRIEF_TRAINING, "log": messages.append})
    assert any("already holds a finished run" in message for message in messages)
    assert again.best_epoch == first.best_epoch and again.history == first.history
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SaehError, match="already holds a finished run"):  # other settings: refused all the same
        training.train(SAEH, separable_split, 4, run_dir, epochs=2, reuse_finished=True, **BRIEF_TRAINING)


class CrashAtTrainingStart(keras.callbacks.Callback):
    """Stop a run where its first epoch would begin: everything `train` does before fitting has been done."""

    def on_train_begin(self, logs=None):
        raise Crash


def test_finished_run_is_not_overwritten(separable_split, finished_run, tmp_path):
    run_dir = copy_of(finished_run, tmp_path)
    with pytest.raises(SaehError, match="--overwrite"):
        training.train(SAEH, separable_split, 4, run_dir, epochs=1, **BRIEF_TRAINING)
    assert os.path.exists(os.path.join(run_dir, "model.keras"))
    # With overwrite the run starts training again (stopped there: a second whole training would prove no more),
    # the finished run's model gone.
    with pytest.raises(Crash):
        training.train(SAEH, separable_split, 4, run_dir, epochs=1, overwrite=True, callbacks=[CrashAtTrainingStart()],
                       **BRIEF_TRAINING)
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))


def test_unfinished_run_with_other_settings_is_refused(separable_split, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(Crash):
        training.train(SAEH, separable_split, 4, run_dir, epochs=2, callbacks=[CrashAfterEpoch(1)], **BRIEF_TRAINING)
    with pytest.raises(SaehError, match="hash_bits: 8 -> 16"):
        training.train(SAEH, separable_split, 4, run_dir, epochs=2, **{**BRIEF_TRAINING, "hash_bits": 16})


def saved_model(path, hash_bits=BRIEF_TRAINING["hash_bits"]):
    """Save SAEH's compiled model for `separable_split` (untrained: the file is what matters, not its weights) as
    the .keras file `path`; returns it as a str."""
    from saeh.methods import ModelSpec

    spec = ModelSpec((16, 16, 1), 4, hash_bits=hash_bits, stack_num=BRIEF_TRAINING["stack_num"])
    model = build_compiled(SAEH, SAEH.resolve(), spec)
    model.optimizer.build(model.trainable_variables)  # with an optimiser state, as a trained model's file has
    model.save(path)
    return str(path)


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"plain text", None])
def test_unreadable_load_path_is_a_clear_error_and_leaves_nothing(separable_split, tmp_path, content):
    path = tmp_path / "bad.keras"
    if content is None:  # a real archive, cut short
        data = open(saved_model(tmp_path / "model.keras"), "rb").read()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    run_dir = tmp_path / "b"
    with pytest.raises(SaehError, match=f"load_path {path} is not a readable .keras model"):
        training.train(SAEH, separable_split, 4, str(run_dir), epochs=1, load_path=str(path), **BRIEF_TRAINING)
    assert not run_dir.exists()


def test_a_model_that_cannot_be_built_leaves_no_run_folder(separable_split, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SaehError, match="unknown encoder"):
        training.train(SAEH, separable_split, 4, str(run_dir), epochs=1, encoder="nonsense", **BRIEF_TRAINING)
    with pytest.raises(SaehError, match="gamma of method .saeh. must be a non-negative number"):
        training.train(SAEH, separable_split, 4, str(run_dir), epochs=1, hyperparameters={"gamma": -1.0},
                       **BRIEF_TRAINING)
    assert not run_dir.exists()


def test_load_path_that_does_not_fit_is_a_clear_error(separable_split, tmp_path):
    eight_bits = saved_model(tmp_path / "model.keras", hash_bits=8)
    with pytest.raises(SaehError, match="does not fit"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "b"), epochs=1, load_path=eight_bits,
                       **{**BRIEF_TRAINING, "hash_bits": 16})


def test_divergence_names_the_epoch_and_the_term(separable_split, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(SaehError, match=r"diverged in epoch 2 .*(loss|hash_x).* became (nan|inf)") as raised:
        training.train(SAEH, separable_split, 4, run_dir, epochs=3, callbacks=[PoisonAfterEpoch(1)], **BRIEF_TRAINING)
    assert "intact" in str(raised.value)
    last = os.path.join(run_dir, "checkpoints", "last.keras")
    assert zipfile.is_zipfile(last)
    kept = keras.models.load_model(last, compile=False)
    assert all(np.isfinite(weights).all() for weights in kept.get_weights())


class PoisonAfterEpoch(keras.callbacks.Callback):
    """Make the weights non-finite after epoch `epoch`, so the next batch's loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            kernel = self.model.get_layer("hash_x").kernel
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))


def test_bad_arguments(separable_split, tmp_path):
    with pytest.raises(SaehError, match="epochs must be a positive integer; got 0"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "a"), epochs=0, **BRIEF_TRAINING)
    with pytest.raises(SaehError, match="batch_size 1000 is larger than the training set"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "b"), epochs=1,
                       **{**BRIEF_TRAINING, "batch_size": 1000})
    with pytest.raises(SaehError, match="no hyperparameter"):
        training.train(SAEH, separable_split, 4, str(tmp_path / "c"), epochs=1, hyperparameters={"margin": 3},
                       **BRIEF_TRAINING)
    for warmup in (-1, 3, float("nan"), "1", True):
        with pytest.raises(SaehError, match=f"warmup_epochs must be a number from 0 to the run's 2 epochs; got "
                                            f"{re.escape(repr(warmup))}"):
            training.train(SAEH, separable_split, 4, str(tmp_path / "d"), epochs=2, warmup_epochs=warmup,
                           **BRIEF_TRAINING)
    assert not os.path.exists(tmp_path / "d")


@pytest.mark.parametrize("mixed_precision, compute", [
    (True, "bfloat16"), pytest.param("mixed_float16", "float16", marks=pytest.mark.slow)])
def test_mixed_precision_trains_and_leaves_the_global_policy_alone(mixed_precision, compute, separable_split,
                                                                     tmp_path):
    # True means bfloat16 on a CPU (this machine), float16 on a GPU.
    policy = keras.config.dtype_policy().name
    trained = training.train(SAEH, separable_split, 4, str(tmp_path / "run"), epochs=1,
                             mixed_precision=mixed_precision, **BRIEF_TRAINING)
    assert keras.config.dtype_policy().name == policy
    assert trained.model.get_layer("encoder_conv0").compute_dtype == compute
    outputs = trained.model(separable_split.query.images[:4].astype("float32") / 255)
    assert all(keras.backend.standardize_dtype(value.dtype) == "float32" for value in outputs.values())
    assert np.isfinite(trained.history[0]["loss"])


def test_selecting_on_the_test_set_is_said(separable_split, tmp_path):
    import dataclasses

    leaky = dataclasses.replace(separable_split, validation=separable_split.query, validation_is_query=True)
    messages = []
    # Said before the first epoch (both runs stop there): the user reads it before training, not after.
    with pytest.raises(Crash):
        training.train(SAEH, leaky, 4, str(tmp_path / "run"), epochs=1, callbacks=[CrashAtTrainingStart()],
                       **{**BRIEF_TRAINING, "log": messages.append})
    assert any("model selection uses the query (test) set as validation" in message for message in messages)
    messages.clear()
    with pytest.raises(Crash):
        training.train(SAEH, separable_split, 4, str(tmp_path / "clean"), epochs=1, callbacks=[CrashAtTrainingStart()],
                       **{**BRIEF_TRAINING, "log": messages.append})
    assert not any("query (test) set" in message for message in messages)


def test_bfloat16_codes_agree_with_float32_on_the_same_weights(separable_split):
    images = np.concatenate([separable_split.query.images, separable_split.train.images[:200]])
    from saeh.methods import ModelSpec

    arguments = dict(hyperparameters=SAEH.resolve(), spec=ModelSpec((16, 16, 1), 4, hash_bits=32, stack_num=1))
    full = build_compiled(SAEH, **arguments)
    full.fit(separable_split.train.images.astype("float32") / 255,
             {"hash_x": np.zeros((240, 4)), "y_predict": np.eye(4)[separable_split.train.labels],
              "y_decoded": separable_split.train.images.astype("float32") / 255}, batch_size=40, epochs=2, verbose=0)
    half = build_compiled(SAEH, mixed_precision="mixed_bfloat16", **arguments)
    half.set_weights(full.get_weights())
    from saeh.inference import encode

    full_codes, half_codes = encode(full, images) > 0.5, encode(half, images) > 0.5
    agreement = (full_codes == half_codes).mean()
    assert agreement >= 0.97, agreement
    with pytest.raises(SaehError, match="mixed_precision must be True, False or one of"):
        mixed_precision_policy("float16")


def test_profile_records_the_steps_asked_for(separable_split, tmp_path):
    """--profile: a TensorBoard profile (an .xplane.pb trace) of a few steps lands under the run's logs/."""
    import glob

    messages = []
    run_dir = str(tmp_path / "run")
    training.train(SAEH, separable_split, 4, run_dir, epochs=1, profile_steps=(2, 3),
                   **{**BRIEF_TRAINING, "log": messages.append})
    assert glob.glob(os.path.join(run_dir, "logs", "train", "plugins", "profile", "*", "*.xplane.pb"))
    assert any("profile of steps 2-3 of epoch 1" in message for message in messages)
    for bad in ((0, 2), (3, 2), (1, 7), ("a", 2), (True, 2)):  # 240 images at batch 40: 6 steps an epoch
        with pytest.raises(SaehError, match="profile steps must be FIRST,LAST"):
            training.train(SAEH, separable_split, 4, str(tmp_path / "bad"), epochs=1, profile_steps=bad,
                           **BRIEF_TRAINING)
    assert not os.path.exists(tmp_path / "bad")


class SaturateHashLayer(keras.callbacks.Callback):
    """During epoch `epoch` (1-based), after every batch, make the hash layer ignore its input: every image then
    gets the same code."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            layer = self.model.get_layer("hash_x")
            layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
            layer.bias.assign(np.linspace(-5, 5, layer.bias.shape[0]).astype(np.float32))


def test_a_few_constant_bits_among_many_codes_are_not_called_a_collapse(separable_split):
    """Class hash centres may agree on a bit (CSQ's Hadamard centres at 10 classes, 32 bits, on 2), so a constant
    bit among many distinct codes is reported as such, not as a collapse."""
    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Flatten()(inputs)
    hash_x = keras.layers.Dense(4, activation="sigmoid", name="hash_x")(features)
    model = keras.Model(inputs, hash_x)
    # Bits 1-3: is quadrant 1, 2 or 3 the bright one (the image's class)? Bit 0: sigmoid(bias 1) for every image.
    quadrants = np.zeros((16, 16, 4), np.float32)
    for quadrant in range(4):
        row, column = divmod(quadrant, 2)
        quadrants[row * 8:(row + 1) * 8, column * 8:(column + 1) * 8, quadrant] = 1.0
    weights = np.zeros((256, 4), np.float32)
    for bit in (1, 2, 3):
        weights[:, bit] = (quadrants[..., bit] - quadrants.sum(axis=-1) / 4).reshape(-1)
    model.get_layer("hash_x").set_weights([weights, np.array([1.0, 0, 0, 0], np.float32)])
    messages, logs = [], {}
    validation = separable_split.validation
    watch = CollapseWatch(validation.images, validation.labels, 0.5, messages.append, class_code_targets=True)
    watch.set_model(model)
    watch.on_train_begin()
    watch.on_epoch_end(0, logs)
    assert logs[CONSTANT_BITS_LOG] == 0.25
    assert len(messages) == 1 and "1 of 4 bits (25%)" in messages[0] and "4 distinct codes" in messages[0]
    assert "collapsed" not in messages[0] and "by design where the classes' target codes agree" in messages[0]
    # A method without class target codes (SAEH) has no design reason for it: the bit is lost.
    plain = CollapseWatch(validation.images, validation.labels, 0.5, messages.append)
    plain.set_model(model)
    plain.on_train_begin()
    messages.clear()
    plain.on_epoch_end(0, {})
    assert "the codes work as 3-bit codes" in messages[0] and "design" not in messages[0]
    assert messages[0].endswith("(see docs/FAULTS.md, 'Constant bits')")
    # Bit 3 constant too: quadrants 0 and 3 now share a code, 3 codes for 4 classes: a collapse.
    model.get_layer("hash_x").set_weights([weights * np.array([1, 1, 1, 0], np.float32), np.array([1.0, 0, 0, 0])])
    messages.clear()
    watch.on_epoch_end(1, logs)
    assert "3 distinct codes for 4 label sets: the codes have collapsed" in messages[0]


def test_only_hash_centre_methods_declare_class_target_codes():
    """The constant-bit warning's "by design" reading is for the methods whose classes train towards fixed codes."""
    from saeh import registry

    declared = {name for name in registry.deep_names() if registry.get(name).class_code_targets}
    assert declared == {"csq", "shc"}


def test_collapsed_codes_are_reported_after_the_epoch(separable_split, tmp_path):
    messages = []
    trained = training.train(SAEH, separable_split, 4, str(tmp_path / "run"), epochs=2,
                             callbacks=[SaturateHashLayer(2)], **{**BRIEF_TRAINING, "log": messages.append})
    warnings = [message for message in messages if message.startswith("warning: epoch")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: epoch 2: 8 of 8 bits (100%) are the same for all "
                                                         "40 validation images; every image has the same code: "
                                                         "the codes have collapsed")
    shares = [row[CONSTANT_BITS_LOG] for row in trained.history]
    assert shares[0] < 1 and shares[1] == 1.0


def test_fit_verbosity_is_a_bar_on_a_terminal_and_a_line_per_epoch_otherwise():
    from saeh.training.loop import fit_verbosity

    class Stream:
        def __init__(self, terminal):
            self.terminal = terminal

        def isatty(self):
            return self.terminal

    assert fit_verbosity("auto", Stream(True)) == 1 and fit_verbosity("auto", Stream(False)) == 2
    assert fit_verbosity(0, Stream(True)) == 0 and fit_verbosity(1, Stream(False)) == 1
