"""The method framework (saeh.methods, saeh.registry, saeh.method_state and the loop's hooks), and what makes DPSH,
HashNet and ADSH themselves: a memory bank restored on resume, beta growing by continuation, learned database
codes standing for the training images."""

import os
import zipfile

import numpy as np
import pytest

from saeh import registry, training
from saeh.errors import SaehError
from saeh.methods import SAEH, ModelSpec
from saeh.training.checkpoints import METHOD_STATE_MEMBER

from helpers import BRIEF_TRAINING, Crash, CrashAfterEpoch


def test_the_registry_lists_every_method_in_its_declared_order_and_refuses_a_second_of_a_name():
    # Reports and the runner list the methods in this order: each method's file declares its place.
    assert registry.names() == ("saeh", "saeh-minus", "ssdh", "dsh", "cnnh", "cnnh-plus", "dpsh", "hashnet", "dnnh",
                                "drsch", "dsrh", "csq", "shc", "adsh", "dsah", "sdh", "dh", "sdh-liong", "cnn-text",
                                "itq", "ksh", "lsh", "pcah", "pca-rr", "sh", "sklsh", "sph", "cbe-rand", "cbe-opt", "sp",
                                "sgh", "selve", "dsh-density", "dlbhc", "classifier-codes")
    assert registry.get("SAEH⁻") is registry.get("saeh-minus")
    assert registry.register(SAEH, listing_order=10) is SAEH  # the same object again, at its place: fine
    import dataclasses

    with pytest.raises(SaehError, match="two methods are registered as 'saeh'"):
        registry.register(dataclasses.replace(SAEH, summary="another SAEH"), listing_order=10)
    with pytest.raises(SaehError, match="two methods are registered as 'saeh'"):
        registry.register(SAEH, listing_order=15)
    with pytest.raises(SaehError, match="listing_order of method 'saeh' must be a number; got '10'"):
        registry.register(SAEH, listing_order="10")


def test_every_method_has_a_display_name_for_the_tables():
    shown = {name: registry.display_name(name) for name in registry.names()}
    assert (shown["csq"], shown["dsah"], shown["classifier-codes"], shown["ssdh"]) == (
        "CSQ", "DSAH", "Classifier codes", "SSDH*")
    assert all(label and ":" not in label and "(" not in label for label in shown.values()), shown


@pytest.mark.parametrize("arguments, message", [
    (dict(input_shape=(32, 32), num_classes=10), "input_shape must be"),
    (dict(input_shape=(32, 32, 3), num_classes=0), "num_classes must be a positive integer; got 0"),
    (dict(input_shape=(32, 32, 3), num_classes=10, hash_bits=-1), "hash_bits must be a positive integer; got -1"),
    (dict(input_shape=(32, 32, 3), num_classes=10, encoder="vgg"), "unknown encoder"),
    (dict(input_shape=(32, 32, 3), num_classes=10, multi_label="yes"), "multi_label must be True or False"),
])
def test_a_model_spec_refuses_bad_values(arguments, message):
    with pytest.raises(SaehError, match=message):
        ModelSpec(**arguments)


def test_each_method_declares_its_code_threshold():
    from saeh.inference import hash_threshold

    declared = {name: registry.get(name).code.threshold for name in registry.deep_names()}
    assert declared["saeh"] == 0.5 and declared["ssdh"] == 0.5 and declared["cnnh-plus"] == 0.5
    assert declared["dsh"] == 0.0 and declared["dpsh"] == 0.0 and declared["hashnet"] == 0.0
    hashnet = registry.get("hashnet")
    model = hashnet.build(ModelSpec((16, 16, 1), 4, hash_bits=8, stack_num=1), hashnet.resolve())
    assert hash_threshold(model, "hashnet") == 0.0  # a ScaledTanh layer: nothing to guess from


