"""Each loss term equals a numpy computation of its formula on fixed inputs."""

import keras
import numpy as np
import pytest

from saeh import losses
from saeh.errors import SaehError

RNG = np.random.default_rng(7)
CODES = RNG.random((6, 12)).astype(np.float32)
IMAGES = RNG.random((6, 8, 8, 3)).astype(np.float32)
DECODED = RNG.random((6, 8, 8, 3)).astype(np.float32)
LABELS = np.eye(4, dtype=np.float32)[[0, 1, 1, 2, 3, 0]]


def value(tensor):
    return float(keras.ops.convert_to_numpy(tensor))


def test_binary_term():
    expected = -np.mean((CODES.astype(np.float64) - 0.5) ** 2)
    assert value(losses.binary_term(CODES)) == pytest.approx(expected, rel=1e-6)


def test_balance_term_is_per_bit_over_the_batch():
    expected = np.sum((CODES.astype(np.float64).mean(axis=0) - 0.5) ** 2)
    assert value(losses.balance_term(CODES)) == pytest.approx(expected, rel=1e-6)
    # A batch where every image has half its bits on but each bit is always on or off is unbalanced for SAEH.
    half = np.tile(np.array([1, 0] * 6, np.float32), (6, 1))
    assert value(losses.balance_term(half)) == pytest.approx(12 * 0.25)


def test_recovery_term():
    expected = np.mean((IMAGES.astype(np.float64) - DECODED) ** 2)
    assert value(losses.recovery_term(IMAGES, DECODED)) == pytest.approx(expected, rel=1e-6)


def test_hash_terms_loss_weights_and_config():
    loss = losses.HashTermsLoss(alpha=0.3, beta=0.7)
    expected = 0.3 * -np.mean((CODES - 0.5) ** 2) + 0.7 * np.sum((CODES.mean(axis=0) - 0.5) ** 2)
    assert value(loss(LABELS, CODES)) == pytest.approx(expected, rel=1e-5)
    clone = losses.HashTermsLoss.from_config(loss.get_config())
    assert (clone.alpha, clone.beta) == (0.3, 0.7)


def test_term_metric_reports_the_term():
    metric = losses.TermMean("balance")
    metric.update_state(LABELS, CODES)
    metric.update_state(LABELS, CODES[::-1] * 0.5)
    expected = np.mean([np.sum((CODES.mean(0) - 0.5) ** 2), np.sum(((CODES * 0.5).mean(0) - 0.5) ** 2)])
    assert value(metric.result()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="unknown loss term"):
        losses.TermMean("nonsense")


def test_total_loss_of_a_compiled_model_is_the_weighted_sum():
    """E1 + alpha E3 + beta E4 + gamma E2 (+ weight decay, zero here) as Keras computes it in `evaluate`."""
    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    code = keras.layers.Dense(12, activation="sigmoid", name="hash_x")(flat)
    prediction = keras.layers.Dense(4, activation="softmax", name="y_predict")(code)
    decoded = keras.layers.Reshape((8, 8, 3), name="y_decoded")(keras.layers.Dense(192, activation="sigmoid")(code))
    model = keras.Model(inputs, {"hash_x": code, "y_predict": prediction, "y_decoded": decoded})
    model.compile(optimizer="sgd", **losses.saeh_compile_arguments(alpha=0.1, beta=0.2, gamma=3.0))
    results = model.evaluate(IMAGES, {"hash_x": LABELS, "y_predict": LABELS, "y_decoded": IMAGES},
                             batch_size=6, return_dict=True, verbose=0)
    outputs = {name: keras.ops.convert_to_numpy(tensor) for name, tensor in model(IMAGES).items()}
    h = outputs["hash_x"].astype(np.float64)
    e1 = -np.mean(np.sum(LABELS * np.log(np.clip(outputs["y_predict"], 1e-7, 1)), axis=1))
    e3 = -np.mean((h - 0.5) ** 2)
    e4 = np.sum((h.mean(0) - 0.5) ** 2)
    e2 = np.mean((IMAGES - outputs["y_decoded"]) ** 2)
    assert results["y_predict_loss"] == pytest.approx(e1, rel=1e-4)
    assert results["hash_x_binary"] == pytest.approx(e3, rel=1e-4)
    assert results["hash_x_balance"] == pytest.approx(e4, rel=1e-4)
    assert results["y_decoded_loss"] == pytest.approx(e2, rel=1e-4)
    assert results["loss"] == pytest.approx(e1 + 0.1 * e3 + 0.2 * e4 + 3.0 * e2, rel=1e-4)


