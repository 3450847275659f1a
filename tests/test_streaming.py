"""Datasets larger than memory: images left in their files (`ImageFiles`) index, split, batch, train and encode
exactly as the same images decoded into memory, and `--stream auto` streams when the decoded set would exceed the
memory budget."""

import os

import numpy as np
import pytest

from saeh.data import ImageFiles, concatenate_images, load_dataset, make_split, scan_image_files
from saeh.errors import SaehError
from image_folders import write_class_folders
from script_helpers import run_script

CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, SIDE = 3, 12, 4, 8
GRAYSCALE_WARNING = "are grayscale; converted them to RGB"
pytestmark = pytest.mark.filterwarnings(f"ignore:.*{GRAYSCALE_WARNING}")


def write_folder(root, side=SIDE, train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS, gray=True,
                 jpeg=False):
    """The module's folder; with `gray`, one grayscale image (converted to RGB by both paths)."""
    return write_class_folders(root, CLASSES, train_per_class, test_per_class, side, gray=gray, jpeg=jpeg)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(str(tmp_path_factory.mktemp("streaming") / "data"))


@pytest.fixture(scope="module")
def both(folder):
    """The same folder in memory and streamed."""
    return load_dataset("folder", folder, stream=False), load_dataset("folder", folder, stream=True)


def test_image_files_index_and_decode_like_the_array(both):
    memory, streamed = both
    images, files = memory.train.images, streamed.train.images
    assert isinstance(files, ImageFiles) and not isinstance(images, ImageFiles)
    assert files.shape == images.shape and files.dtype == np.uint8 and files.ndim == 4 and len(files) == len(images)
    assert files.nbytes == images.nbytes
    np.testing.assert_array_equal(files[3], images[3])
    np.testing.assert_array_equal(files[-1], images[-1])
    rows = np.array([5, 0, 5, 7])
    mask = np.arange(len(images)) % 3 == 0
    for index in (slice(2, 9, 3), rows, mask):
        picked = files[index]
        assert isinstance(picked, ImageFiles)
        np.testing.assert_array_equal(np.asarray(picked), images[index])
    np.testing.assert_array_equal(files.decode(rows), images[rows])
    np.testing.assert_array_equal(np.asarray(files), images)
    both_sets = concatenate_images(files, streamed.test.images)
    np.testing.assert_array_equal(np.asarray(both_sets), np.concatenate([images, memory.test.images]))
    with pytest.raises(SaehError, match="in files with images in memory"):
        concatenate_images(files, memory.test.images)


def test_a_cache_holds_the_decoded_pixels_once_and_a_changed_file_gets_a_new_one(both, folder, tmp_path,
                                                                                   monkeypatch):
    """The decoded copy on disk gives the pixels decoding gives (rows, single images, concatenation, batches); it
    is written once, read back afterwards, and a file changed since gets a new cache, never stale pixels."""
    import shutil

    from PIL import Image

    from saeh.data import cache, pipeline

    memory, _ = both
    lines, cache_dir = [], tmp_path / "cache"
    cached = load_dataset("folder", folder, stream=True, cache_dir=str(cache_dir), log=lines.append)
    files = cached.train.images
    assert files.cache_file is not None and "decoding 49 images once into the cache" in lines[-1]
    assert sorted(os.listdir(cache_dir)) == [os.path.basename(files.cache_file)]  # no temporary file left
    written = os.path.getmtime(files.cache_file)
    monkeypatch.setattr(ImageFiles, "_decode_path", None)  # nothing is decoded from the image files below
    rows = np.array([5, 0, 5, 7])
    np.testing.assert_array_equal(files.decode(rows), memory.train.images[rows])
    np.testing.assert_array_equal(files[-1], memory.train.images[-1])
    np.testing.assert_array_equal(np.asarray(files[2:9:3]), memory.train.images[2:9:3])
    np.testing.assert_array_equal(np.asarray(cached.test.images), memory.test.images)
    both_sets = concatenate_images(files, cached.test.images)
    assert both_sets.cache_file == files.cache_file
    np.testing.assert_array_equal(np.asarray(both_sets), np.concatenate([memory.train.images, memory.test.images]))
    dataset = pipeline.image_batches(files, 16)
    np.testing.assert_array_equal(np.concatenate([batch.numpy() for batch in dataset]),
                                  memory.train.images / np.float32(255.0))
    again = load_dataset("folder", folder, stream=True, cache_dir=str(cache_dir), log=lines.append)
    assert "reading the decoded images from the cache" in lines[-1]
    assert again.train.images.cache_file == files.cache_file and os.path.getmtime(files.cache_file) == written
    monkeypatch.undo()

    changed = str(tmp_path / "changed")
    shutil.copytree(folder, changed)
    first = load_dataset("folder", changed, stream=True, cache_dir=str(cache_dir))
    picture = os.path.join(changed, "train", "class1", "000.png")
    Image.fromarray(np.full((SIDE, SIDE, 3), 200, np.uint8)).save(picture)
    os.utime(picture, ns=(1, 1))  # a new modification time even on a coarse clock
    second = load_dataset("folder", changed, stream=True, cache_dir=str(cache_dir))
    assert second.train.images.cache_file != first.train.images.cache_file
    row = list(second.train.images.paths).index(picture)
    assert (second.train.images[row] == 200).all() and not (first.train.images[row] == 200).all()
    every = concatenate_images(second.train.images, second.test.images)
    key = cache.cache_key(every)
    os.utime(picture, ns=(2, 2))  # the same bytes, touched: may have been rewritten, so not trusted
    assert cache.cache_key(every) != key

    with open(files.cache_file, "r+b") as handle:  # cut short after it was opened as a cache
        handle.truncate(100)
    with pytest.raises(SaehError, match="does not hold these .* delete it to rebuild it"):
        files.decode(rows)
    assert load_dataset("folder", folder, stream=True, cache_dir=str(cache_dir)).train.images.decode(rows).shape == (
        4, SIDE, SIDE, 3)  # a cache of the wrong size is written again
    assert cache.cache_path(both_sets, cache_dir) == files.cache_file  # one file for both sets


