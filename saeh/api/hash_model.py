"""A trained hashing model as the Python API offers it: `load_model` finds it (a run folder, a `.keras` file or a
shipped model's name) and `HashModel.encode` turns images (arrays, image files, folders) into `saeh.codes.Codes`."""

import os

import numpy as np

# Imported here, not on first use, so that TensorFlow starts while `saeh` holds its start-up log back (`saeh`'s
# lazy names are loaded inside `saeh.cli.quiet_tensorflow_start`).
from saeh import inference
from saeh.errors import MissingDataError, SaehError

# run.json settings that say which model this is, in the order they are shown
IDENTITY_SETTINGS = ("method", "hash_bits", "which_data", "protocol", "preset", "seed")


class HashModel:
    """A trained hashing model: its Keras network (`keras_model`), the `.keras` file it came from (`path`) and the
    run.json settings beside it (`settings`; {} for a lone model file).

    `encode(images)` gives the images' codes at the threshold of the model's method.
    """

    def __init__(self, keras_model, path, settings=None):
        self.keras_model = keras_model
        self.path = os.fspath(path)
        self.settings = dict(settings or {})
        recorded = self.settings.get("hash_bits")
        if recorded is not None and recorded != inference.hash_bits(keras_model):
            raise SaehError(f"{self.path} has {inference.hash_bits(keras_model)} hash bits but its run.json says "
                            f"{recorded}")
        self._encoder = None

    def __repr__(self):
        return (f"HashModel(method={self.method!r}, bits={self.bits}, which_data={self.which_data!r}, "
                f"path={self.path!r})")

    @property
    def method(self):
        """The registered method's name from run.json, or None for a model file without one."""
        return self.settings.get("method")

    @property
    def bits(self):
        return inference.hash_bits(self.keras_model)

    @property
    def which_data(self):
        """The data the model was trained on (run.json's which_data), or None when unknown."""
        return self.settings.get("which_data")

    @property
    def run_dir(self):
        """The run folder holding the model file."""
        from saeh.run_folder import RunFolder

        return RunFolder.of_model(self.path).run_dir

    @property
    def image_shape(self):
        """(H, W, C) of the images the network takes; other images are converted and resized to it."""
        return inference.image_shape(self.keras_model)

    @property
    def threshold(self):
        """Where real outputs are cut into 0/1 codes: the method's threshold (`saeh.inference.hash_threshold`)."""
        return inference.hash_threshold(self.keras_model, self.method)

    @property
    def identity(self):
        """Which model this is, as a JSON-ready dict: its run.json's method, hash_bits, which_data, protocol, preset
        and seed (None where unknown), the bits and input shape of its network, and its file."""
        identity = {name: self.settings.get(name) for name in IDENTITY_SETTINGS}
        identity.update(hash_bits=self.bits, image_shape=list(self.image_shape), path=os.path.abspath(self.path))
        return identity

    def dumped_database_codes(self):
        """The database codes dumped beside the model (its run folder's codes/database.npz), or None when there are
        none; these are the codes search uses rather than encoding the database again."""
        from saeh.codes import load_codes
        from saeh.run_folder import RunFolder

        folder = RunFolder.of_model(self.path)
        if self.settings.get("procedure") == "original" or not os.path.isfile(folder.code_path("database")):
            return None
        codes = load_codes(folder.code_path("database"))
        if codes.bits != self.bits:
            raise SaehError(f"{folder.code_path('database')} holds {codes.bits}-bit codes but the model has "
                            f"{self.bits} bits; dump them again with generate_hash.py --overwrite")
        return codes

    def encode(self, images, labels=None, batch_size=None):
        """The `saeh.codes.Codes` of `images`, in order, with `ids` 0..N-1.

        images: a uint8 array (N, H, W, C), (N, H, W) or one (H, W, C) image, or floats scaled to [0, 1]; an image
            file, a list of image files, or a folder of images (flat, or one sub-folder per class: the classes,
            numbered in alphabetical order, become the labels). Images are converted and resized to the model's
            input (`image_shape`). Files are decoded and encoded a few thousand at a time.
        labels: the images' labels ((N,) class ids or (N, C) multi-hot), where the images do not bring their own;
            None leaves them unknown (`Codes.label` None).

        File images keep their paths (`Codes.paths`).
        """
        from saeh.codes import make_codes
        from saeh.user_images import DECODE_CHUNK, image_array, listing_of, read_images

        batch_size = batch_size or inference.ENCODE_BATCH_SIZE
        if self._encoder is None:
            # built once: each new encoder traces its prediction again
            self._encoder = inference.hash_encoder(self.keras_model)
        listing = listing_of(images)
        if listing is None:
            pixels = image_array(images, self.image_shape)
            outputs, paths = inference.encode(self.keras_model, pixels, batch_size, encoder=self._encoder), None
        else:
            outputs, paths = np.empty((len(listing), self.bits), np.float32), listing.paths
            for start in range(0, len(listing), DECODE_CHUNK):
                chunk = read_images(listing.paths[start:start + DECODE_CHUNK], self.image_shape)
                outputs[start:start + len(chunk)] = inference.encode(self.keras_model, chunk, batch_size,
                                                           encoder=self._encoder)
            if listing.labels is not None:
                if labels is not None:
                    raise SaehError("labels were given for a folder of class folders, whose labels are its classes")
                labels = listing.labels
        if labels is not None and len(labels) != len(outputs):
            raise SaehError(f"labels must have one row per image ({len(outputs)}); got {len(labels)}")
        return make_codes(outputs, labels, self.threshold, ids=np.arange(len(outputs)), paths=paths)


def model_file(source):
    """The `.keras` file that `source` names: a run folder (its model.keras), a `.keras` file, or a shipped model's
    name (``NAME`` or ``pretrained/NAME``, `saeh.shipped`)."""
    from saeh.run_folder import RunFolder
    from saeh.shipped import shipped_folder, shipped_names, where_to_find

    if not isinstance(source, (str, os.PathLike)):
        raise SaehError(f"a model is a run folder, a .keras file or a shipped model's name; got {source!r}")
    path = os.fspath(source)
    if os.path.isdir(path):
        folder = RunFolder(path)
        if os.path.isfile(folder.model):
            return folder.model
        if os.path.isfile(folder.shallow_model):
            raise SaehError(f"run folder {path} holds a shallow method's hasher (model.npz), not a network; use its "
                            "dumped codes (codes/*.npz) instead")
        raise MissingDataError(f"run folder {path} holds no model.keras (is its training finished?)")
    if os.path.isfile(path):
        return path  # checked as a .keras archive when loaded
    found = shipped_folder(path)
    if found is not None:
        return RunFolder(found).model
    names = shipped_names()
    raise MissingDataError(f"model {path} is neither a run folder, a .keras file nor a shipped model; the shipped "
                           f"models are: {', '.join(names) if names else where_to_find()}")


def load_model(source, safe_mode=True):
    """A `HashModel` from a run folder, a `.keras` file (its run.json read from beside it, when there is one) or a
    shipped model's name (``saeh_mnist_32bits`` or ``pretrained/saeh_mnist_32bits``). Keras's safe mode stays on
    unless `safe_mode=False` (a model holding a Lambda layer is refused)."""
    from saeh.run_folder import RunFolder

    if isinstance(source, HashModel):
        return source
    path = model_file(source)
    settings = RunFolder.of_model(path).settings()
    return HashModel(inference.load_hash_model(path, safe_mode=safe_mode), path, settings)
