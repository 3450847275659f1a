"""What makes CSQ and SHC themselves: CSQ's loss against a numpy computation of its formula, each image's target
centre (single-label and the multi-label rule), centres far apart; SHC's classifier stage (created, then reused
without retraining), its semantic centres (minimum distance, fitted to the classifier's class similarity) and its
per-image targets, and its refusal of multi-hot labels."""

import dataclasses
import os

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from baselines import csq, shc
from baselines.hash_centres import class_similarity_from_logits, csq_centres, random_fill, shc_min_distance
from saeh import training
from saeh.data import ImageSet
from saeh.errors import SaehError
from saeh.methods import ModelSpec, TrainingContext
from saeh.run_folder import RunFolder

BITS = 12
CLASSES = 4


def reference_csq_loss(targets, codes, weight):
    """lambda_0 = 1: mean over batch and bits of the BCE of (h + 1) / 2 against 0/1 targets (probabilities clipped
    to [1e-7, 1 - 1e-7]), plus weight * the mean of (|h| - 1)^2; plain loops in float64."""
    central, quantisation, count = 0.0, 0.0, 0
    for target_row, code_row in zip(targets, codes):
        for target, code in zip(target_row, code_row):
            p = min(max((float(code) + 1) / 2, 1e-7), 1 - 1e-7)
            central -= target * np.log(p) + (1 - target) * np.log(1 - p)
            quantisation += (abs(float(code)) - 1) ** 2
            count += 1
    return central / count + weight * quantisation / count


def context_for(train_labels, validation_labels, run_dir="unused", bits=BITS, classes=CLASSES, log=print, seed=0):
    """A TrainingContext over blank 16x16 images with the given labels."""
    def image_set(labels):
        return ImageSet(np.zeros((len(labels), 16, 16, 1), np.uint8), np.asarray(labels))

    spec = ModelSpec((16, 16, 1), classes, hash_bits=bits, stack_num=1, multi_label=np.ndim(train_labels) == 2)
    return TrainingContext(spec=spec, train=image_set(train_labels), validation=image_set(validation_labels),
                           seed=seed, run_dir=str(run_dir), epochs=2, batch_size=32, log=log)


def pairwise_distances(codes):
    codes = np.asarray(codes, np.int64)
    return (codes[:, None, :] != codes[None, :, :]).sum(axis=2)


# ------------------------------------------------------------------------------------------------------------ CSQ

@pytest.mark.parametrize("weight", [0.05, 0.7])
def test_csq_loss_matches_its_formula(weight):
    rng = np.random.default_rng(3)
    codes = np.tanh(rng.normal(scale=1.5, size=(6, BITS))).astype(np.float32)
    codes[0, :3] = [1.0, -1.0, 0.0]  # saturated outputs: the clip keeps the logs finite
    targets = rng.integers(0, 2, size=(6, BITS)).astype(np.float32)
    expected = reference_csq_loss(targets, codes, weight)
    assert_allclose(float(csq.csq_loss(targets, codes, weight)), expected, rtol=1e-5)
    loss = csq.csq_compile_arguments(None, None, csq.CSQ.resolve({"quantization_weight": weight}))["loss"]["hash_x"]
    assert_allclose(float(loss(targets, codes)), expected, rtol=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))  # saved models keep the weight
    assert_allclose(float(restored(targets, codes)), expected, rtol=1e-5)


def test_csq_targets_are_each_images_class_centre():
    train_labels, validation_labels = np.array([2, 0, 3, 1, 2, 2, 0]), np.array([1, 3, 0])
    train, validation = csq.prepare_csq(context_for(train_labels, validation_labels), csq.CSQ.resolve())
    centres = csq_centres(CLASSES, BITS, seed=0)
    for extras, labels in ((train, train_labels), (validation, validation_labels)):
        targets = extras[csq.CENTRE]
        assert targets.dtype == np.float32 and targets.shape == (len(labels), BITS)
        for row, label in zip(targets, labels):
            assert_array_equal(row, (centres[label] + 1) / 2)
    assert_array_equal(csq.centre_code_targets(None, train)["hash_x"], train[csq.CENTRE])


def test_csq_multi_hot_targets_follow_the_multi_label_rule():
    """Sign of the sum of the image's label centres; bits where it is 0 come from the run's fill vector."""
    train_labels = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]], np.uint8)
    validation_labels = np.array([[0, 1, 0, 1], [0, 0, 1, 0]], np.uint8)
    train, validation = csq.prepare_csq(context_for(train_labels, validation_labels, seed=5), csq.CSQ.resolve())
    centres, fill = csq_centres(CLASSES, BITS, seed=5), random_fill(BITS, seed=5)
    ties = 0
    for extras, labels in ((train, train_labels), (validation, validation_labels)):
        for row, label_row in zip(extras[csq.CENTRE], labels):
            for bit in range(BITS):
                total = sum(int(centres[c, bit]) for c in range(CLASSES) if label_row[c])
                ties += total == 0
                expected = 1 if total > 0 else -1 if total < 0 else int(fill[bit])
                assert row[bit] == (expected + 1) / 2
    assert ties > 0  # the fill vector was exercised


def test_csq_centres_of_ten_classes_at_32_bits_are_half_the_bits_apart():
    labels = np.arange(30) % 10
    train, _ = csq.prepare_csq(context_for(labels, labels[:10], bits=32, classes=10, log=lambda message: None),
                               csq.CSQ.resolve())
    class_targets = np.array([train[csq.CENTRE][labels == c][0] for c in range(10)])
    distances = pairwise_distances(class_targets)
    assert distances[~np.eye(10, dtype=bool)].min() >= 16


