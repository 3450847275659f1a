"""One harness over every registered method: train briefly on small separable data, check the codes, save and
reload, and beat random codes by a clear margin in mAP."""

import os

import numpy as np
import pytest

import baselines
from saeh.codes import Codes
from saeh.retrieval import map_at_k

BITS = 12
CLASSES = 4


def random_codes_map(split):
    rng = np.random.default_rng(0)
    query = rng.integers(0, 2, (len(split.query), BITS))
    database = rng.integers(0, 2, (len(split.database), BITS))
    return map_at_k(query, database, split.query.labels, split.database.labels, k=100)


def train_and_encode(method, split, run_dir):
    """Train (or fit) `method`; return (query codes, database codes, a function that reloads and re-encodes)."""
    if method.kind == "shallow":
        codes = baselines.fit_shallow(method, split, run_dir, hash_bits=BITS, seed=0)
        hasher = method.hasher.load(os.path.join(run_dir, "model.npz"))

        def reload(image_set):
            from baselines.shallow import features_from_images

            return hasher.encode(features_from_images(image_set.images))

        return codes["query"], codes["database"], reload
    from saeh import training
    from saeh.inference import codes_for, load_hash_model

    trained = training.train(method, split, CLASSES, run_dir, hash_bits=BITS, stack_num=1, epochs=6, batch_size=32,
                             verbose=0, log=lambda message: None)
    model = load_hash_model(trained.model_path)
    return (codes_for(trained.model, split.query), codes_for(trained.model, split.database),
            lambda image_set: codes_for(model, image_set).hash_bin)


@pytest.mark.parametrize("name", baselines.names())
def test_method_trains_encodes_reloads_and_beats_random(name, separable_split, tmp_path):
    method = baselines.get(name)
    query, database, reload = train_and_encode(method, separable_split, str(tmp_path / name))
    for codes, image_set in ((query, separable_split.query), (database, separable_split.database)):
        assert isinstance(codes, Codes)
        assert codes.hash_bin.shape == (len(image_set), BITS) and codes.hash_bin.dtype == np.uint8
        assert codes.hash_org.dtype == np.float32
        np.testing.assert_array_equal(codes.label, image_set.labels)
    np.testing.assert_array_equal(reload(separable_split.query), query.hash_bin)
    score = map_at_k(query.hash_bin, database.hash_bin, query.label, database.label, k=100)
    chance = random_codes_map(separable_split)
    assert score > chance + 0.25, f"{name}: mAP@100 {score:.3f} vs random codes {chance:.3f}"


def test_registry_lookup_and_errors():
    assert baselines.get("SAEH-").name == "saeh-minus"
    assert baselines.get("cnnh+").name == "cnnh-plus"
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        baselines.get("nope")
    with pytest.raises(ValueError, match="no hyperparameter"):
        baselines.get("dsh").resolve({"gamma": 1.0})


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