def test_the_sampler_decides_what_an_epoch_visits():
    from saeh.data import pipeline

    images = np.zeros((10, 8, 8, 1), np.uint8)
    per_sample = {"row": np.arange(10)}
    dataset, steps = pipeline.training_batches(
        images, per_sample, lambda batch_images, batch: batch["row"], 4, seed=0, epochs=3, initial_epoch=1,
        sampler=lambda epoch: np.array([epoch, epoch, 9, 0, 5, 5]))
    assert steps == 2
    visited = [list(rows.numpy()) for _, rows in dataset]
    assert visited == [[1, 1, 9, 0], [5, 5], [2, 2, 9, 0], [5, 5]]  # epochs 2 and 3, in the sampler's order
    with pytest.raises(SaehError, match="every epoch must visit as many"):
        pipeline.training_batches(images, per_sample, lambda i, b: b["row"], 2, 0, 2,
                                  sampler=lambda epoch: np.arange(epoch + 3))
    with pytest.raises(SaehError, match="rows outside"):
        pipeline.training_batches(images, per_sample, lambda i, b: b["row"], 2, 0, 1, sampler=lambda epoch: [10])


@pytest.mark.slow
def test_dpsh_writes_its_bank_and_a_resumed_run_continues_with_it(separable_split, tmp_path):
    dpsh = registry.get("dpsh")
    whole = training.train(dpsh, separable_split, 4, str(tmp_path / "whole"), epochs=3, **BRIEF_TRAINING)
    bank = whole.state.numpy()["bank"]
    assert bank.shape == (len(separable_split.train) + 1, 8)
    assert np.all(np.abs(bank[:-1]).sum(axis=1) > 0)  # every training image's output was written
    run_dir = str(tmp_path / "resumed")
    with pytest.raises(Crash):
        training.train(dpsh, separable_split, 4, run_dir, epochs=3, callbacks=[CrashAfterEpoch(2)], **BRIEF_TRAINING)
    with zipfile.ZipFile(os.path.join(run_dir, "checkpoints", "last.keras")) as archive:
        assert METHOD_STATE_MEMBER in archive.namelist()
    resumed = training.train(dpsh, separable_split, 4, run_dir, epochs=3, **BRIEF_TRAINING)
    for a, b in zip(whole.history, resumed.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(resumed.state.numpy()["bank"], bank, rtol=1e-4, atol=1e-5)
    # The state beside the final model is the best epoch's, as its weights are.
    from saeh.method_state import load_arrays

    saved = load_arrays(os.path.join(run_dir, "method_state.npz"))
    np.testing.assert_array_equal(saved["bank"], resumed.state.numpy()["bank"])


def test_hashnet_raises_beta_by_continuation_and_resumes_its_schedule(separable_split, tmp_path):
    from baselines.hashnet import hashnet_beta

    hashnet = registry.get("hashnet")
    steps = 6  # 240 training images in batches of 40
    run_dir = str(tmp_path / "run")
    with pytest.raises(Crash):
        training.train(hashnet, separable_split, 4, run_dir, epochs=3, hyperparameters={"beta_step": 1},
                       callbacks=[CrashAfterEpoch(1)], **BRIEF_TRAINING)
    trained = training.train(hashnet, separable_split, 4, run_dir, epochs=3, hyperparameters={"beta_step": 1},
                             **BRIEF_TRAINING)
    betas = [row["hashnet_beta"] for row in trained.history]
    assert betas == pytest.approx([hashnet_beta(steps * epoch, step=1) for epoch in (1, 2, 3)])
    assert betas[0] < betas[1] < betas[2]
    # The final model holds the best epoch's weights, beta included.
    assert float(trained.model.get_layer("hash_x").beta.numpy()) == pytest.approx(betas[trained.best_epoch - 1])


def test_adsh_learns_the_database_codes_of_the_training_and_validation_images(multi_hot_split, tmp_path):
    """Protocol ssdh: the database is the 240 training and the 40 validation images, and every database code is a
    learned one (the validation images' from their labels); the network encodes no database image."""
    from baselines.adsh import epoch_order, sampled_rows
    from saeh.run_codes import run_database_codes

    adsh = registry.get("adsh")
    count = len(multi_hot_split.train)
    omega = sampled_rows(1, count, 0, 50)
    order = epoch_order(1, count, 0, adsh.resolve({"num_samples": 50, "inner_epochs": 3}))
    assert len(omega) == 50 and sorted(order) == sorted(np.repeat(omega, 3))  # Omega, three times
    trained = training.train(adsh, multi_hot_split, 4, str(tmp_path / "run"), epochs=2,
                             hyperparameters={"num_samples": 50}, **{**BRIEF_TRAINING, "batch_size": 25})
    codes = trained.state.numpy()["codes"]
    assert len(codes) == count + len(multi_hot_split.validation)  # the training, then the validation images
    assert set(np.unique(codes)) == {-1.0, 1.0}  # every one has a learned code
    assert [row["epoch"] for row in trained.history] == [1, 2] and "database_codes_agree" in trained.history[0]
    database = run_database_codes(trained.model, multi_hot_split, {"method": "adsh"}, trained.state.numpy())
    rows = np.concatenate([multi_hot_split.train_in_database, multi_hot_split.validation_in_database])
    assert sorted(rows) == list(range(len(multi_hot_split.database)))
    np.testing.assert_array_equal(database.hash_bin[rows], (codes > 0).astype(np.uint8))
    np.testing.assert_array_equal(database.label[rows], np.concatenate([multi_hot_split.train.labels,
                                                                        multi_hot_split.validation.labels]))
    with pytest.raises(SaehError, match="learns its database codes"):
        run_database_codes(trained.model, multi_hot_split, {"method": "adsh"}, None)


def test_an_asymmetric_database_never_mixes_learned_and_network_codes():
    """Under protocol dpsh most database images are neither training nor validation images: their codes would be
    the network's, beside the learned ones. ADSH and DSAH refuse, naming the method, the protocol and the count;
    so do protocol dsh (the test set) and a validation set that is the query set."""
    import keras

    from saeh.run_codes import run_database_codes
    from saeh.data import ImageSet, LabelledData, make_split

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (600, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(600) % 10
    data = LabelledData(name="t", train=ImageSet(images[:500], labels[:500]),
                        test=ImageSet(images[500:], labels[500:]), class_names=tuple("0123456789"))
    split = make_split(data, protocol="dpsh", seed=1, validation_size=0.1)
    missing = len(split.database) - len(split.train) - len(split.validation)
    assert missing == 535
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="tanh", name="hash_x")(keras.layers.Flatten()(inputs)))
    for name in ("adsh", "dsah"):
        # Codes for the training images alone, as a run made them before the rule: the mix went through silently.
        state = {"codes": np.ones((len(split.train), 4), np.float32)}
        with pytest.raises(SaehError, match=f"method '{name}' is asymmetric.* under protocol 'dpsh' {missing} of "
                                            f"the {len(split.database)} database images are neither.*--protocol ssdh"):
            run_database_codes(model, split, {"method": name}, state)
    from saeh.run_codes import learned_database_rows

    method = registry.get("adsh")
    with pytest.raises(SaehError, match="under protocol 'dsh' 100 of the 100 database images"):
        learned_database_rows(method, make_split(data, protocol="dsh", seed=1))
    with pytest.raises(SaehError, match="query set as the validation set"):
        learned_database_rows(method, make_split(data, protocol="ssdh", seed=1, select_on_test=True))
    ssdh = make_split(data, protocol="ssdh", seed=1, validation_size=0.1)
    rows = learned_database_rows(method, ssdh)
    np.testing.assert_array_equal(np.sort(rows), np.arange(500))
    np.testing.assert_array_equal(ssdh.database.images[rows[len(ssdh.train):]], ssdh.validation.images)


