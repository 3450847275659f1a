"""What makes DLBHC and the classifier-codes baseline those methods, and the search's coarse-to-fine option.

DLBHC: classification is the whole loss (nothing on the latent layer). Classifier codes: the LSH layer's thresholds
are the training images' per-bit medians, in the final model; the one-hot encoding is the predicted class; one-hot
needs one bit per class. `python -m saeh.cli.search --rerank POOL`: the Hamming pool re-ranked by deep features.
"""

import os
import re

import keras
import numpy as np
import pytest

import baselines
from saeh import training
from saeh.training.compiled_model import build_compiled, targets_for
from saeh.errors import SaehError
from saeh.methods import ModelSpec

CLASSES, BITS = 4, 12
QUIET = {"stack_num": 1, "batch_size": 32, "verbose": 0, "log": lambda message: None}


def test_dlbhc_loss_is_the_classifiers_only(separable_split):
    method = baselines.get("dlbhc")
    spec = ModelSpec((16, 16, 1), CLASSES, hash_bits=BITS, stack_num=1)
    model = build_compiled(method, method.resolve(), spec)
    assert model.get_layer("hash_x").activation.__name__ == "sigmoid" and model.get_layer("hash_x").units == BITS
    assert model.get_layer("y_predict").input is model.get_layer("hash_x").output  # the classifier reads the codes
    images = separable_split.train.images[:32]
    labels = keras.utils.to_categorical(separable_split.train.labels[:32], CLASSES)
    targets = targets_for(model, method)(images, {"label": labels})
    logged = model.evaluate(images.astype(np.float32) / 255, targets, verbose=0, return_dict=True)
    predicted = model(images.astype(np.float32) / 255, training=False)["y_predict"]
    cross_entropy = float(keras.losses.categorical_crossentropy(labels, predicted).numpy().mean())
    regularisation = float(sum(loss.numpy() for loss in model.losses))
    assert logged["loss"] == pytest.approx(cross_entropy + regularisation, rel=1e-4)
    assert not [name for name in logged if name.startswith("hash_x")]


@pytest.fixture(scope="module")
def lsh_run(separable_split, tmp_path_factory):
    return training.train(baselines.get("classifier-codes"), separable_split, CLASSES,
                          str(tmp_path_factory.mktemp("lsh") / "run"), hash_bits=BITS, epochs=3, **QUIET)


def test_classifier_codes_thresholds_are_the_training_medians(lsh_run, separable_split):
    from baselines.classifier_codes import training_projections
    from saeh.inference import codes_for, load_hash_model

    model = load_hash_model(lsh_run.model_path)  # the final model: the best epoch's weights and thresholds
    layer = model.get_layer("hash_x")
    assert not layer.trainable and not layer.trainable_weights
    kernel = layer.kernel.numpy()
    np.testing.assert_allclose(kernel @ kernel.T, np.eye(CLASSES), atol=1e-5)  # bits > classes: a tight frame
    projections = training_projections(model, separable_split.train.images)
    np.testing.assert_allclose(layer.bias.numpy(), -np.median(projections, axis=0), rtol=1e-5, atol=1e-6)
    on = codes_for(model, separable_split.train, method="classifier-codes").hash_bin.sum(axis=0)
    half = len(separable_split.train) // 2
    assert np.all(np.abs(on - half) <= 2), on  # each bit on for half the training images (float ties aside)


def test_classifier_codes_onehot_is_the_predicted_class(separable_split, tmp_path):
    from saeh.inference import codes_for, load_hash_model

    trained = training.train(baselines.get("classifier"), separable_split, CLASSES, str(tmp_path / "run"),
                             hash_bits=CLASSES, hyperparameters={"encoding": "onehot"}, epochs=1, **QUIET)
    model = load_hash_model(trained.model_path)  # the custom layer reloads
    codes = codes_for(model, separable_split.query, method="classifier-codes").hash_bin
    predicted = model.predict(separable_split.query.images.astype(np.float32) / 255, verbose=0)["y_predict"]
    np.testing.assert_array_equal(codes, np.eye(CLASSES, dtype=np.uint8)[predicted.argmax(axis=1)])


