"""The SAEH network: parameter counts computed by hand from the original description, shapes, SAEH-minus."""

import numpy as np
import pytest

from saeh import build_saeh
from saeh.errors import SaehError


def bn(channels):
    return 4 * channels  # gamma, beta, moving mean, moving variance


def conv(kernel, channels_in, channels_out):
    return kernel * kernel * channels_in * channels_out + channels_out  # kernel + bias


def identity_block(filters):
    return 2 * (bn(filters) + conv(3, filters, filters))


def projection_block(filters_in, filters):
    # BN/ReLU on the input, conv3x3 to `filters`, BN/ReLU, conv3x3, and the 1x1 shortcut
    return (bn(filters_in) + conv(3, filters_in, filters) + bn(filters) + conv(3, filters, filters)
            + conv(1, filters_in, filters))


def expected_parameters(stack_num, channels, side, bits, classes, decoder=True):
    encoder = conv(3, channels, 16) + stack_num * identity_block(16)
    encoder += projection_block(16, 32) + (stack_num - 1) * identity_block(32)
    encoder += projection_block(32, 64) + (stack_num - 1) * identity_block(64) + bn(64)
    final_side = -(-(-(-side // 2)) // 2)  # two stride-2 'same' convolutions
    flat = final_side * final_side * 64
    heads = (flat * bits + bits) + (bits * classes + classes)
    if not decoder:
        return encoder + heads
    decoder_parameters = bits * flat + flat + (stack_num - 1) * identity_block(64)
    decoder_parameters += projection_block(64, 32) + (stack_num - 1) * identity_block(32)
    decoder_parameters += projection_block(32, 16) + stack_num * identity_block(16) + bn(16) + conv(3, 16, channels)
    return encoder + heads + decoder_parameters


@pytest.fixture(scope="module")
def paper_network():
    return build_saeh((32, 32, 3), 10, hash_bits=32, stack_num=18)


def test_paper_network_parameter_count(paper_network):
    assert paper_network.count_params() == expected_parameters(18, 3, 32, 32, 10) == 3_715_917
    # 110 = 1 + 3 stages x 18 blocks x 2 convolutions + the hash layer: the paper's ResNet-110 depth.
    convolutions = [layer for layer in paper_network.layers
                    if layer.name.startswith("encoder") and type(layer).__name__ == "Conv2D"
                    and not layer.name.endswith("shortcut")]
    assert len(convolutions) == 1 + 3 * 18 * 2


def test_paper_network_outputs(paper_network):
    shapes = {name: tuple(tensor.shape) for name, tensor in paper_network.output.items()}
    assert shapes == {"hash_x": (None, 32), "y_predict": (None, 10), "y_decoded": (None, 32, 32, 3)}
    assert paper_network.get_layer("hash_x").activation.__name__ == "sigmoid"
    assert paper_network.get_layer("y_predict").activation.__name__ == "softmax"
    assert paper_network.get_layer("y_decoded").activation.__name__ == "sigmoid"


def test_every_kernel_has_weight_decay_and_he_normal(paper_network):
    kernels = [layer for layer in paper_network.layers if hasattr(layer, "kernel_regularizer")]
    assert kernels
    for layer in kernels:
        assert layer.kernel_regularizer is not None and layer.kernel_regularizer.l2 == pytest.approx(5e-4), layer.name
        assert type(layer.kernel_initializer).__name__ == "HeNormal", layer.name


def test_mnist_network_stack_one():
    model = build_saeh((28, 28, 1), 10, hash_bits=12, stack_num=1)
    assert model.count_params() == expected_parameters(1, 1, 28, 12, 10)
    outputs = model(np.zeros((2, 28, 28, 1), np.float32))
    assert outputs["hash_x"].shape == (2, 12)
    assert outputs["y_decoded"].shape == (2, 28, 28, 1)


def test_gamma_zero_builds_no_decoder():
    model = build_saeh((28, 28, 1), 10, hash_bits=16, stack_num=1, gamma=0)
    assert set(model.output) == {"hash_x", "y_predict"}
    assert not [layer.name for layer in model.layers if layer.name.startswith("decoder") or layer.name == "y_decoded"]
    assert model.count_params() == expected_parameters(1, 1, 28, 16, 10, decoder=False)


@pytest.mark.parametrize("shape", [(30, 30, 3), (64, 48, 1)])
def test_decoder_returns_the_input_size(shape):
    model = build_saeh(shape, 5, hash_bits=8, stack_num=1)
    assert tuple(model.output["y_decoded"].shape[1:]) == shape


@pytest.mark.parametrize("encoder", ["resnet50", "dsh_cnn"])
def test_other_encoders(encoder):
    model = build_saeh((28, 28, 1), 10, hash_bits=16, encoder=encoder)
    outputs = model(np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32))
    assert outputs["hash_x"].shape == (2, 16)
    assert outputs["y_decoded"].shape == (2, 28, 28, 1)


def test_resnet50_imagenet_offline_is_a_clear_error(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(SaehError, match="ImageNet weights"):
        build_saeh((32, 32, 3), 10, encoder="resnet50", encoder_weights="imagenet")


def test_resnet50_loads_a_local_weights_file_and_keeps_batch_norm_momentum_0_9(tmp_path):
    """A weights file written from a built ResNet50 (as offline users have one) is loaded; every batch norm of the
    backbone keeps 0.9 of its moving averages per step (encoders.RESNET50_BN_MOMENTUM), through save and load."""
    import keras

    from saeh.models.encoders import RESNET50_BN_MOMENTUM

    keras.utils.set_random_seed(3)
    source = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / "resnet50_notop.weights.h5")
    source.save_weights(path)
    model = build_saeh((32, 32, 3), 10, hash_bits=8, encoder="resnet50", encoder_weights=path, gamma=0.0)
    backbone = model.get_layer("resnet50")
    for mine, theirs in zip(backbone.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert RESNET50_BN_MOMENTUM == 0.9
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 53 and {layer.momentum for layer in norms} == {0.9}
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert {layer.momentum for layer in loaded.get_layer("resnet50").layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {0.9}


def test_resnet50_missing_weights_file():
    with pytest.raises(SaehError, match="does not exist"):
        build_saeh((32, 32, 3), 10, encoder="resnet50", encoder_weights="/nonexistent/weights.h5")


@pytest.mark.parametrize("arguments, message", [
    (dict(input_shape=(32, 32, 2), num_classes=10), "input_shape"),
    (dict(input_shape=(32, 32, 3), num_classes=0), "num_classes"),
    (dict(input_shape=(32, 32, 3), num_classes=10, hash_bits=-4), "hash_bits"),
    (dict(input_shape=(32, 32, 3), num_classes=10, stack_num=0), "stack_num"),
    (dict(input_shape=(32, 32, 3), num_classes=10, encoder="vgg"), "vgg"),
    (dict(input_shape=(32, 32, 3), num_classes=10, gamma=-1), "gamma"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(SaehError, match=message):
        build_saeh(**arguments)


def producers(model, layer_name):
    """Names of the layers whose outputs `layer_name` reads."""
    node = model.get_layer(layer_name)._inbound_nodes[0]
    return [tensor._keras_history.operation.name for tensor in node.input_tensors]


def test_the_wiring_is_the_originals():
    """What a parameter count cannot see: which tensor each layer reads (REFERENCE.md's description)."""
    model = build_saeh((32, 32, 3), 10, hash_bits=8, stack_num=2)
    expected = {
        # Identity blocks add the raw block input; the first block's input is the stem convolution.
        "encoder_stage1_block1_pre1_bn": ["encoder_conv0"],
        "encoder_stage1_block1_add": ["encoder_stage1_block1_conv2", "encoder_conv0"],
        "encoder_stage1_block2_add": ["encoder_stage1_block2_conv2", "encoder_stage1_block1_add"],
        # The increase block: pre-activation and the 1x1 projection both read the raw block input.
        "encoder_stage2_block1_pre1_bn": ["encoder_stage1_block2_add"],
        "encoder_stage2_block1_conv1": ["encoder_stage2_block1_pre1_relu"],
        "encoder_stage2_block1_shortcut": ["encoder_stage1_block2_add"],
        "encoder_stage2_block1_add": ["encoder_stage2_block1_conv2", "encoder_stage2_block1_shortcut"],
        "encoder_post_bn": ["encoder_stage3_block2_add"],
        "encoder_flatten": ["encoder_post_relu"],
        "hash_x": ["encoder_flatten"],
        "y_predict": ["hash_x"],
        "decoder_dense": ["hash_x"],
        "decoder_stage3_block1_pre1_bn": ["decoder_reshape"],
        # The decrease block: upsampling first; pre-activation and projection read the upsampled tensor.
        "decoder_stage2_block1_upsample": ["decoder_stage3_block1_add"],
        "decoder_stage2_block1_pre1_bn": ["decoder_stage2_block1_upsample"],
        "decoder_stage2_block1_shortcut": ["decoder_stage2_block1_upsample"],
        "decoder_stage1_block1_upsample": ["decoder_stage2_block2_add"],
        "decoder_post_bn": ["decoder_stage1_block3_add"],
        "y_decoded": ["decoder_post_relu"],
    }
    for layer, inputs in expected.items():
        assert producers(model, layer) == inputs, layer
    strides = {name: model.get_layer(name).strides for name in (
        "encoder_stage2_block1_conv1", "encoder_stage2_block1_conv2", "encoder_stage2_block1_shortcut",
        "encoder_stage1_block1_conv1", "decoder_stage2_block1_conv1", "decoder_stage2_block1_shortcut")}
    assert strides == {"encoder_stage2_block1_conv1": (2, 2), "encoder_stage2_block1_conv2": (1, 1),
                       "encoder_stage2_block1_shortcut": (2, 2), "encoder_stage1_block1_conv1": (1, 1),
                       "decoder_stage2_block1_conv1": (1, 1), "decoder_stage2_block1_shortcut": (1, 1)}
    # Stage sizes: stack_num blocks per encoder stage; stack_num - 1, stack_num and stack_num + 1 in the decoder
    # (the decrease blocks open stages 2 and 1).
    adds = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    for stage, count in (("encoder_stage1", 2), ("encoder_stage2", 2), ("encoder_stage3", 2),
                         ("decoder_stage3", 1), ("decoder_stage2", 2), ("decoder_stage1", 3)):
        assert sum(name.startswith(stage + "_") for name in adds) == count, stage
