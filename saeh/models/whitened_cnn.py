"""The "whitened_cnn" encoder: a small network that trains to the low 90s of CIFAR-10 accuracy in about ten epochs,
and the light decoder that goes with it.

Its shape is that of Keller Jordan's airbench94 (arXiv 2404.00498; github KellerJordan/cifar10-airbench,
`airbench94.py`, `make_net` and `init_whitening_conv`), written here in our own blocks:

- `PatchWhitening`: the images standardised per channel, then a frozen 2x2 valid convolution whose filters are the
  eigenvectors of the covariance of 2x2 patches of training images, scaled by 1/sqrt(eigenvalue + 5e-4), and
  their negatives (2 x channels x 4 filters); its bias trains (for the first epochs only: the recipe's
  `frozen_after_epochs`). GELU after it.
- three groups of conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU at 64, 256 and 256 filters; the
  convs have no bias and start as a partial identity (`PartialDirac`); the BNs have no scale, momentum 0.6 (the
  share of the old moving average kept, Keras's convention) and epsilon 1e-12;
- a global max-pool of the last 3x3 map to the 256 features that SAEH's hash layer reads;
- `classifier_head`, the source's own classifier for a head read straight from those features: a Dense without
  bias whose logits are multiplied by 1/9 (airbench94's `nn.Linear(..., bias=False)` then `Mul(scaling_factor)`).
  The recipe's rate 1.5 is tuned for it: an ordinary Dense head moves its logits 81 times as fast (the 1/9 scales
  both the gradient and the step's effect), and a plain classifier with one did not learn (README, whitened_cnn).

The training recipe that goes with it (Nesterov 0.85, the triangular schedule, label smoothing, the 64x rate of
the BN biases, Lookahead) is `saeh.recipes.WHITENED_CNN`; the layers here carry no weight decay of their own,
since that recipe decays every weight in its optimiser, as the source does.
"""

import keras
import numpy as np
from keras import layers

from saeh.errors import SaehError

WIDTHS = (64, 256, 256)
WHITENING_PATCH = 2
WHITENING_EPSILON = 5e-4  # added to the patch covariance's eigenvalues (airbench94, init_whitening_conv)
WHITENING_SAMPLE = 5000  # training images the whitening is estimated from (airbench94: the first 5,000)
BN_MOMENTUM = 0.6  # Keras's convention (share of the old average kept); PyTorch's momentum 0.4
BN_EPSILON = 1e-12
DECODER_WIDTHS = (64, 32, 16)
MIN_SIDE = 16
HEAD_LOGIT_SCALE = 1.0 / 9.0  # airbench94's hyp['net']['scaling_factor']