# ------------------------------------------------------------------------------------------------------------ SHC

def run_stages(split, run_dir, log, validation_labels=None):
    validation = split.validation if validation_labels is None else ImageSet(split.validation.images,
                                                                             validation_labels)
    spec = ModelSpec(tuple(split.train.images.shape[1:]), CLASSES, hash_bits=BITS, stack_num=1)
    context = TrainingContext(spec=spec, train=split.train, validation=validation, seed=0, run_dir=str(run_dir),
                              epochs=2, batch_size=32, log=log, train_stage=training.train)
    return shc.prepare_shc(context, shc.SHC.resolve())


def test_shc_stage_is_created_then_reused_and_its_centres_are_each_images_target(separable_split, tmp_path):
    logs = []
    train, validation = run_stages(separable_split, tmp_path, logs.append)
    stage = RunFolder(tmp_path).stage("classifier")
    assert stage.is_finished()
    saved_path = os.path.join(stage.run_dir, shc.CENTRES_FILE)
    with np.load(saved_path) as saved:
        centres, similarity = saved["centres"], saved["similarity"]
        required = int(saved["min_distance"])

    # Stage 2: centres at least SHC's minimum distance apart, fitted to the class similarity of the stage's model.
    assert required == shc_min_distance(BITS, CLASSES) == 6
    assert pairwise_distances(centres)[~np.eye(CLASSES, dtype=bool)].min() >= required
    model = keras.models.load_model(stage.model, compile=False)
    logits = shc.classifier_logits(model, separable_split.train.images)
    assert_allclose(similarity, class_similarity_from_logits(logits, separable_split.train.labels, CLASSES),
                    atol=1e-6)
    assert any("minimum pairwise Hamming distance" in line for line in logs)

    # Stage 3's targets: each image's class centre, in 0/1 form.
    for extras, image_set in ((train, separable_split.train), (validation, separable_split.validation)):
        assert_array_equal(extras[csq.CENTRE], (centres[image_set.labels] + 1) / 2)

    # A second call (a resumed run) trains nothing: the stage's files are untouched and the centres read back.
    stamps = {path: os.stat(path).st_mtime_ns for path in (stage.history, stage.model, saved_path)}
    logs.clear()
    train_again, _ = run_stages(separable_split, tmp_path, logs.append)
    assert {path: os.stat(path).st_mtime_ns for path in stamps} == stamps
    assert not any("epoch 1/2" in line for line in logs)
    assert any("already holds a finished run" in line for line in logs)
    assert any("reusing the hash centres" in line for line in logs)
    assert_array_equal(train_again[csq.CENTRE], train[csq.CENTRE])


def test_shc_validation_labels_do_not_shape_the_centres(separable_split, tmp_path):
    """The classifier kept is the last epoch's, so the validation labels (the query labels under --select-on-test)
    cannot choose it; wrong validation labels give the same class similarity and centres. (On this easy data the
    lowest validation loss falls on the same epoch whatever the labels, so the stage's setting is checked too.)"""
    quiet = lambda message: None  # noqa: E731
    right, _ = run_stages(separable_split, tmp_path / "right", quiet)
    wrong_labels = (separable_split.validation.labels + 1) % CLASSES
    wrong, _ = run_stages(separable_split, tmp_path / "wrong", quiet, validation_labels=wrong_labels)
    assert_array_equal(right[csq.CENTRE], wrong[csq.CENTRE])
    saved = [np.load(os.path.join(RunFolder(tmp_path / run).stage("classifier").run_dir, shc.CENTRES_FILE))
             for run in ("right", "wrong")]
    assert_array_equal(saved[0]["similarity"], saved[1]["similarity"])
    assert RunFolder(tmp_path / "right").stage("classifier").settings()["final_weights"] == "last"


def test_shc_classifier_stage_trains_as_the_run_does(tmp_path):
    """The stage's network gets the run's epochs, batch, seed, augmentation, precision and eagerness (through the
    loop the context hands in): under a preset that augments, only the loss differs between SHC and the other
    rows."""
    asked = {}

    class Stop(Exception):
        pass

    def record(method, split, num_classes, run_dir, **kwargs):
        asked.update(kwargs, method=method.name)
        raise Stop

    labels = np.arange(8) % CLASSES
    context = dataclasses.replace(context_for(labels, labels, run_dir=tmp_path, seed=5), augment=True,
                                  mixed_precision="mixed_bfloat16", run_eagerly=True, train_stage=record)
    with pytest.raises(Stop):
        shc.train_classifier(context)
    assert {name: asked[name] for name in ("epochs", "batch_size", "seed", "augment", "mixed_precision",
                                           "run_eagerly")} == {
        "epochs": 2, "batch_size": 32, "seed": 5, "augment": True, "mixed_precision": "mixed_bfloat16",
        "run_eagerly": True}
    assert asked["method"] == shc.CLASSIFIER.name


def test_shc_refuses_multi_hot_labels_before_touching_the_run_folder(multi_hot_split, tmp_path):
    with pytest.raises(SaehError, match="'shc' is defined for single-label data only"):
        training.train(shc.SHC, multi_hot_split, CLASSES, str(tmp_path / "run"), hash_bits=BITS, stack_num=1,
                       epochs=1, batch_size=32, verbose=0, log=lambda message: None)
    assert not os.path.exists(tmp_path / "run")
    with pytest.raises(SaehError, match="single-label"):
        shc.prepare_shc(context_for(np.eye(CLASSES, dtype=np.uint8), np.eye(CLASSES, dtype=np.uint8)),
                        shc.SHC.resolve())
