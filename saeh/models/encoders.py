"""Image encoders and the decoders that mirror them.

An encoder maps an image tensor to a flat feature vector and reports the shape of its last feature map, which
the decoder starts from. Names: "resnet_cifar" (the original SAEH network), "resnet50" (keras.applications),
"dsh_cnn" (the small network of the DSH paper), "whitened_cnn" (airbench94's fast CIFAR-10 network,
`saeh.models.whitened_cnn`, trained with its own recipe, `saeh.recipes.WHITENED_CNN`).
"""

import math
import os

import keras
from keras import layers

from saeh import defaults
from saeh.errors import MissingDataError, SaehError
from saeh.models import blocks, whitened_cnn

ENCODERS = ("resnet_cifar", "resnet50", "dsh_cnn", "whitened_cnn")
# keras.applications.ResNet50 keeps 0.99 of its batch-norm moving averages per step; trained from scratch at rate 0.1
# those averages lag the weights so far that inference (which uses them) collapses: on the bundled sample, validation
# accuracy 9.2% with them and 87.4% with the batch's own statistics after 2 epochs. 0.9 follows the weights.
RESNET50_BN_MOMENTUM = 0.9
# The training script's default warm-up (`--warmup-epochs`) for each encoder. ResNet50's first steps at rate 0.1 are
# large (one step at 0.01 moves its stem's kernel by three times its norm): with a one-epoch linear warm-up SAEH on
# the bundled sample reached 76.6% / 93.6% validation accuracy and mAP@1000 94.15 in 2 epochs, against 42.4% / 62.2%
# and 55.32 without (README, Encoders). The other encoders train as the original did, without one.
# whitened_cnn's recipe has a ramp of its own (saeh.recipes.WHITENED_CNN's triangular schedule).
DEFAULT_WARMUP_EPOCHS = {"resnet_cifar": 0.0, "resnet50": 1.0, "dsh_cnn": 0.0, "whitened_cnn": 0.0}


def check_encoder(encoder):
    if encoder not in ENCODERS:
        raise SaehError(f"unknown encoder {encoder!r}; expected one of {', '.join(ENCODERS)}")
    return encoder


def resnet_cifar_encoder(x, stack_num=defaults.STACK_NUM, weight_decay=defaults.WEIGHT_DECAY):
    """The original encoder: Conv3x3(16), three stages of `stack_num` pre-activation blocks (16, 32, 64 filters;
    stages 2 and 3 start with a stride-2 projection block), BN, ReLU. Returns the last feature map."""
    x = blocks.conv2d(16, 3, "encoder_conv0", weight_decay=weight_decay)(x)
    x = blocks.stage(x, 16, stack_num, "encoder_stage1", weight_decay=weight_decay)
    x = blocks.stage(x, 32, stack_num, "encoder_stage2", mode="increase", weight_decay=weight_decay)
    x = blocks.stage(x, 64, stack_num, "encoder_stage3", mode="increase", weight_decay=weight_decay)
    return blocks.bn_relu(x, "encoder_post")


def resnet_cifar_decoder(code, feature_shape, output_shape, stack_num=defaults.STACK_NUM,
                         weight_decay=defaults.WEIGHT_DECAY):
    """The original decoder: Dense to the encoder's last feature map (ReLU), Reshape, then the encoder mirrored
    (stack_num-1 blocks at 64; a decrease block and stack_num-1 blocks at 32; a decrease block and stack_num
    blocks at 16), BN, ReLU, Conv3x3 to the image channels with a sigmoid."""
    height, width, filters = feature_shape
    x = blocks.dense(height * width * filters, "decoder_dense", activation="relu", weight_decay=weight_decay)(code)
    x = layers.Reshape(feature_shape, name="decoder_reshape")(x)
    x = blocks.stage(x, 64, stack_num - 1, "decoder_stage3", weight_decay=weight_decay)
    x = blocks.stage(x, 32, stack_num, "decoder_stage2", mode="decrease", weight_decay=weight_decay)
    x = blocks.stage(x, 16, stack_num + 1, "decoder_stage1", mode="decrease", weight_decay=weight_decay)
    x = blocks.bn_relu(x, "decoder_post")
    x = _crop_to(x, output_shape)
    return blocks.conv2d(output_shape[-1], 3, "y_decoded", activation="sigmoid", weight_decay=weight_decay,
                         dtype="float32")(x)


