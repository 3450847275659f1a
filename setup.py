"""Install saeh: the SAEH package, its baselines, and the three scripts of the original code."""

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
    # Method packages: saeh.registry imports each module or package of this group (which registers its methods):
    # SAEH's own and the baselines; a third party adds its own package to the group in its setup.py.
    entry_points={"saeh.methods": ["saeh = saeh.methods", "baselines = baselines"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
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
        "test": ["pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel"],
        "faiss": ["faiss-cpu"],
    },
    license="MIT",
)
