"""One harness over every registered method: train briefly on small separable data, single-label and multi-hot, check
the codes, save and reload, and beat random codes by a clear margin in mAP (on multi-hot labels an image is relevant
to a query when they share at least one label)."""

import os

import numpy as np
import pytest

import baselines
from saeh.codes import Codes
from saeh.errors import SaehError
from saeh.retrieval import map_at_k

BITS = 12
CLASSES = 4
MARGIN = 0.25  # mAP@100 over random codes (about 0.29 single-label, 0.59 multi-hot, where sharing is likelier)


def random_codes_map(split):
    rng = np.random.default_rng(0)
    query = rng.integers(0, 2, (len(split.query), BITS))
    database = rng.integers(0, 2, (len(split.database), BITS))
    return map_at_k(query, database, split.query.labels, split.database.labels, k=100)


def train_deep(method, split, run_dir):
    from saeh import training

    return training.train(method, split, CLASSES, run_dir, hash_bits=BITS, stack_num=1, epochs=6, batch_size=32,
                          verbose=0, log=lambda message: None)


def train_and_encode(method, split, run_dir, train_twice=False):
    """Train (or fit) `method`; return (query codes, database codes, a function that reloads and re-encodes).
    `train_twice` (deep methods): train again with the same seed and require the same codes and method state, the
    determinism on the CPU that a run's seed promises, checked on this run rather than by two more trainings."""
    if method.kind == "shallow":
        codes = baselines.fit_shallow(method, split, run_dir, hash_bits=BITS, seed=0)
        hasher = method.hasher.load(os.path.join(run_dir, "model.npz"))

        def reload(image_set):
            from baselines.shallow import features_from_images

            return hasher.encode(features_from_images(image_set.images))

        return codes["query"], codes["database"], reload
    from saeh.cli.common import run_code_sets
    from saeh.inference import codes_for, load_hash_model

    trained = train_deep(method, split, run_dir)
    model = load_hash_model(trained.model_path)
    # As the training script dumps them: the method's threshold, and an asymmetric method's learned database codes.
    codes = run_code_sets(trained.model, split, {"method": method.name},
                          None if trained.state is None else trained.state.numpy())
    if train_twice:
        again = train_deep(method, split, run_dir + "-again")
        np.testing.assert_array_equal(codes_for(again.model, split.query, method=method).hash_org,
                                      codes["query"].hash_org)
        if trained.state is not None:  # a memory bank or learned database codes: the same too
            for name, value in trained.state.numpy().items():
                np.testing.assert_array_equal(again.state.numpy()[name], value, err_msg=name)
    return codes["query"], codes["database"], lambda image_set: codes_for(model, image_set, method=method).hash_bin


# The fixture of each kind of labels (tests/conftest.py).
SPLITS = {"single-label": "separable_split", "multi-hot": "multi_hot_split"}


@pytest.mark.parametrize("labels", SPLITS)
@pytest.mark.parametrize("name", baselines.names())
def test_method_trains_encodes_reloads_and_beats_random(name, labels, request, tmp_path):
    split = request.getfixturevalue(SPLITS[labels])
    method = baselines.get(name)
    if labels == "multi-hot" and not getattr(method, "multi_label", True):
        from saeh import training

        with pytest.raises(ValueError, match="single-label data only"):
            training.train(method, split, CLASSES, str(tmp_path / name), hash_bits=BITS, stack_num=1, epochs=1,
                           verbose=0, log=lambda message: None)
        return
    # Trained twice once per method (saeh: tests/test_cli.py checks its seed through the script).
    query, database, reload = train_and_encode(method, split, str(tmp_path / name),
                                               train_twice=labels == "single-label" and name != "saeh")
    for codes, image_set in ((query, split.query), (database, split.database)):
        assert isinstance(codes, Codes)
        assert codes.hash_bin.shape == (len(image_set), BITS) and codes.hash_bin.dtype == np.uint8
        assert codes.hash_org.dtype == np.float32
        assert codes.label.shape == image_set.labels.shape  # (N,) ids or (N, CLASSES) multi-hot, kept as given
        np.testing.assert_array_equal(codes.label, image_set.labels)
    np.testing.assert_array_equal(reload(split.query), query.hash_bin)
    score = map_at_k(query.hash_bin, database.hash_bin, query.label, database.label, k=100)
    chance = random_codes_map(split)
    assert score > chance + MARGIN, f"{name}: mAP@100 {score:.3f} vs random codes {chance:.3f}"