def test_the_cache_command_writes_the_cache_ahead(folder, tmp_path, capsys, monkeypatch):
    from saeh.cli import cache as cache_command
    from saeh.data import cache

    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    assert cache_command.main(["--data-dir", folder, "--cache-dir", str(tmp_path)]) == 0
    (name,) = os.listdir(tmp_path)
    assert name.endswith(cache.CACHE_SUFFIX) and f"in {tmp_path / name}" in capsys.readouterr().out
    with pytest.raises(SaehError, match="pass --cache-dir or set \\$SAEH_CACHE_DIR"):
        cache_command.main(["--data-dir", folder])
    with pytest.raises(SaehError, match="stored as arrays"):
        cache_command.main(["--which-data", "mnist-sample", "--cache-dir", str(tmp_path)])


def test_scan_refuses_an_unreadable_file(tmp_path):
    root = write_folder(str(tmp_path / "data"), gray=False)
    broken = os.path.join(root, "train", "class1", "broken.png")
    with open(broken, "wb") as handle:
        handle.write(b"not an image")
    with pytest.raises(SaehError, match=f"cannot decode image {broken}"):
        load_dataset("folder", root, stream=True)


def test_scan_refuses_mixed_sizes_unless_resizing(tmp_path):
    root = write_folder(str(tmp_path / "data"), gray=False)
    from PIL import Image

    odd = os.path.join(root, "train", "class2", "odd.png")
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(odd)
    with pytest.raises(SaehError, match=r"different sizes .*odd\.png is 10x12.*--image-size"):
        load_dataset("folder", root, stream=True)
    streamed = load_dataset("folder", root, image_size=(6, 6), stream=True)
    memory = load_dataset("folder", root, image_size=(6, 6), stream=False)
    assert streamed.train.images.shape == memory.train.images.shape == (3 * TRAIN_PER_CLASS + 1, 6, 6, 3)
    np.testing.assert_array_equal(np.asarray(streamed.train.images), memory.train.images)


def test_scan_keeps_an_all_gray_folder_gray(tmp_path):
    from PIL import Image

    paths = []
    for index in range(3):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(np.full((SIDE, SIDE), index * 40, np.uint8), mode="L").save(paths[-1])
    files = scan_image_files(paths)
    assert files.shape == (3, SIDE, SIDE, 1)
    assert np.asarray(files)[2, 0, 0, 0] == 80


def test_auto_streams_only_over_the_memory_budget(folder, monkeypatch):
    lines = []
    count = CLASSES * (TRAIN_PER_CLASS + TEST_PER_CLASS) + 1
    needed = count * SIDE * SIDE * 3
    streamed = load_dataset("folder", folder, memory_budget=needed - 1, log=lines.append)
    assert isinstance(streamed.train.images, ImageFiles)
    in_memory = load_dataset("folder", folder, memory_budget=needed, log=lines.append)
    assert isinstance(in_memory.train.images, np.ndarray)
    assert "streaming the images from their files" in lines[0] and "over the memory budget" in lines[0]
    assert "decoding the images into memory" in lines[1] and "within the memory budget" in lines[1]
    monkeypatch.setenv("SAEH_MEMORY_BUDGET", "1K")
    assert isinstance(load_dataset("folder", folder).train.images, ImageFiles)
    monkeypatch.setenv("SAEH_MEMORY_BUDGET", "1G")
    assert isinstance(load_dataset("folder", folder).train.images, np.ndarray)
    with pytest.raises(SaehError, match="memory_budget .*like 8G"):
        load_dataset("folder", folder, memory_budget="lots")