def caffe_k1_forcing_binary(latent):
    """SSDH's released K1_EuclideanLoss forward (Caffe-DeepBinaryCode 9eaa766, K1_euclidean_loss_layer.cpp
    l.24-33): minus the sum over every element of the latent blob of (h - 0.5)^2, over 2 * count (count = B * K)."""
    flat = np.asarray(latent, np.float64).ravel()
    loss = 0.0
    for value_ in flat:
        loss -= (value_ - 0.5) ** 2
    return loss / (2 * flat.size)


def caffe_k2_fire_rate(latent):
    """SSDH's released 50% fire rate: train_val.prototxt l.382-406 reshape the latent blob to B x 1 x 1 x K and
    average-pool it over the K bits, then K2_EuclideanLoss (K2_euclidean_loss_layer.cpp l.24-34) takes the sum over
    its B inputs of (x - 0.5)^2, over 2 * count (count = B)."""
    pooled = np.asarray(latent, np.float64).mean(axis=1)
    loss = 0.0
    for value_ in pooled:
        loss += (value_ - 0.5) ** 2
    return loss / (2 * pooled.size)


def test_ssdh_fire_rate_is_per_image():
    from baselines.ssdh import fire_rate_term

    expected = 0.5 * np.mean((CODES.astype(np.float64).mean(axis=1) - 0.5) ** 2)
    assert value(fire_rate_term(CODES)) == pytest.approx(expected, rel=1e-6)
    # A batch where every image has half its bits on but each bit is always on or off: balanced for SSDH.
    half = np.tile(np.array([1, 0] * 6, np.float32), (6, 1))
    assert value(fire_rate_term(half)) == pytest.approx(0.0)


def test_ssdh_hash_terms_are_the_released_caffe_layers():
    """SSDH's two hash terms at weights 1 and 1 equal the values of its released Caffe layers K1 and K2 (each half
    of the plain mean), and the weights multiply them as the prototxt's loss_weight does."""
    from baselines.ssdh import SSDHHashLoss, SSDHTermMean

    k1, k2 = caffe_k1_forcing_binary(CODES), caffe_k2_fire_rate(CODES)
    assert value(SSDHHashLoss()(LABELS, CODES)) == pytest.approx(k1 + k2, rel=1e-5)
    loss = SSDHHashLoss(binary_weight=2.0, fire_rate_weight=0.5)
    assert value(loss(LABELS, CODES)) == pytest.approx(2.0 * k1 + 0.5 * k2, rel=1e-5)
    for term, expected in (("binary", k1), ("fire_rate", k2)):  # the logged terms are the ones added
        metric = SSDHTermMean(term)
        metric.update_state(LABELS, CODES)
        assert value(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_dsh_loss_over_all_pairs():
    from baselines.dsh import DSHLoss

    codes = RNG.normal(size=(6, 12)).astype(np.float32)
    margin, alpha = 24.0, 0.01
    total, pairs = 0.0, 0
    for i in range(6):
        for j in range(i + 1, 6):
            similar = float(LABELS[i] @ LABELS[j] > 0)
            distance = np.sum((codes[i].astype(np.float64) - codes[j]) ** 2)
            pair = 0.5 * similar * distance + 0.5 * (1 - similar) * max(margin - distance, 0.0)
            regulariser = np.sum(np.abs(np.abs(codes[i]) - 1)) + np.sum(np.abs(np.abs(codes[j]) - 1))
            total += pair + alpha * regulariser
            pairs += 1
    assert value(DSHLoss(margin=margin, alpha=alpha)(LABELS, codes)) == pytest.approx(total / pairs, rel=1e-4)



# ------------------------------------------------------------------------------------------------ classifier metric
# Multi-hot rows and sigmoid outputs: 8 of the 12 (image, label) decisions at 0.5 are right, so the accuracy is 2/3.
MULTI_HOT = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], np.float32)
SIGMOIDS = np.array([[0.9, 0.2, 0.4, 0.1],   # 3 right (the third label missed)
                     [0.6, 0.7, 0.1, 0.3],   # 3 right (the first label wrongly on)
                     [0.8, 0.3, 0.1, 0.2]],  # 2 right (the second and fourth labels missed)
                    np.float32)
# One-hot rows and softmax outputs: the top class is right for 4 of the 6 images, so the accuracy is 2/3 again.
SOFTMAX = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.5, 0.3, 0.1, 0.1],
                    [0.1, 0.1, 0.7, 0.1], [0.2, 0.2, 0.2, 0.4], [0.1, 0.8, 0.05, 0.05]], np.float32)