def tiny_split(train=16, held_out=16):
    """The separable images at their smallest: one step of 16 and a validation pass. Every set has the batch's 16
    images, so that one traced prediction serves the query and the database."""
    from conftest import separable_images
    from saeh.data import ImageSet, Split

    images = ImageSet(*separable_images(train, seed=1))
    return Split(protocol="ssdh", seed=0, train=images, validation=ImageSet(*separable_images(held_out, seed=2)),
                 query=ImageSet(*separable_images(held_out, seed=3)), database=images, dataset="separable",
                 train_in_database=np.arange(train), validation_in_database=np.full(held_out, -1))


# DPSH's linear outputs after one step on a from-scratch ResNet50 reach 1e13 in inference mode (batch norm's moving
# statistics have moved once) and its unbounded pair loss turns them into NaN: the loop's divergence guard stops it.
# A real epoch does not (the bundled sample, 71 steps: val_loss 2.48, no NaN). Strict: when it passes, drop the mark.
RESNET50_KNOWN_FAILURES = {"dpsh": "DPSH diverges in the first validation of a one-step run on resnet50 (NaN loss)"}


# SAEH and SSDH (the paper's SSDH* is SSDH on a ResNet) must learn on ResNet50; the other methods take one step.
RESNET50_LEARNERS = ("saeh", "ssdh")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=SaehError, reason=RESNET50_KNOWN_FAILURES[name]))
    if name in RESNET50_KNOWN_FAILURES else name
    for name in baselines.names() if baselines.get(name).kind == "deep" and name not in RESNET50_LEARNERS])
def test_every_deep_method_trains_on_the_resnet50_encoder(name, tmp_path):
    """Each other deep method on `--encoder resnet50` (16x16 images resized to ResNet50's smallest 32x32): a
    training step through the one loop with its hooks, state and stages, then its codes. The step runs eagerly:
    tracing ResNet50's step costs about a minute, running one a few seconds. (A method's own saved outputs reload
    in the harness above; a ResNet50 model reloads in the learning test below.)"""
    from saeh import training
    from saeh.cli.common import run_code_sets

    split, method = tiny_split(), baselines.get(name)
    trained = training.train(method, split, CLASSES, str(tmp_path / name), hash_bits=BITS, encoder="resnet50",
                             epochs=1, batch_size=16, run_eagerly=True, verbose=0, log=lambda message: None)
    assert trained.model.get_layer("resnet50") is not None
    codes = run_code_sets(trained.model, split, {"method": name},
                          None if trained.state is None else trained.state.numpy())
    for image_set, kind in ((split.query, "query"), (split.database, "database")):
        assert codes[kind].hash_bin.shape == (len(image_set), BITS) and codes[kind].hash_bin.dtype == np.uint8
        assert np.all(np.isfinite(codes[kind].hash_org)), kind


@pytest.mark.parametrize("name", RESNET50_LEARNERS)
def test_saeh_and_ssdh_learn_on_the_resnet50_encoder(name, separable_split, tmp_path):
    """From scratch on the harness's separable images: 4 epochs of 15 steps (batch 16) at rate 0.01 beat random
    codes by the harness's margin (measured: SAEH mAP@100 0.98 and 1.00 at seeds 0 and 1, random 0.29). Batches of
    32 (8 steps an epoch) were not enough: SAEH 0.52 / 0.28, SSDH 0.43 / 0.76 at seeds 0 / 1, and float rounding
    alone (eager against traced) moved SAEH from 0.52 to 0.76. The schedule's 0.1 needs more steps than a test can
    pay for. The saved model reloads to the same codes."""
    from saeh import training
    from saeh.cli.common import run_code_sets
    from saeh.inference import codes_for, load_hash_model

    method = baselines.get(name)
    trained = training.train(method, separable_split, CLASSES, str(tmp_path / name), hash_bits=BITS,
                             encoder="resnet50", epochs=4, batch_size=16, learning_rate=0.01, verbose=0,
                             log=lambda message: None)
    codes = run_code_sets(trained.model, separable_split, {"method": name})
    reloaded = load_hash_model(trained.model_path)
    np.testing.assert_array_equal(codes_for(reloaded, separable_split.query, method=method).hash_bin,
                                  codes["query"].hash_bin)
    score = map_at_k(codes["query"].hash_bin, codes["database"].hash_bin, codes["query"].label,
                     codes["database"].label, k=100)
    chance = random_codes_map(separable_split)
    assert score > chance + MARGIN, f"{name}: mAP@100 {score:.3f} vs random codes {chance:.3f}"


def test_registry_lookup_and_errors():
    assert baselines.get("SAEH-").name == "saeh-minus"
    assert baselines.get("cnnh+").name == "cnnh-plus"
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        baselines.get("nope")
    with pytest.raises(ValueError, match="no hyperparameter"):
        baselines.get("dsh").resolve({"gamma": 1.0})
    with pytest.raises(ValueError, match="unknown method 'cnnh'"):  # CNNH (no classifier) is not CNNH+
        baselines.get("cnnh")


