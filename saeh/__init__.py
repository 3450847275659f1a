"""saeh: Deep Supervised Auto-Encoder Hashing (SAEH) in Keras 3, with its baselines and a retrieval evaluator.

The Python API (docs/API.md), each name loaded on first use only, so that importing `saeh` does no work and the
numpy-only parts (the evaluator, the code dumps, the data loaders) import quickly without TensorFlow:

- `load_model(source)`: a trained model (a run folder, a `.keras` file or a shipped model's name) as a `HashModel`,
  whose `encode(images)` gives `Codes` of arrays, image files or folders;
- `CodeIndex`: a database's codes with ids, paths, labels and the model's identity, saved to one `.npz` and
  queried by codes or images (top-k, within a radius);
- `evaluate(query, database)`: every retrieval metric, named as scores.json names them (map@1000, precision@r2);
- `train(**settings)`: training with the settings of `hash_su_ae_train.py`, through the same code path;
- `Codes`, `load_codes`, `build_saeh`.

TensorFlow's C++ start-up log is held back while a name is first loaded (`saeh.cli.quiet_tensorflow_start`).
"""

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "load_model": "saeh.api.hash_model",
    "HashModel": "saeh.api.hash_model",
    "CodeIndex": "saeh.api.code_index",
    "Neighbours": "saeh.api.code_index",
    "train": "saeh.api.train",
    "TrainingResult": "saeh.api.train",
    "evaluate": "saeh.retrieval.report",
    "Codes": "saeh.codes",
    "load_codes": "saeh.codes",
    "build_saeh": "saeh.models",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'saeh' has no attribute {name!r}")
    import importlib

    from saeh.cli import quiet_tensorflow_start

    with quiet_tensorflow_start():
        return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