def test_arrays_datasets_are_never_streamed():
    assert isinstance(load_dataset("mnist-sample", memory_budget="1K").train.images, np.ndarray)
    with pytest.raises(SaehError, match="stored as arrays .*--stream on"):
        load_dataset("mnist-sample", stream=True)


@pytest.mark.parametrize("protocol", ["ssdh", "dpsh", "dsh"])
def test_protocols_split_files_as_arrays(both, protocol):
    memory, streamed = (make_split(data, protocol, seed=5, validation_size=4) for data in both)
    for name in ("train", "validation", "query", "database"):
        in_memory, in_files = getattr(memory, name), getattr(streamed, name)
        assert isinstance(in_files.images, ImageFiles)
        np.testing.assert_array_equal(np.asarray(in_files.images), in_memory.images)
        np.testing.assert_array_equal(in_files.labels, in_memory.labels)
    np.testing.assert_array_equal(streamed.train_in_database, memory.train_in_database)


def _batches(dataset):
    return [(np.asarray(inputs), {name: np.asarray(value) for name, value in targets.items()})
            for inputs, targets in dataset]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for (inputs, targets), (other_inputs, other_targets) in zip(first, second):
        np.testing.assert_array_equal(inputs, other_inputs)
        for name in targets:
            np.testing.assert_array_equal(targets[name], other_targets[name])


def test_streamed_batches_equal_the_in_memory_batches(both):
    from saeh.data import pipeline

    memory, streamed = both
    labels = pipeline.label_matrix(memory.train.labels, CLASSES)
    per_sample = {"label": labels, "index": np.arange(len(labels))}

    def targets(images, batch):
        return {"y_predict": batch["label"], "y_decoded": images}

    runs = [pipeline.training_batches(data.train.images, per_sample, targets, batch_size=8, seed=3, epochs=2,
                                      initial_epoch=0, augment=True)
            for data in (memory, streamed)]
    assert runs[0][1] == runs[1][1]
    _assert_same_batches(*(_batches(dataset) for dataset, _ in runs))
    validation = [_batches(pipeline.validation_batches(data.train.images, per_sample, targets, 8, seed=2))
                  for data in (memory, streamed)]
    _assert_same_batches(*validation)
    encoded = [np.concatenate([np.asarray(batch) for batch in pipeline.image_batches(data.test.images, 5)])
               for data in (memory, streamed)]
    np.testing.assert_array_equal(*encoded)


def test_streamed_jpeg_batches_equal_the_in_memory_batches(tmp_path):
    from saeh.data import pipeline

    root = write_folder(str(tmp_path / "data"), jpeg=True)
    memory, streamed = (load_dataset("folder", root, stream=stream) for stream in (False, True))
    encoded = [np.concatenate([np.asarray(batch) for batch in pipeline.image_batches(data.train.images, 7)])
               for data in (memory, streamed)]
    np.testing.assert_array_equal(*encoded)


def test_training_and_encoding_a_streamed_split(both, tmp_path):
    from saeh import training
    from saeh.inference import codes_for, encode
    from saeh.methods import SAEH

    memory, streamed = (make_split(data, "ssdh", seed=0, validation_size=6) for data in both)
    trained = training.train(SAEH, streamed, CLASSES, str(tmp_path / "run"), epochs=1, hash_bits=8, stack_num=1,
                             batch_size=8, verbose=0, log=lambda message: None)
    model = trained.model
    in_memory = codes_for(model, memory.database)
    in_files = codes_for(model, streamed.database)
    np.testing.assert_array_equal(in_files.hash_org, in_memory.hash_org)
    np.testing.assert_array_equal(in_files.label, in_memory.label)
    # Chunk by chunk into a given array: the same outputs (chunks of whole batches, as a batch's size may change
    # the last bit of a float32 sum).
    out = np.zeros_like(in_memory.hash_org)
    assert encode(model, streamed.database.images, batch_size=4, out=out, chunk_size=8) is out
    np.testing.assert_array_equal(out, encode(model, memory.database.images, batch_size=4))
    in_memory_out = np.zeros_like(out)
    assert encode(model, memory.database.images, batch_size=4, out=in_memory_out) is in_memory_out
    np.testing.assert_array_equal(in_memory_out, out)