@pytest.mark.parametrize("name, overrides, message", [
    ("dsh", {"margin": -5}, "margin of method 'dsh' must be a positive number; got -5"),
    ("dsh", {"alpha": "-0.1"}, "alpha of method 'dsh' must be a non-negative number; got -0.1"),
    ("ssdh", {"fire_rate_weight": -1}, "fire_rate_weight of method 'ssdh' must be a non-negative number"),
    ("cnnh-plus", {"stage1_iterations": 2.5}, "stage1_iterations of method 'cnnh-plus' must be a positive integer"),
    ("cnnh-plus", {"stage1_iterations": 0}, "stage1_iterations of method 'cnnh-plus' must be a positive integer"),
    ("cnnh-plus", {"code_weight": -2.0}, "code_weight of method 'cnnh-plus' must be a non-negative number"),
    ("saeh", {"gamma": -1}, "gamma of method 'saeh' must be a non-negative number"),
    ("saeh-minus", {"beta": -0.5}, "beta of method 'saeh-minus' must be a non-negative number"),
])
def test_hyperparameters_out_of_range_are_refused(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        baselines.get(name).resolve(overrides)


def test_hyperparameters_in_range_pass():
    assert dict(baselines.get("dsh").resolve({"margin": "24"})) == {"margin": 24, "alpha": 0.01}
    assert baselines.get("cnnh-plus").resolve({"stage1_iterations": 3})["stage1_iterations"] == 3
    assert baselines.get("saeh").resolve({"gamma": 0})["gamma"] == 0.0


def test_shallow_method_on_deep_features(separable_split, tmp_path):
    """ITQ/KSH can hash the features a trained deep model feeds its hash layer instead of raw pixels."""
    from saeh import training
    from saeh.methods import SAEH_MINUS

    trained = training.train(SAEH_MINUS, separable_split, CLASSES, str(tmp_path / "deep"), hash_bits=BITS,
                             stack_num=1, epochs=2, batch_size=32, verbose=0, log=lambda message: None)
    codes = baselines.fit_shallow(baselines.get("itq"), separable_split, str(tmp_path / "itq"), hash_bits=BITS,
                                  seed=0, feature_model=trained.model_path)
    hasher = baselines.get("itq").hasher.load(str(tmp_path / "itq" / "model.npz"))
    assert hasher.input_dim == trained.model.get_layer("hash_x").input.shape[-1]  # deep features, not 256 pixels
    assert codes["query"].hash_bin.shape == (len(separable_split.query), BITS)


def test_cnnh_plus_learns_each_images_own_stage1_code(separable_split, tmp_path):
    """CNNH+ regresses the stage-1 code of each training image; codes out of step with their images (shuffled
    apart) could still cluster by class through the classifier head, so the harness's mAP cannot tell."""
    from saeh import training
    from saeh.inference import codes_for

    from baselines.cnnh import stage1_targets

    method = baselines.get("cnnh-plus")
    targets, _ = stage1_targets(separable_split.train.labels, separable_split.validation.labels, BITS, seed=0)
    trained = training.train(method, separable_split, CLASSES, str(tmp_path / "run"), hash_bits=BITS, stack_num=1,
                             epochs=6, batch_size=32, verbose=0, log=lambda message: None)
    learned = codes_for(trained.model, separable_split.train).hash_bin
    agreement = (learned == targets["code"].astype(np.uint8)).mean()
    assert agreement > 0.9, f"training codes agree with their stage-1 codes on {agreement:.0%} of bits"


def test_cnnh_plus_validation_targets_never_enter_stage_1():
    """Stage 1 sees the training labels only (under --select-on-test the validation set is the query set); each
    validation image gets the mean stage-1 code of the training images with its labels, 0.5 for unseen labels."""
    from baselines.cnnh import stage1_targets

    train_labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    targets, validation = stage1_targets(train_labels, np.array([1, 0, 7]), BITS, seed=0)
    alone, _ = stage1_targets(train_labels, np.array([5]), BITS, seed=0)
    np.testing.assert_array_equal(targets["code"], alone["code"])  # the validation labels changed nothing
    np.testing.assert_allclose(validation["code"][0], targets["code"][train_labels == 1].mean(axis=0))
    np.testing.assert_allclose(validation["code"][1], targets["code"][train_labels == 0].mean(axis=0))
    np.testing.assert_array_equal(validation["code"][2], np.full(BITS, 0.5))
