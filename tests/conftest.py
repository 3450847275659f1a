"""Shared fixtures: small separable image data and cluttered data that an untrained network does not retrieve (each
single- and multi-label), a small MNIST file, a tiny Keras-layout .npz, and where the real datasets are (for tests
that use them); and the order of the tests (slow ones first). What the tests share besides fixtures is in
tests/helpers.py."""

import os

# KSH's many small BLAS calls slow down badly with 2 OpenBLAS threads on a busy 2-core machine, and the thread count
# changes KSH's last digits: one thread keeps the tests fast and their numbers stable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Fixtures that train or build a network once for many tests (module or session scope). Under pytest-xdist each
# worker that runs one of their tests builds its own copy, so their tests are grouped onto one worker.
SHARED_TRAINING_FIXTURES = ("served_runs", "trained", "paper_network")


def pytest_configure(config):
    """Under pytest-xdist, hand out tests one at a time as workers free up, not in chunks, and the tests of each
    shared training fixture as one unit: `--dist loadgroup`, unless a --dist is given. The default (`load`) first
    gives each worker a quarter of its share in one consecutive block, so the first worker got every slow test
    (sorted first, below) and ran them alone for minutes after the other had finished: 16.4 minutes for a suite
    whose tests sum to 12.6 per worker (2 workers, 2026-12-07); and it built each shared fixture on both workers.
    loadgroup hands out the groups first, then single tests one at a time in their order."""
    given = any(arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args)
    if not given and getattr(config.option, "dist", None) == "load":  # the xdist controller, -n without --dist
        config.option.dist = "loadgroup"
    if not given and hasattr(config, "workerinput"):  # a worker: it parses the command line, not the choice above
        config.option.loadgroup = True
    if getattr(config.option, "maxschedchunk", "absent") is None:  # for an explicit --dist load
        config.option.maxschedchunk = 1


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Tests marked slow first (in their order, then the rest in theirs): with the hand-out above, the workers share
    the long tests at the start instead of one of them running the last long test alone. The tests of a shared
    training fixture get its xdist group (the fixture's module's, for a module-scoped one)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        for name in SHARED_TRAINING_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                owner = "session" if name == "served_runs" else item.module.__name__
                item.add_marker(pytest.mark.xdist_group(f"{owner}.{name}"))


SHARED_DATASETS = os.path.join(os.path.dirname(REPO), "shared", "datasets")


@pytest.fixture(scope="session")
def mnist_subset(tmp_path_factory):
    """mnist_subset(train, test): the path of an `mnist.npz` of the bundled sample's first `train` and `test`
    images (for --which-data PATH, or --which-data mnist --data-dir PATH): real images through the real loader, few
    enough that a test's training takes seconds."""
    def write(train, test):
        path = tmp_path_factory.mktemp("mnist-subset") / "mnist.npz"
        sample = np.load(os.path.join(REPO, "saeh", "data", "mnist_sample.npz"))
        np.savez(path, x_train=sample["x_train"][:train], y_train=sample["y_train"][:train],
                 x_test=sample["x_test"][:test], y_test=sample["y_test"][:test])
        return str(path)

    return write


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory, mnist_subset):
    """Two tiny runs on the bundled sample's first 320 training and 40 test images, SAEH and SAEH- (8 bits, one
    epoch), trained once for the retrieval page's tests: {"saeh": run folder, "saeh-minus": run folder}."""
    import saeh

    data, root = mnist_subset(320, 40), tmp_path_factory.mktemp("served-runs")
    return {method: saeh.train(which_data=data, method=method, stack_num=1, epochs=1, batch_size=64, hash_bits=8,
                               save_dir=str(root), run_name=method, verbose=0).run_dir
            for method in ("saeh", "saeh-minus")}


def harness_split(images, dataset):
    """`images(count, seed=...)` as a split: 240 training images (the database: the validation images are not in
    it), 40 validation and 40 query images."""
    from saeh.data import ImageSet, Split

    train, validation, query = (ImageSet(*images(count, seed=seed)) for count, seed in ((240, 1), (40, 2), (40, 3)))
    return Split(protocol="ssdh", seed=0, train=train, validation=validation, query=query, database=train,
                 dataset=dataset, train_in_database=np.arange(len(train)),
                 validation_in_database=np.full(len(validation), -1))


def harness_multi_hot_split(images, dataset):
    """`images(count, seed=...)` (multi-hot labels) made as a loaded dataset is: LabelledData, then the ssdh protocol
    (240 training, 40 validation, 40 query images; the database is all 280 training images)."""
    from saeh.data import ImageSet, LabelledData, make_split

    data = LabelledData(name=dataset, train=ImageSet(*images(280, seed=1)), test=ImageSet(*images(40, seed=3)),
                        class_names=("0", "1", "2", "3"))
    return make_split(data, protocol="ssdh", seed=0, validation_size=40)


@pytest.fixture(scope="session")
def separable_split():
    from helpers import separable_images

    return harness_split(separable_images, "separable")


@pytest.fixture(scope="session")
def multi_hot_split():
    """The multi-label counterpart of `separable_split`."""
    from helpers import separable_multi_hot_images

    return harness_multi_hot_split(separable_multi_hot_images, "separable-multi-hot")


@pytest.fixture(scope="session")
def cluttered_split():
    """`separable_split` on `helpers.cluttered_pattern_images`: an untrained network does not retrieve these, so a
    deep method that does has learned."""
    from helpers import cluttered_pattern_images

    return harness_split(cluttered_pattern_images, "cluttered")


@pytest.fixture(scope="session")
def cluttered_multi_hot_split():
    """`multi_hot_split` on `helpers.cluttered_pattern_images(multi_hot=True)`."""
    import functools

    from helpers import cluttered_pattern_images

    return harness_multi_hot_split(functools.partial(cluttered_pattern_images, multi_hot=True), "cluttered-multi-hot")


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory):
    """A Keras-layout .npz (as mnist.npz): 60 training and 15 test images of `helpers.banded_images`, 3 classes."""
    from helpers import banded_images

    path = str(tmp_path_factory.mktemp("data") / "tiny.npz")
    (x_train, y_train), (x_test, y_test) = banded_images(60, seed=1), banded_images(15, seed=2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def shared_datasets():
    if not os.path.isdir(SHARED_DATASETS):
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