@keras.saving.register_keras_serializable(package="saeh")
class PartialDirac(keras.initializers.Initializer):
    """A conv kernel (height, width, in, out) whose first min(in, out) output channels pass input channel c to
    output channel c unchanged (a 1 at the kernel's centre), the others drawn as PyTorch's default conv init
    (uniform in +-1/sqrt(fan_in)): an implicit residual connection at the start of training (airbench94's `Conv`,
    `dirac_` on the first `in` output channels)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        height, width, channels_in, channels_out = shape
        random = keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform",
                                                    seed=self.seed)(shape, dtype=dtype)
        identity = np.zeros(shape, np.float32)
        shared = min(channels_in, channels_out)
        identity[height // 2, width // 2, np.arange(shared), np.arange(shared)] = 1.0
        keep_random = np.ones((1, 1, 1, channels_out), np.float32)
        keep_random[..., :channels_in] = 0.0  # output channels below `in` are the identity's alone
        return keras.ops.cast(random * keep_random + identity, dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="saeh")
class PatchWhitening(layers.Layer):
    """Standardise each channel, then a `patch` x `patch` valid convolution by the whitening filters of the
    training images' patches (`adapt`), plus a trainable bias. Output channels: 2 x channels x patch^2.

    Before `adapt` the layer is the identity on patches (unit filters): a model built for loading weights needs no
    data. `adapt(images)` sets the channel means and deviations and the filters from uint8 or [0, 1] images."""

    def __init__(self, patch=WHITENING_PATCH, epsilon=WHITENING_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.patch, self.epsilon = int(patch), float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        size = channels * self.patch * self.patch
        self.mean = self.add_weight(name="channel_mean", shape=(channels,), initializer="zeros", trainable=False)
        self.scale = self.add_weight(name="channel_scale", shape=(channels,), initializer="ones", trainable=False)
        eye = np.eye(size, dtype=np.float32).reshape(self.patch, self.patch, channels, size)
        self.kernel = self.add_weight(name="kernel", shape=(self.patch, self.patch, channels, 2 * size),
                                      initializer=keras.initializers.Constant(np.concatenate([eye, -eye], -1)),
                                      trainable=False)
        self.bias = self.add_weight(name="bias", shape=(2 * size,), initializer="zeros", trainable=True)

    def call(self, images):
        dtype = self.compute_dtype
        standard = (keras.ops.cast(images, dtype) - keras.ops.cast(self.mean, dtype)) * keras.ops.cast(self.scale,
                                                                                                          dtype)
        whitened = keras.ops.conv(standard, keras.ops.cast(self.kernel, dtype), padding="valid")
        return whitened + keras.ops.cast(self.bias, dtype)

    def adapt(self, images):
        """Estimate the channel statistics and the whitening filters from `images` (N, H, W, C), uint8 or floats
        in [0, 1] (as the model reads them)."""
        images = np.asarray(images)
        images = images.astype(np.float64) / 255.0 if images.dtype == np.uint8 else images.astype(np.float64)
        mean = images.mean(axis=(0, 1, 2))
        deviation = images.std(axis=(0, 1, 2))
        self.mean.assign(mean.astype(np.float32))
        self.scale.assign((1.0 / np.maximum(deviation, 1e-8)).astype(np.float32))
        self.kernel.assign(whitening_filters((images - mean) / np.maximum(deviation, 1e-8), self.patch,
                                             self.epsilon))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        shrink = self.patch - 1
        return (batch, None if height is None else height - shrink, None if width is None else width - shrink,
                2 * channels * self.patch * self.patch)

    def get_config(self):
        return {**super().get_config(), "patch": self.patch, "epsilon": self.epsilon}


def image_patches(images, patch):
    """Every `patch` x `patch` window of `images` (N, H, W, C) as rows of (patch, patch, C) values, flattened in
    the order of a Keras conv kernel (height, width, channel)."""
    count, height, width, channels = images.shape
    rows = [images[:, dy:height - patch + 1 + dy, dx:width - patch + 1 + dx, :]
            for dy in range(patch) for dx in range(patch)]
    return np.stack(rows, axis=3).reshape(-1, patch * patch * channels)


def whitening_filters(images, patch, epsilon=WHITENING_EPSILON):
    """Conv filters (patch, patch, C, 2 * patch^2 * C) that whiten the patches of standardised `images`: the
    eigenvectors of the patches' (uncentred) covariance, largest eigenvalue first, each divided by
    sqrt(eigenvalue + epsilon), then the same filters negated."""
    patches = image_patches(images, patch)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    scaled = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + epsilon)
    channels = images.shape[-1]
    filters = scaled.reshape(patch, patch, channels, -1)
    return np.concatenate([filters, -filters], axis=-1).astype(np.float32)


def conv(filters, name):
    """A 'same' 3x3 conv without bias, starting as a partial identity (`PartialDirac`)."""
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=PartialDirac(), name=name)


def batch_norm(name):
    """BN without scale (its bias trains), momentum 0.6 and epsilon 1e-12, as airbench94's `BatchNorm`."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False, name=name)