@keras.saving.register_keras_serializable(package="saeh")
class CaffeImageNetNormalization(layers.Layer):
    """Map [0, 1] RGB images to what keras.applications.ResNet50's ImageNet weights expect: 0-255 BGR with the
    ImageNet channel means subtracted (its "caffe" preprocessing). Grey images are repeated to three channels."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, images):
        images = keras.ops.cast(images, self.compute_dtype) * 255.0
        if images.shape[-1] == 1:
            images = keras.ops.concatenate([images] * 3, axis=-1)
        bgr = images[..., ::-1]
        return bgr - keras.ops.convert_to_tensor(self.MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def resnet50_encoder(x, weights=None, bn_momentum=RESNET50_BN_MOMENTUM):
    """keras.applications.ResNet50 without its top, its batch normalisation's moving averages at `bn_momentum`.
    `weights`: None (random init), "imagenet" (downloads) or the path of a local weights file (`.h5`, as
    keras.applications writes them). Inputs smaller than 32x32 are resized to 32x32 first, the smallest size
    ResNet50 accepts."""
    height, width, _ = x.shape[1:]
    if height < 32 or width < 32:
        x = layers.Resizing(max(height, 32), max(width, 32), name="encoder_resize")(x)
    x = CaffeImageNetNormalization(name="encoder_normalize")(x)
    if isinstance(weights, str) and weights != "imagenet" and not os.path.isfile(weights):
        raise MissingDataError(f"encoder weights file {weights} does not exist; expected None, 'imagenet' or a file")
    try:
        backbone = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=tuple(x.shape[1:]))
    except Exception as error:  # the download raises URL/HTTP/OS errors depending on how it fails
        if weights == "imagenet":
            raise MissingDataError(
                "could not load the ImageNet weights of ResNet50 (no internet?): "
                f"{type(error).__name__}: {error}. Download resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 on "
                "a machine with internet into ~/.keras/models/, or pass its path as the encoder weights"
            ) from error
        raise
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    return backbone(x)


def dsh_cnn_encoder(x, weight_decay=defaults.WEIGHT_DECAY):
    """The DSH paper's small network (Liu et al., CVPR 2016): three 5x5 conv layers with 32, 32 and 64 filters,
    each followed by ReLU and 3x3 stride-2 pooling (max, then average twice, as in its Caffe definition); the
    fully connected layer of 500 units is added by `encode_features`."""
    for index, (filters, pool) in enumerate(((32, "max"), (32, "average"), (64, "average")), start=1):
        x = blocks.conv2d(filters, 5, f"encoder_conv{index}", weight_decay=weight_decay, activation="relu")(x)
        pooling = layers.MaxPooling2D if pool == "max" else layers.AveragePooling2D
        x = pooling(3, strides=2, padding="same", name=f"encoder_pool{index}")(x)
    return x


def upsampling_decoder(code, feature_shape, output_shape, weight_decay=defaults.WEIGHT_DECAY):
    """A decoder for encoders without a mirror (ResNet50, DSH's CNN): Dense to a small feature map, then
    decrease blocks (upsample x2, two 3x3 convs) halving the filters until the image size is reached, then a
    sigmoid Conv3x3 to the image channels."""
    height, width, _ = feature_shape
    filters = 256
    x = blocks.dense(height * width * filters, "decoder_dense", activation="relu", weight_decay=weight_decay)(code)
    x = layers.Reshape((height, width, filters), name="decoder_reshape")(x)
    upsamplings = max(0, math.ceil(math.log2(max(output_shape[0] / height, output_shape[1] / width))))
    for index in range(upsamplings):
        filters = max(16, filters // 2)
        x = blocks.projection_block(x, filters, f"decoder_up{index + 1}", "decrease", weight_decay=weight_decay)
    x = blocks.bn_relu(x, "decoder_post")
    x = _crop_to(x, output_shape)
    return blocks.conv2d(output_shape[-1], 3, "y_decoded", activation="sigmoid", weight_decay=weight_decay,
                         dtype="float32")(x)


def _crop_to(x, output_shape):
    """Crop a decoder map that overshoots the image size (odd sizes round up on the way down)."""
    extra_height = x.shape[1] - output_shape[0]
    extra_width = x.shape[2] - output_shape[1]
    if extra_height < 0 or extra_width < 0:
        return layers.Resizing(output_shape[0], output_shape[1], name="decoder_resize")(x)
    if extra_height or extra_width:
        cropping = ((extra_height // 2, extra_height - extra_height // 2),
                    (extra_width // 2, extra_width - extra_width // 2))
        return layers.Cropping2D(cropping, name="decoder_crop")(x)
    return x


def encode_features(images, encoder, stack_num, weight_decay, encoder_weights):
    """Run `encoder` on the image tensor; return (flat features, shape of the last feature map)."""
    check_encoder(encoder)
    if encoder == "resnet_cifar":
        feature_map = resnet_cifar_encoder(images, stack_num=stack_num, weight_decay=weight_decay)
    elif encoder == "resnet50":
        feature_map = resnet50_encoder(images, weights=encoder_weights)
    elif encoder == "whitened_cnn":
        feature_map = whitened_cnn.whitened_cnn_encoder(images)
        return whitened_cnn.whitened_cnn_features(feature_map), tuple(feature_map.shape[1:])
    else:
        feature_map = dsh_cnn_encoder(images, weight_decay=weight_decay)
    features = layers.Flatten(name="encoder_flatten")(feature_map)
    if encoder == "dsh_cnn":  # DSH's fully connected layer of 500 units before the code layer
        features = blocks.dense(500, "encoder_fc", activation="relu", weight_decay=weight_decay)(features)
    return features, tuple(feature_map.shape[1:])


def classifier_head(features, encoder, classes, name, activation, weight_decay):
    """A classifier read straight from `encoder`'s features, as layer `name` with `activation` (float32): the
    encoder's own head where its recipe has one (whitened_cnn: no bias, logits x 1/9), else a Dense layer."""
    if encoder == "whitened_cnn":
        return whitened_cnn.classifier_head(features, classes, name, activation)
    return blocks.dense(classes, name, activation=activation, weight_decay=weight_decay, dtype="float32")(features)


def decode_image(code, encoder, feature_shape, output_shape, stack_num, weight_decay):
    """The decoder that goes with `encoder`, from the hash code back to an image of `output_shape`."""
    if encoder == "resnet_cifar":
        return resnet_cifar_decoder(code, feature_shape, output_shape, stack_num=stack_num, weight_decay=weight_decay)
    if encoder == "whitened_cnn":
        return whitened_cnn.whitened_cnn_decoder(code, output_shape)
    return upsampling_decoder(code, feature_shape, output_shape, weight_decay=weight_decay)