# Multi-hot labels for IMAGES: each image has its class of LABELS and the mirrored one (3 - class).
TWO_LABELS = LABELS + LABELS[:, ::-1]


def compiled_classifier(multi_label):
    """A hash layer and the classifier `y_predict` on it, compiled as SAEH-minus is (its classifier loss and
    metrics are those of SSDH and CNNH+ too)."""
    inputs = keras.Input((8, 8, 3))
    code = keras.layers.Dense(12, activation="sigmoid", name="hash_x")(keras.layers.Flatten()(inputs))
    prediction = keras.layers.Dense(4, activation="sigmoid" if multi_label else "softmax", name="y_predict")(code)
    model = keras.Model(inputs, {"hash_x": code, "y_predict": prediction})
    model.compile(optimizer="sgd", **losses.saeh_compile_arguments(gamma=0, multi_label=multi_label))
    return model


def evaluate(model, labels):
    return model.evaluate(IMAGES, {"hash_x": labels, "y_predict": labels}, batch_size=6, return_dict=True,
                          verbose=0)


def test_classifier_accuracy_has_one_name_for_single_and_multi_label():
    """The history key the methods choose their best epoch by is the same whatever the labels."""
    names = {multi_label: [metric.name for metric in losses.classifier_metrics(multi_label)]
             for multi_label in (False, True)}
    assert names[False] == names[True] == [losses.CLASSIFIER_ACCURACY]
    for multi_label, labels in ((False, LABELS), (True, TWO_LABELS)):
        results = evaluate(compiled_classifier(multi_label), labels)
        assert "y_predict_accuracy" in results, sorted(results)


def test_every_classifier_method_compiles_the_same_accuracy():
    from saeh import registry
    from saeh.methods import ModelSpec

    per_output = [name for name in registry.deep_names() if registry.get(name).batch_loss is None]
    classifiers = [name for name in per_output if "y_predict" in registry.get(name).compile_arguments(
        ModelSpec((16, 16, 1), 4, hash_bits=12), None, registry.get(name).resolve()).get("loss", {})]
    assert {"saeh", "saeh-minus", "ssdh", "cnnh-plus", "dlbhc"} <= set(classifiers)
    for multi_label in (False, True):
        spec = ModelSpec((16, 16, 1), 4, hash_bits=12, multi_label=multi_label)
        for name in classifiers:
            arguments = registry.get(name).compile_arguments(spec, None, registry.get(name).resolve())
            (accuracy,) = arguments["metrics"]["y_predict"]
            assert accuracy.name == losses.CLASSIFIER_ACCURACY
            assert type(accuracy) is type(losses.classifier_metrics(multi_label)[0])
            assert arguments["loss"]["y_predict"] == losses.classifier_loss(multi_label)


@pytest.mark.parametrize("multi_label, labels, outputs", [
    (True, MULTI_HOT, SIGMOIDS),
    (False, LABELS, SOFTMAX),
])
def test_classifier_accuracy_values(multi_label, labels, outputs):
    (accuracy,) = losses.classifier_metrics(multi_label)
    accuracy.update_state(labels, outputs)
    assert value(accuracy.result()) == pytest.approx(2 / 3, rel=1e-6)


