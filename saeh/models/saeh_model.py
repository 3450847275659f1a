"""The SAEH network: a shared encoder, a sigmoid hash layer, a classifier on the codes, and an image decoder."""

import keras

from saeh import defaults, validation
from saeh.errors import SaehError
from saeh.models import blocks, encoders


def check_input_shape(input_shape):
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3) or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 8 for size in shape[:2]
    ):
        raise SaehError(f"input_shape must be (height, width, channels) with sizes >= 8 and 1 or 3 channels; "
                        f"got {input_shape!r}")
    return shape


def hash_and_classifier(features, hash_bits, num_classes, multi_label=False, hash_activation="sigmoid",
                        weight_decay=defaults.WEIGHT_DECAY):
    """The hash layer `hash_x` (Dense, `hash_activation`) and the classifier `y_predict` fed by it (softmax, or
    sigmoid for multi-label data)."""
    code = blocks.dense(hash_bits, "hash_x", activation=hash_activation, weight_decay=weight_decay,
                        dtype="float32")(features)
    prediction = blocks.dense(num_classes, "y_predict", activation="sigmoid" if multi_label else "softmax",
                              weight_decay=weight_decay, dtype="float32")(code)
    return code, prediction


def build_code_network(spec, name, activation=None, classifier=False):
    """The encoder of `spec` and a code layer `hash_x` (Dense, `activation`: None for linear codes, "tanh",
    "sigmoid"), with a classifier `y_predict` on the codes when `classifier`; the network of the methods whose
    difference from each other is their loss (DSH, DPSH, CSQ, ...)."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    code = blocks.dense(spec.hash_bits, "hash_x", activation=activation, dtype="float32")(features)
    outputs = {"hash_x": code}
    if classifier:
        outputs["y_predict"] = blocks.dense(spec.num_classes, "y_predict",
                                            activation="sigmoid" if spec.multi_label else "softmax",
                                            dtype="float32")(code)
    return keras.Model(images, outputs, name=name)


def build_saeh(input_shape, num_classes, hash_bits=defaults.HASH_BITS, stack_num=defaults.STACK_NUM,
               encoder=defaults.ENCODER, gamma=defaults.GAMMA, multi_label=False,
               weight_decay=defaults.WEIGHT_DECAY, encoder_weights=None, name="saeh"):
    """Build the SAEH network as a Functional `keras.Model`.

    Args:
        input_shape: (height, width, channels) of images scaled to [0, 1]; 1 or 3 channels.
        num_classes: number of classes of the classifier head.
        hash_bits: length of the code, the width of the sigmoid layer `hash_x`.
        stack_num: residual blocks per stage of the "resnet_cifar" encoder (18 in the paper).
        encoder: "resnet_cifar" (the original network), "resnet50" or "dsh_cnn".
        gamma: weight of the recovery term. 0 builds SAEH-minus: no decoder at all, so no `y_decoded` output.
        multi_label: sigmoid classifier for multi-hot labels instead of softmax.
        weight_decay: L2 factor on every kernel (5e-4 in the original).
        encoder_weights: for "resnet50": None, "imagenet" or a weights file.

    Returns:
        A model whose outputs are a dict: `hash_x` (N, hash_bits) in (0, 1), `y_predict` (N, num_classes), and
        unless gamma == 0, `y_decoded` with the input's shape.
    """
    input_shape = check_input_shape(input_shape)
    num_classes = validation.positive_int(num_classes, "num_classes")
    hash_bits = validation.positive_int(hash_bits, "hash_bits")
    stack_num = validation.positive_int(stack_num, "stack_num")
    encoders.check_encoder(encoder)
    validation.non_negative_number(gamma, "gamma")

    images = keras.Input(shape=input_shape, name="image")
    features, feature_shape = encoders.encode_features(images, encoder, stack_num, weight_decay, encoder_weights)
    code, prediction = hash_and_classifier(features, hash_bits, num_classes, multi_label=multi_label,
                                           weight_decay=weight_decay)
    outputs = {"hash_x": code, "y_predict": prediction}
    if gamma > 0:
        outputs["y_decoded"] = encoders.decode_image(code, encoder, feature_shape, input_shape, stack_num,
                                                     weight_decay)
    return keras.Model(images, outputs, name=name)