def test_classifier_codes_onehot_needs_one_bit_per_class(separable_split, tmp_path):
    method = baselines.get("classifier-codes")
    with pytest.raises(SaehError, match="needs hash bits == classes; got 12 hash bits and 4 classes"):
        training.train(method, separable_split, CLASSES, str(tmp_path / "run"), hash_bits=BITS,
                       hyperparameters={"encoding": "onehot"}, epochs=1, **QUIET)
    with pytest.raises(SaehError, match="must be one of lsh, onehot; got 'none'"):
        training.train(method, separable_split, CLASSES, str(tmp_path / "run"), hash_bits=BITS,
                       hyperparameters={"encoding": "none"}, epochs=1, **QUIET)
    assert not (tmp_path / "run").exists()


def write_gray_folder(root, count, seed):
    """`root/{train,test}/class<c>/*.png` of `separable_images` (grayscale, 16 x 16)."""
    from PIL import Image

    from helpers import separable_images

    for split, size, offset in (("train", count, 0), ("test", count // 4, 1)):
        images, labels = separable_images(size, classes=CLASSES, seed=seed + offset)
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = os.path.join(root, split, f"class{label}")
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image[..., 0], mode="L").save(os.path.join(folder, f"{index:03d}.png"))
    return str(root)


def test_search_rerank_orders_the_hamming_pool_by_deep_features(tmp_path, capsys):
    from saeh.run_data import load_split
    from saeh.cli.search import main as search
    from saeh.inference import codes_for, hash_layer_inputs, load_hash_model
    from saeh.retrieval import hamming_distances

    data_dir = write_gray_folder(tmp_path / "data", 120, seed=5)
    _, split = load_split("folder", data_dir)
    trained = training.train(baselines.get("dlbhc"), split, CLASSES, str(tmp_path / "run"), hash_bits=8, epochs=2,
                             settings={"which_data": "folder", "data_dir": data_dir}, **{**QUIET, "batch_size": 16})
    model = load_hash_model(trained.model_path)
    query_index, pool, top_k = len(split.query) - 1, 40, 10
    query = split.query.images[query_index:query_index + 1]
    query_code = codes_for(model, split.query, method="dlbhc").hash_bin[query_index]
    distances = hamming_distances(query_code[None, :], codes_for(model, split.database, method="dlbhc").hash_bin)[0]
    hamming_order = np.argsort(distances, kind="stable")  # ties by database index
    candidates = hamming_order[:pool]
    features = hash_layer_inputs(model, split.database.images[candidates]).astype(np.float64)
    feature_distances = np.linalg.norm(features - hash_layer_inputs(model, query)[0], axis=1)
    expected = candidates[np.argsort(feature_distances, kind="stable")[:top_k]]

    assert search(["--model", trained.model_path, "--query-index", str(query_index), "--top-k", str(top_k),
                   "--rerank", str(pool), "--out", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    printed = re.findall(r"^ *\d+\. database image (\d+)\b.*? at Hamming distance (\d+), feature distance (\S+)$",
                         out,
                         flags=re.M)
    assert [int(index) for index, _, _ in printed] == expected.tolist()
    assert [int(distance) for _, distance, _ in printed] == distances[expected].tolist()
    shown = np.array([float(distance) for _, _, distance in printed])
    assert np.all(np.diff(shown) >= 0)
    assert not np.array_equal(expected, hamming_order[:top_k])  # the re-ranking changed the Hamming order
    assert search(["--model", trained.model_path, "--query-index", str(query_index), "--top-k", str(top_k),
                   "--out", str(tmp_path / "plain.png")]) == 0  # without --rerank: the Hamming ranking, as before
    plain = re.findall(r"^ *\d+\. database image (\d+)\b.*? at Hamming distance \d+$", capsys.readouterr().out,
                       flags=re.M)
    assert [int(index) for index in plain] == hamming_order[:top_k].tolist()
    with pytest.raises(SaehError, match=r"--rerank POOL must be at least --top-k \(10\).*got 9"):
        search(["--model", trained.model_path, "--query-index", "0", "--rerank", "9",
                "--out", str(tmp_path / "g2.png")])
