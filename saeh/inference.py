"""From a trained model to codes: load it safely, encode images in large batches, binarise."""

import json
import os
import sys
import zipfile

import keras
import numpy as np

from saeh.codes import make_codes
from saeh.data import ImageFiles, pipeline
from saeh.errors import MissingDataError, SaehError

HASH_LAYER = "hash_x"
ENCODE_BATCH_SIZE = 1024
# Images left in their files are encoded this many at a time, each chunk's outputs written out before the next, so
# that neither the images nor Keras's list of per-batch outputs grow with the set. A multiple of every usual batch
# size, so that the batches (and so the last bits of the float32 outputs) are those of encoding all at once.
ENCODE_CHUNK = 65536


def check_model_file(path, what="model file"):
    """Raise a clear error unless `path` is an existing `.keras` archive (zip); return it as a str.

    Keras itself reports a truncated archive as "File not found" or a zipfile traceback, far from the cause.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingDataError(f"{what} {path} does not exist; expected a .keras file written by "
                               "hash_su_ae_train.py, its run folder, or a shipped model's name (`python -m "
                               "saeh.pretrained list`)")
    if not path.endswith(".keras"):
        raise SaehError(f"{what} {path}: expected a .keras file")
    if not zipfile.is_zipfile(path):
        raise SaehError(f"{what} {path} is not a readable .keras model: not a zip archive (truncated or corrupt)")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (OSError, zipfile.BadZipFile) as error:
        raise SaehError(f"{what} {path} is not a readable .keras model: {error}") from error
    if broken is not None:
        raise SaehError(f"{what} {path} is not a readable .keras model: {broken} inside it is corrupt")
    return path


def saved_shapes(path):
    """(input image shape, hash bits) that the `.keras` file `path` records in its config.json, read without
    loading it (either None where the file records none, e.g. a model of several inputs)."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    layers = config.get("config", {}).get("layers", [])
    inputs = [layer["config"].get("batch_shape") for layer in layers if layer.get("class_name") == "InputLayer"]
    units = [layer["config"].get("units") for layer in layers if layer.get("name") == HASH_LAYER]
    return (tuple(inputs[0][1:]) if len(inputs) == 1 and inputs[0] else None,
            units[0] if len(units) == 1 else None)


def check_weights_file(path, what="weights file"):
    """Raise a clear error unless `path` is a `.keras` model (see `check_model_file`) or an HDF5 `.weights.h5` file
    (as `save_weights` and the best-epoch checkpoints write); return it as a str."""
    path = os.fspath(path)
    if not path.endswith(".h5"):
        return check_model_file(path, what)
    if not os.path.isfile(path):
        raise MissingDataError(f"{what} {path} does not exist; expected a .keras or .weights.h5 file")
    import h5py

    if not h5py.is_hdf5(path):
        raise SaehError(f"{what} {path} is not a readable weights file: not HDF5 (truncated or corrupt)")
    return path


def load_hash_model(path, safe_mode=True):
    """Load a `.keras` model that has a `hash_x` layer, without its training configuration.

    Keras's safe mode stays on unless `safe_mode=False` is asked for explicitly: a model file holding a Lambda
    layer (arbitrary code) is then refused with a clear message.
    """
    path = check_model_file(path)
    from saeh import registry

    registry.load_methods()  # the method packages define (and register with Keras) their layers, losses and metrics
    import saeh.losses  # noqa: F401
    import saeh.models.encoders  # noqa: F401
    import saeh.models.layers  # noqa: F401

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except ValueError as error:
        if "safe_mode" in str(error) or "Lambda" in str(error):
            raise SaehError(f"model file {path} contains a Lambda layer (arbitrary code), refused in Keras safe mode; "
                            "load it with --unsafe-load only if you trust the file") from error
        raise SaehError(f"model file {path} could not be loaded: {str(error).splitlines()[0]}") from error
    except (OSError, KeyError) as error:
        raise SaehError(f"model file {path} is not a readable .keras model: {error}") from error
    if HASH_LAYER not in [layer.name for layer in model.layers]:
        raise SaehError(f"model file {path} has no layer named {HASH_LAYER!r}; it is not a hashing model")
    return model


