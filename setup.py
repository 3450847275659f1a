"""Install saeh: the SAEH package, its baselines, and the three scripts of the original code."""

import glob
import os

from setuptools import find_packages, setup

setup(
    name="saeh",
    version="0.1.0",
    description="Deep Supervised Auto-Encoder Hashing (SAEH) in Keras 3, with baselines and a retrieval evaluator",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["saeh", "saeh.*", "baselines", "baselines.*"]),
    package_data={"saeh": ["published_results.json"], "saeh.data": ["mnist_sample.npz"]},
    py_modules=["hash_su_ae_train", "generate_hash", "evaluate"],
    # The shipped models, found by saeh.pretrained.locate under <prefix>/share/saeh/pretrained/ when installed.
    data_files=[(os.path.join("share", "saeh", os.path.normpath(folder)),
                 sorted(glob.glob(os.path.join(folder, "*.*"))))
                for folder in ["pretrained", *sorted(glob.glob(os.path.join("pretrained", "*", "")))]],
    entry_points={
        # Method packages: saeh.registry imports each module or package of this group (which registers its
        # methods): SAEH's own and the baselines; a third party adds its own package to the group in its setup.py.
        "saeh.methods": ["saeh = saeh.methods", "baselines = baselines"],
        # `saeh train|generate|evaluate|search|index|serve|reproduce|presets|methods|pretrained|cache`, beside the
        # scripts.
        "console_scripts": ["saeh = saeh.cli.commands:main"],
    },
    install_requires=[
        # Pinned to the minor versions the suite runs on: the package calls private Keras API with no public
        # equivalent, whose behaviour may change in any release. Model._symbolic_build (building the losses' and
        # metrics' state before fit's first traced step: saeh.training, saeh.distributed), the replacement of
        # Model._maybe_symbolic_build and Layer._flatten_layers (saeh.distributed.patch_for_multi_worker and
        # synchronize_batch_norm: the multi-worker workaround is for TF 2.21's MultiWorkerMirroredStrategy) and
        # Optimizer._get_variable_index (saeh.optimizers). Widen the pins only after the suite passes, the slow
        # tests of tests/test_distributed.py included.
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "numpy>=2.0",  # np.bitwise_count
        "scipy",
        "h5py",
        "matplotlib",
        "pillow",
        "tensorboard",
    ],
    extras_require={
        # The gamma notebook is executed with Jupyter's own machinery; the test suite runs it headless.
        "notebook": ["nbclient", "nbformat", "ipykernel"],
        # The retrieval page (`saeh serve`); the tests drive it with httpx2 (TestClient) and Chromium (Selenium).
        "serve": ["starlette", "uvicorn"],
        # pdoc renders the API reference (docs/API.md); tests/test_api_docs.py builds it.
        "test": ["pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel", "pdoc", "starlette", "uvicorn",
                 "httpx2", "selenium"],
        "faiss": ["faiss-cpu"],
    },
    license="MIT",
)
