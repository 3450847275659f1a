"""saeh: Deep Supervised Auto-Encoder Hashing (SAEH) in Keras 3, with its baselines and a retrieval evaluator.

`from saeh import build_saeh` loads Keras on first use only, so numpy-only parts (the evaluator, the code dumps,
the data loaders) import quickly without TensorFlow.
"""

__version__ = "0.1.0"
__all__ = ["build_saeh", "__version__"]


def __getattr__(name):
    if name == "build_saeh":
        from saeh.models import build_saeh

        return build_saeh
    raise AttributeError(f"module 'saeh' has no attribute {name!r}")