def conv_group(x, filters, name):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU."""
    x = conv(filters, f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = batch_norm(f"{name}_bn1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu1")(x)
    x = conv(filters, f"{name}_conv2")(x)
    x = batch_norm(f"{name}_bn2")(x)
    return layers.Activation("gelu", name=f"{name}_gelu2")(x)


def whitened_cnn_encoder(x, widths=WIDTHS):
    """Patch whitening, GELU, three conv groups at `widths`; returns the last feature map (3x3 for 32x32 images;
    `whitened_cnn_features` pools it). Images must be at least 16x16 (three halvings after the 2x2 whitening)."""
    if min(x.shape[1], x.shape[2]) < MIN_SIDE:
        raise SaehError(f"the whitened_cnn encoder needs images of at least {MIN_SIDE}x{MIN_SIDE} (three 2x2 pools "
                        f"after its 2x2 whitening); got {x.shape[1]}x{x.shape[2]}: pass --image-size or another "
                        "--encoder")
    x = PatchWhitening(name="encoder_whiten")(x)
    x = layers.Activation("gelu", name="encoder_whiten_gelu")(x)
    for index, filters in enumerate(widths, start=1):
        x = conv_group(x, filters, f"encoder_group{index}")
    return x


def whitened_cnn_features(feature_map):
    """The global max-pool of the last map (airbench94's MaxPool2d(3) on its 3x3 map)."""
    return layers.GlobalMaxPooling2D(name="encoder_pool")(feature_map)


def classifier_head(features, classes, name, activation):
    """The source's classifier on the pooled features: Dense without bias, logits x 1/9, then `activation` (float32)
    as the layer `name`, the output the methods' losses and metrics are keyed by."""
    logits = layers.Dense(classes, use_bias=False, name=f"{name}_logits")(features)
    logits = layers.Rescaling(HEAD_LOGIT_SCALE, name=f"{name}_scale")(logits)
    return layers.Activation(activation, name=name, dtype="float32")(logits)


def whitened_cnn_decoder(code, output_shape, widths=DECODER_WIDTHS):
    """A light decoder from the hash code back to the image, of our own design (the source has none): Dense to a
    4x4 map of widths[0] channels (GELU), then per width an upsampling x2, a 3x3 conv, BN and GELU, then a sigmoid
    3x3 conv to the image channels, resized to the image size if the upsamplings miss it (32x32 needs none). 94,467
    parameters against the encoder's 1.97 M, but it works up to full resolution: a SAEH step costs more than a
    SAEH-minus step (RESULTS.md, "Training throughput" and the cifar10-fast cells' epoch times)."""
    start = 4
    x = layers.Dense(start * start * widths[0], activation="gelu", name="decoder_dense")(code)
    x = layers.Reshape((start, start, widths[0]), name="decoder_reshape")(x)
    for index, filters in enumerate(widths, start=1):
        x = layers.UpSampling2D(2, name=f"decoder_up{index}")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"decoder_conv{index}")(x)
        x = batch_norm(f"decoder_bn{index}")(x)
        x = layers.Activation("gelu", name=f"decoder_gelu{index}")(x)
    if tuple(x.shape[1:3]) != tuple(output_shape[:2]):
        x = layers.Resizing(output_shape[0], output_shape[1], name="decoder_resize")(x)
    return layers.Conv2D(output_shape[-1], 3, padding="same", activation="sigmoid", name="y_decoded",
                         dtype="float32")(x)


def whitening_sample(images, seed):
    """`WHITENING_SAMPLE` training images drawn at random from (seed) (all of them when fewer): a draw, not the first
    rows, since image folders are stored class by class. `images`: an array or `saeh.data.files.ImageFiles`."""
    count = len(images)
    rows = np.sort(np.random.default_rng(seed).choice(count, min(count, WHITENING_SAMPLE), replace=False))
    return images.decode(rows) if hasattr(images, "decode") else np.asarray(images[rows])


def initialise(model, images, seed, whiten=True, identity=True):
    """Start a new run of `model`: fit its `PatchWhitening` layers (in nested models too) to
    `whitening_sample(images, seed)` when `whiten`; re-draw its partial-identity convs from PyTorch's default init
    alone (seeded) when not `identity` (an ablation). Returns how many whitening layers were fitted. The training
    loop calls it once, before a new run's first step."""
    whitening, identity_convs = [], []
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        if isinstance(layer, PatchWhitening):
            whitening.append(layer)
        elif isinstance(getattr(layer, "kernel_initializer", None), PartialDirac):
            identity_convs.append(layer)
        pending.extend(getattr(layer, "layers", ()))
    if whitening and whiten:
        sample = whitening_sample(images, seed)
        for layer in whitening:
            layer.adapt(sample)
    if not identity:
        for index, layer in enumerate(sorted(identity_convs, key=lambda found: found.name)):
            initializer = keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform",
                                                             seed=seed * 1000 + index)
            layer.kernel.assign(initializer(tuple(layer.kernel.shape)))
    return len(whitening) if whiten else 0