@pytest.mark.slow
def test_scripts_give_the_same_codes_streamed_or_not(tmp_path, monkeypatch, capsys):
    from saeh.codes import load_codes

    monkeypatch.delenv("SAEH_CACHE_DIR", raising=False)
    data_dir = write_folder(str(tmp_path / "data"), side=16, train_per_class=16, test_per_class=6)
    runs = {}
    for stream in ("on", "off"):
        save_dir = str(tmp_path / stream)
        args = ["--which-data", "folder", "--data-dir", data_dir, "--save-dir", save_dir, "--stack-num", "1",
                "--hash-bits", "8", "--batch-size", "16", "--epochs", "1", "--verbose", "0",
                "--stream", stream, "--memory-budget", "1K"]
        if stream == "on":  # training reads the decoded copy, generate_hash below decodes the files
            args += ["--cache-dir", str(tmp_path / "cache")]
        code, out, err = run_script("hash_su_ae_train.py", args, monkeypatch, capsys)
        assert code == 0, err
        expected = "streaming the images from their files" if stream == "on" else "decoding the images into memory"
        assert expected in out
        assert ("images once into the cache" in out) == (stream == "on")
        runs[stream] = os.path.join(save_dir, "saeh_data_8bits")
        dump = str(tmp_path / f"dump_{stream}")
        code, out, err = run_script("generate_hash.py", ["--load-path", os.path.join(runs[stream], "model.keras"),
                                                         "--out", dump, "--stream", stream], monkeypatch, capsys)
        assert code == 0, err
        assert sorted(os.listdir(dump)) == ["database.mat", "database.npz", "query.mat", "query.npz"]
    for name in ("query", "database"):
        for suffix in (".mat", ".npz"):
            on, off = (load_codes(os.path.join(runs[stream], "codes", name + suffix)) for stream in ("on", "off"))
            assert 0 < on.hash_bin.mean() < 1
            np.testing.assert_array_equal(on.hash_org, off.hash_org)
            np.testing.assert_array_equal(on.hash_bin, off.hash_bin)
            np.testing.assert_array_equal(on.label, off.label)
            dumped = [load_codes(str(tmp_path / f"dump_{stream}" / (name + suffix))) for stream in ("on", "off")]
            np.testing.assert_array_equal(dumped[0].hash_org, dumped[1].hash_org)
            np.testing.assert_array_equal(dumped[0].hash_org, on.hash_org)


def test_what_the_baselines_read_from_streamed_images_equals_the_in_memory_values(both, tmp_path):
    """The baselines that read a split's images outside the training pipeline: ITQ and KSH on raw pixels, the
    classifier-codes thresholds (`training_projections`), SHC's class centres (`classifier_logits`), the search's
    feature re-ranking (`rerank`): streamed images give what the decoded arrays give."""
    import baselines
    from baselines.classifier_codes import training_projections
    from baselines.shallow_methods import fit_shallow
    from baselines.shc import build_classifier, classifier_logits
    from saeh.cli.search import rerank
    from saeh.methods import ModelSpec
    from saeh.training.compiled_model import build_compiled

    memory, streamed = (make_split(data, "ssdh", seed=0, validation_size=6) for data in both)
    for name in ("itq", "ksh"):
        codes = [fit_shallow(baselines.get(name), split, str(tmp_path / f"{name}{index}"), hash_bits=6, seed=0)
                 for index, split in enumerate((memory, streamed))]
        for part in ("query", "database"):
            np.testing.assert_array_equal(codes[1][part].hash_org, codes[0][part].hash_org)
    spec = ModelSpec(memory.train.images.shape[1:], CLASSES, hash_bits=6, stack_num=1)
    method = baselines.get("classifier-codes")
    model = build_compiled(method, method.resolve(), spec)
    np.testing.assert_array_equal(training_projections(model, streamed.train.images),
                                  training_projections(model, memory.train.images))
    classifier = build_classifier(spec)
    np.testing.assert_array_equal(classifier_logits(classifier, streamed.train.images),
                                  classifier_logits(classifier, memory.train.images))
    ids, distances = np.array([4, 1, 7, 2]), np.zeros(4)
    on_files = rerank(model, streamed.query.images[0:1], streamed.database.images, ids, distances, 3)
    in_memory = rerank(model, memory.query.images[0:1], memory.database.images, ids, distances, 3)
    for got, expected in zip(on_files, in_memory):
        np.testing.assert_array_equal(got, expected)
