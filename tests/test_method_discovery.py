"""Methods are discovered: the registry imports the method packages declared under its entry-point group, refuses
clearly when none is declared, and a new method is one new file: a module of its own, declared as an entry point
(here a fake one), is registered, trained by the one loop, reloaded, dumped and scored without any other file
changed."""

import importlib.metadata
import sys

import numpy as np
import pytest

from saeh import registry
from saeh.errors import SaehError

# The whole of a new method: this file, and an entry point naming it (a third party's setup.py:
# entry_points={"saeh.methods": ["example = example_method"]}).
EXAMPLE_METHOD = '''"""An example method: SAEH's encoder, a tanh code layer, and a loss that pulls the codes' inner products
towards +1 for images that share a label and -1 for the others."""

from keras import ops

from saeh.methods import SIGN_CODES, DeepMethod
from saeh.models import build_code_network
from saeh.pairs import similar_pairs
from saeh.registry import register


def agreement_loss(labels, codes):
    similar = 2.0 * similar_pairs(labels, labels) - 1.0
    inner = ops.matmul(codes, ops.transpose(codes)) / ops.cast(ops.shape(codes)[1], "float32")
    return ops.mean(ops.square(inner - similar))


def build_example(spec, hyperparameters):
    return build_code_network(spec, "example_pairs", activation="tanh")


EXAMPLE = register(DeepMethod(
    name="example-pairs",
    summary="Example: tanh codes whose inner products follow the labels' agreement",
    build=build_example,
    compile_arguments=lambda spec, state, hyperparameters: {"loss": {"hash_x": agreement_loss}},
    targets=lambda images, batch: {"hash_x": batch["label"]},
    monitor=("val_loss", "min"),
    code=SIGN_CODES,
), listing_order=1000)
'''


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as before any method package was imported; restored afterwards."""
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.setattr(registry, "_loaded", False)


def declare_entry_points(monkeypatch, *added, keep_declared=True):
    """Make `importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)` return `added` (after the installed
    ones when `keep_declared`); other look-ups are left as they are."""
    real = importlib.metadata.entry_points
    declared = list(real(group=registry.ENTRY_POINT_GROUP)) if keep_declared else []

    def entry_points(**selection):
        if selection == {"group": registry.ENTRY_POINT_GROUP}:
            return importlib.metadata.EntryPoints([*declared, *added])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def entry_point(name, value):
    return importlib.metadata.EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


def test_the_installed_entry_points_declare_saeh_and_the_baselines():
    declared = {point.name: point.value for point in registry.method_packages()}
    assert declared == {"saeh": "saeh.methods", "baselines": "baselines"}


def test_without_a_declared_method_package_the_registry_says_to_install(monkeypatch, fresh_registry):
    declare_entry_points(monkeypatch, keep_declared=False)
    with pytest.raises(SaehError, match=r"no method package .* 'saeh.methods'.* run `pip install -e \.`"):
        registry.names()


def test_a_method_package_that_cannot_be_imported_is_named(monkeypatch, fresh_registry):
    declare_entry_points(monkeypatch, entry_point("broken", "no_such_method_package"))
    with pytest.raises(SaehError, match="method package 'no_such_method_package' \\(entry point 'broken'"):
        registry.names()


def test_a_new_method_is_one_new_file(tmp_path, monkeypatch, fresh_registry, separable_split):
    from saeh import training
    from saeh.codes import load_codes, save_codes
    from saeh.inference import codes_for, load_hash_model
    from saeh.retrieval import evaluate_codes

    listed = registry.names()
    (tmp_path / "example_method.py").write_text(EXAMPLE_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "example_method", raising=False)
    declare_entry_points(monkeypatch, entry_point("example", "example_method"))
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert registry.names() == (*listed, "example-pairs")  # placed by its own listing order
        method = registry.get("example-pairs")
        trained = training.train(method, separable_split, 4, str(tmp_path / "run"), hash_bits=8, stack_num=1,
                                 epochs=1, batch_size=40, verbose=0, log=lambda message: None)
        model = load_hash_model(trained.model_path)
        for name in ("query", "database"):
            save_codes(tmp_path / "codes" / f"{name}.mat", codes_for(model, getattr(separable_split, name),
                                                                     method=method))
    finally:
        sys.modules.pop("example_method", None)
    query, database = (load_codes(str(tmp_path / "codes" / f"{name}.mat")) for name in ("query", "database"))
    assert query.hash_bin.shape == (len(separable_split.query), 8)
    np.testing.assert_array_equal(query.hash_bin, (query.hash_org > 0).astype(np.uint8))  # its declared rule
    scores = evaluate_codes(query, database, top_k=100)
    assert scores["bits"] == 8 and 0.0 < scores["metrics"]["map@100"] <= 1.0


def test_python_m_baselines_lists_every_method_in_order(capsys):
    from baselines.__main__ import main

    main()
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line and not line[0].isspace()]
    assert tuple(listed) == registry.names()
