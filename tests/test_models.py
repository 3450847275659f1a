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
    return bn(filters_in) + conv(3, filters_in, filters) + bn(filters) + conv(3, filters, filters) + conv(1, filters_in, filters)


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
    assert paper_network.count_params() == expected_parameters(18, 3, 32, 32, 10)
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