@pytest.mark.parametrize("multi_label, labels", [(False, LABELS), (True, TWO_LABELS)])
def test_a_saved_model_with_the_accuracy_loads_and_compiles(multi_label, labels, tmp_path):
    """Saved with its compile configuration, the model loads compiled (the metric comes back under its name), and
    loaded without it, as `load_hash_model` does, it compiles again with the same arguments."""
    model = compiled_classifier(multi_label)
    expected = evaluate(model, labels)["y_predict_accuracy"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    uncompiled = keras.models.load_model(path, compile=False)
    uncompiled.compile(optimizer="sgd", **losses.saeh_compile_arguments(gamma=0, multi_label=multi_label))
    for loaded in (keras.models.load_model(path), uncompiled):
        assert evaluate(loaded, labels)["y_predict_accuracy"] == pytest.approx(expected)


def twin_models(classifier=True):
    """Two copies (same weights) of a network with a hash output (and a classifier), an L2 term on its kernel: a
    functional model and a `BatchLossModel`."""
    def build():
        inputs = keras.Input((8, 8, 3), name="image")
        flat = keras.layers.Flatten()(inputs)
        code = keras.layers.Dense(12, activation="sigmoid", name="hash_x",
                                  kernel_regularizer=keras.regularizers.L2(1e-3))(flat)
        outputs = {"hash_x": code}
        if classifier:
            outputs["y_predict"] = keras.layers.Dense(4, activation="softmax", name="y_predict")(code)
        return keras.Model(inputs, outputs)

    keras.utils.set_random_seed(3)
    first, second = build(), build()
    second = losses.BatchLossModel(second.inputs, second.output)
    second.set_weights(first.get_weights())
    return first, second


def fit_both(per_output, hooked, epochs):
    """Both models fitted on the same batch of 6 images: targets per output, or the batch's per-sample tensors."""
    import tensorflow as tf

    targets = tf.data.Dataset.from_tensor_slices((IMAGES, {name: LABELS for name in per_output.output_names}))
    batches = tf.data.Dataset.from_tensor_slices((IMAGES, {"label": LABELS, "index": np.arange(6)}))
    return (per_output.fit(targets.batch(6), epochs=epochs, verbose=0).history,
            hooked.fit(batches.batch(6), epochs=epochs, verbose=0).history)


def test_a_batch_statistic_as_a_batch_loss_trains_bit_for_bit_as_a_compiled_batch_loss():
    """One term, a statistic of the batch (as DPSH's and ADSH's): the same weights, bit for bit, as the same loss
    compiled on the output (`BatchLoss`), weight decay included."""
    per_output, hooked = twin_models(classifier=False)
    per_output.compile(optimizer=keras.optimizers.SGD(0.5), loss={"hash_x": losses.HashTermsLoss(alpha=0.3, beta=0.7)})

    def batch_loss(outputs, batch):
        assert sorted(batch) == ["image", "index", "label"]
        yield "hash", 0.3 * losses.binary_term(outputs["hash_x"]) + 0.7 * losses.balance_term(outputs["hash_x"])

    hooked.attach_loss(batch_loss, ("hash",))
    hooked.compile(optimizer=keras.optimizers.SGD(0.5))
    first, second = fit_both(per_output, hooked, epochs=3)
    assert second == first and sorted(second) == ["loss"]
    for a, b in zip(per_output.get_weights(), hooked.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weighted_terms_of_a_batch_loss_are_summed_and_logged_as_compiled_per_output_losses():
    """A batch statistic and a per-image cross-entropy with a weight: the loss and each logged term as Keras's
    per-output losses give them. (After a step the weights agree to float rounding only: TensorFlow's graph
    optimiser may sum in another order the gradients reaching an output by several paths. DSAH's terms, checked by
    tools/method_fingerprints.py, train bit for bit as its per-output losses did.)"""
    per_output, hooked = twin_models()
    per_output.compile(optimizer=keras.optimizers.SGD(0.5), loss={
        "hash_x": losses.HashTermsLoss(alpha=0.3, beta=0.7), "y_predict": "categorical_crossentropy"},
        loss_weights={"hash_x": 1.0, "y_predict": 0.5})

    def batch_loss(outputs, batch):
        codes = outputs["hash_x"]
        yield "hash_x", 0.3 * losses.binary_term(codes) + 0.7 * losses.balance_term(codes)
        yield losses.LossTerm("y_predict", keras.losses.categorical_crossentropy(batch["label"], outputs["y_predict"]),
                              0.5)

    hooked.attach_loss(batch_loss, ("hash_x", "y_predict"))
    hooked.compile(optimizer=keras.optimizers.SGD(0.5))
    first, second = fit_both(per_output, hooked, epochs=1)
    assert second == first and sorted(second) == ["hash_x_loss", "loss", "y_predict_loss"]
    for a, b in zip(per_output.get_weights(), hooked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    hooked.attach_loss(batch_loss, ("hash_x", "nothing"))
    with pytest.raises(SaehError, match=r"gave the terms \['hash_x', 'y_predict'\]; it declares"):
        hooked.evaluate(IMAGES, {"label": LABELS, "index": np.arange(6)}, verbose=0)


def test_a_batch_loss_model_saves_and_loads_as_a_functional_model(tmp_path):
    from saeh.inference import load_hash_model

    _, hooked = twin_models()
    hooked.attach_loss(lambda outputs, batch: [("hash", losses.binary_term(outputs["hash_x"]))], ("hash",))
    hooked.compile(optimizer="sgd")
    path = str(tmp_path / "model.keras")
    hooked.save(path)
    loaded = load_hash_model(path)
    assert isinstance(loaded, losses.BatchLossModel)
    np.testing.assert_array_equal(loaded.predict(IMAGES, verbose=0)["hash_x"],
                                  hooked.predict(IMAGES, verbose=0)["hash_x"])
    loaded.compile(optimizer="sgd")
    with pytest.raises(SaehError, match="has no batch loss attached"):
        loaded.evaluate(IMAGES, {"label": LABELS}, verbose=0)