def hash_threshold(model, method=None):
    """The binarisation threshold of `model`'s codes: the one `method` declares (a registered method, or its name as
    run.json records it) when given; else read from the hash layer's activation, for a model file without a
    run.json: 0.5 for a sigmoid, 0 for anything else (tanh, linear)."""
    if method is not None:
        if isinstance(method, str):
            from saeh.registry import get

            method = get(method)
        return method.code.threshold
    activation = getattr(model.get_layer(HASH_LAYER), "activation", None)
    return 0.5 if getattr(activation, "__name__", "") == "sigmoid" else 0.0


def hash_bits(model):
    return int(model.get_layer(HASH_LAYER).output.shape[-1])


IMAGE_INPUT = "image"


def image_input(model):
    """The model's image input: its only input, or the one named "image" (a model may take more inputs in
    training, such as DSAH's labels; its codes depend on the image alone)."""
    if len(model.inputs) == 1:
        return model.inputs[0]
    named = [tensor for tensor in model.inputs if tensor.name == IMAGE_INPUT]
    if len(named) != 1:
        raise SaehError(f"the model has the inputs {[tensor.name for tensor in model.inputs]}; expected one named "
                        f"{IMAGE_INPUT!r} for the images")
    return named[0]


def image_shape(model):
    """(height, width, channels) of the images the model hashes."""
    return tuple(image_input(model).shape[1:])


def check_images_fit(model, images, source="the data"):
    """Raise SaehError when `images` do not have the model's input shape."""
    expected = image_shape(model)
    got = tuple(np.shape(images)[1:])
    if expected != got:
        raise SaehError(f"{source} has images of shape {got}, but the model expects {expected}; use the dataset it "
                        "was trained on (or resize the images)")


def hash_encoder(model):
    """The part of `model` from its image input to its hash layer's output, sharing its weights."""
    return keras.Model(image_input(model), model.get_layer(HASH_LAYER).output, name="hash_encoder")


def encode(model, images, batch_size=ENCODE_BATCH_SIZE, out=None, chunk_size=ENCODE_CHUNK, encoder=None,
           progress=False):
    """Real-valued hash outputs (N, bits) float32 for uint8 images (N, H, W, C) in memory or in their files
    (`saeh.data.ImageFiles`), computing only the encoder.

    Images in files are encoded `chunk_size` at a time. `out`: an (N, bits) float32 array to write the outputs
    into (e.g. a memory-mapped file, for a set whose outputs should not sit in memory); it is returned.
    `encoder`: `hash_encoder(model)`, built once by a caller that encodes often (its prediction is traced once).
    `progress`: True draws Keras's progress bar; "auto" draws it on a terminal only (never into a log file).
    """
    check_images_fit(model, images)
    encoder = hash_encoder(model) if encoder is None else encoder
    shape = (len(images), hash_bits(model))
    if out is not None and (tuple(out.shape) != shape or out.dtype != np.float32):
        raise SaehError(f"out must be a float32 array of shape {shape}; got {out.dtype} {tuple(out.shape)}")
    if len(images) == 0:
        return np.zeros(shape, np.float32) if out is None else out
    out = np.empty(shape, np.float32) if out is None else out
    step = chunk_size if isinstance(images, ImageFiles) else len(images)  # an array in memory is one chunk
    verbose = int(sys.stdout.isatty() if progress == "auto" else bool(progress))
    for start in range(0, len(images), step):
        chunk = images[start:start + step]
        out[start:start + len(chunk)] = encoder.predict(pipeline.image_batches(chunk, batch_size), verbose=verbose)
    return out


def hash_layer_inputs(model, images, batch_size=ENCODE_BATCH_SIZE):
    """The deep features (N, D) float32 that `model` feeds its hash layer, e.g. as features for ITQ or KSH."""
    check_images_fit(model, images)
    features = keras.Model(image_input(model), model.get_layer(HASH_LAYER).input, name="hash_features")
    return np.asarray(features.predict(pipeline.image_batches(images, batch_size), verbose=0), dtype=np.float32)


def codes_for(model, image_set, batch_size=ENCODE_BATCH_SIZE, method=None, out=None, encoder=None, progress=False):
    """`saeh.codes.Codes` of an image set (images and labels), binarised at the threshold of `method` (see
    `hash_threshold`); `out`, `encoder` and `progress` as for `encode`."""
    return make_codes(encode(model, image_set.images, batch_size, out=out, encoder=encoder, progress=progress),
                      image_set.labels, hash_threshold(model, method))