def test_a_single_label_method_refuses_multi_hot_labels(multi_hot_split, tmp_path):
    import dataclasses

    single = dataclasses.replace(registry.get("dsh"), name="dsh-single", multi_label=False)
    with pytest.raises(SaehError, match="'dsh-single' is defined for single-label data only"):
        training.train(single, multi_hot_split, 4, str(tmp_path / "run"), epochs=1, **BRIEF_TRAINING)
    assert not os.path.exists(tmp_path / "run")


def test_the_training_images_are_located_in_the_database_by_every_protocol():
    from saeh.data import ImageSet, LabelledData, make_split

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (600, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(600) % 10
    data = LabelledData(name="t", train=ImageSet(images[:500], labels[:500]),
                        test=ImageSet(images[500:], labels[500:]), class_names=tuple("0123456789"))
    for protocol in ("ssdh", "dpsh", "dsh"):
        for select_on_test in (False, True):
            split = make_split(data, protocol=protocol, seed=1, validation_size=0.1, select_on_test=select_on_test)
            rows = split.train_in_database
            assert len(rows) == len(split.train)
            if protocol == "dsh":
                assert np.all(rows == -1)
            else:
                np.testing.assert_array_equal(split.database.images[rows], split.train.images)
                np.testing.assert_array_equal(split.database.labels[rows], split.train.labels)
            # The validation images: in the database unless they are the queries (which dsh's database is).
            rows = split.validation_in_database
            assert len(rows) == len(split.validation)
            if (protocol == "dsh") != select_on_test:
                assert np.all(rows == -1)
            else:
                np.testing.assert_array_equal(split.database.images[rows], split.validation.images)
                np.testing.assert_array_equal(split.database.labels[rows], split.validation.labels)


def test_the_database_code_step_with_a_prior_solves_each_column_exactly():
    """DSAH's V step: ADSH's objective plus mu * sum ||v_j - p_j||^2; each column is the exact minimiser given the
    others (enumerating all 2^n values of the column), and a dominant prior gives V = sign(P)."""
    import itertools

    from baselines.adsh_solver import adsh_objective, soft_similarity, update_database_codes

    rng = np.random.default_rng(3)
    n, bits, omega = 5, 3, np.array([0, 2, 3])
    labels = np.array([0, 1, 0, 1, 1])
    similarity = soft_similarity(labels[omega], labels)
    outputs = np.tanh(rng.normal(size=(3, bits)))
    prior = np.tanh(rng.normal(size=(n, bits)))
    start = rng.choice([-1, 1], size=(n, bits)).astype(np.int8)
    updated = update_database_codes(start, outputs, omega, similarity, bits, 2.0, prior, 7.0)
    for k in range(bits):
        # Column k is solved with the columns before it already updated and those after it as they were.
        codes = np.concatenate([updated[:, :k], start[:, k:]], axis=1).astype(float)
        best = min(itertools.product((-1, 1), repeat=n), key=lambda column: adsh_objective(
            outputs, np.column_stack([codes[:, :k], column, codes[:, k + 1:]]), similarity, omega, bits, 2.0, prior,
            7.0))
        np.testing.assert_array_equal(updated[:, k], best)
    dominated = update_database_codes(start, outputs, omega, similarity, bits, 2.0, prior, 1e9)
    np.testing.assert_array_equal(dominated, np.where(prior > 0, 1, -1))
    with pytest.raises(SaehError, match="prior must be finite numbers of shape"):
        update_database_codes(start, outputs, omega, similarity, bits, 2.0, prior[:2], 1.0)


def test_dsah_builds_its_label_encoder_once_per_model(monkeypatch):
    """The V step's prior runs every outer iteration: a new encoder each time would trace its prediction again."""
    import types

    import keras

    from baselines import dsah

    def labels_to_codes(seed):
        label = keras.Input((3,), name="label")
        initializer = keras.initializers.GlorotUniform(seed)
        return keras.Model(label, keras.layers.Dense(4, name="label_code", kernel_initializer=initializer)(label))

    built = []

    def counting_model(*args, **kwargs):
        built.append(args)
        return keras.Model(*args, **kwargs)

    monkeypatch.setattr(dsah, "keras", types.SimpleNamespace(Model=counting_model))
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    prior = dsah.label_code_prior({"code_labels": types.SimpleNamespace(numpy=lambda: labels)}, 0.5)
    first, second = labels_to_codes(0), labels_to_codes(1)
    codes, weight = prior(first)
    np.testing.assert_allclose(codes, first.predict(labels, verbose=0), rtol=1e-6)
    assert weight == 0.5 and len(built) == 1
    np.testing.assert_array_equal(prior(first)[0], codes)
    assert len(built) == 1
    np.testing.assert_allclose(prior(second)[0], second.predict(labels, verbose=0), rtol=1e-6)
    assert len(built) == 2


def test_dsah_hashes_images_alone_and_pulls_the_database_codes_to_the_label_codes(separable_split, tmp_path):
    import keras

    from saeh.inference import encode, load_hash_model

    dsah = registry.get("dsah")
    trained = training.train(dsah, separable_split, 4, str(tmp_path / "run"), epochs=1,
                             hyperparameters={"num_samples": 80, "prior_weight": 1e9}, **BRIEF_TRAINING)
    model = load_hash_model(trained.model_path)
    assert [tensor.name for tensor in model.inputs] == ["image", "label"]
    assert encode(model, separable_split.query.images).shape == (len(separable_split.query), 8)
    label_encoder = keras.Model(model.get_layer("label").output, model.get_layer("label_code").output)
    # V's rows: the training images, then the validation images.
    labels = np.concatenate([separable_split.train.labels, separable_split.validation.labels])
    label_codes = label_encoder.predict(np.eye(4, dtype="float32")[labels], verbose=0)
    # The V step of epoch 1 ran with the weights the epoch ended with; the final model is that epoch's.
    np.testing.assert_array_equal(trained.state.numpy()["codes"], np.where(label_codes > 0, 1.0, -1.0))


RECORDED_HYPERPARAMETERS = {  # as run.json has recorded them: a renamed or changed one would refuse to resume
    "saeh": {"alpha": 0.1, "beta": 0.1, "gamma": 1.0}, "saeh-minus": {"alpha": 0.1, "beta": 0.1},
    "ssdh": {"binary_weight": 1.0, "fire_rate_weight": 1.0}, "dsh": {"margin": None, "alpha": 0.01},
    "cnnh": {"stage1_iterations": None}, "cnnh-plus": {"stage1_iterations": None, "code_weight": 1.0},
    "dpsh": {"eta": 10.0}, "dnnh": {"margin": 2.0},
    "drsch": {"margin": 5.0, "laplacian_weight": 0.001, "raises": 80}, "dsrh": {"margin": 5.0, "balance_weight": 1.0},
    "hashnet": {"beta_gamma": 0.005, "beta_step": 200}, "dlbhc": {}, "classifier-codes": {"encoding": "lsh"},
    "csq": {"quantization_weight": 0.05}, "shc": {"quantization_weight": 0.0001},
    "adsh": {"num_samples": 2000, "gamma": 200.0, "inner_epochs": 3},
    "dsah": {"num_samples": 2000, "gamma": 200.0, "inner_epochs": 3, "code_weight": 1.0, "prior_weight": 200.0},
    "cnn-text": {"vocabulary_rows": 65536, "embedding_dim": 64, "position_dim": 8, "filters": 128, "window": 3,
                 "explicit_dim": 64, "neighbours": 25, "use_labels": False},
}


def test_each_method_declares_its_hyperparameters_once_with_their_meaning():
    import dataclasses
    import json

    from saeh.methods import CONSTRAINTS, Hyperparameters

    for name in registry.deep_names():
        method = registry.get(name)
        declared = method.hyperparameters
        assert isinstance(declared, Hyperparameters), name
        resolved = method.resolve()
        assert json.loads(json.dumps(dict(resolved))) == RECORDED_HYPERPARAMETERS[name], name
        for field in dataclasses.fields(declared):
            assert field.metadata["meaning"], (name, field.name)
            check, default = field.metadata["check"], field.default
            assert check is None or default is None or CONSTRAINTS[check](default), (name, field.name)
    hashnet = registry.get("hashnet")
    resolved = hashnet.resolve({"beta_step": "50"})
    assert resolved.beta_step == 50 and resolved["beta_gamma"] == 0.005 and hashnet.resolve(resolved) == resolved
    with pytest.raises(SaehError, match="hyperparameter beta_step of method 'hashnet' must be a positive integer"):
        hashnet.resolve({"beta_step": 0})
    with pytest.raises(SaehError, match="method 'hashnet' has no hyperparameter"):
        hashnet.resolve({"eta": 1})
