"""Pre-activation residual blocks of the original SAEH network (He et al., "Identity mappings", 2016).

Every convolution uses he_normal initialisation and L2 weight decay on its kernel, as the original does.
"""

import keras
from keras import layers

from saeh import defaults


def conv2d(filters, kernel_size, name, strides=1, weight_decay=defaults.WEIGHT_DECAY, activation=None, dtype=None):
    """A 'same'-padded Conv2D with the original's initialiser and weight decay."""
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        activation=activation,
        kernel_initializer=defaults.KERNEL_INITIALIZER,
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=name,
        dtype=dtype,
    )


def dense(units, name, activation=None, weight_decay=defaults.WEIGHT_DECAY, dtype=None):
    """A Dense layer with the original's initialiser and weight decay."""
    return layers.Dense(
        units,
        activation=activation,
        kernel_initializer=defaults.KERNEL_INITIALIZER,
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=name,
        dtype=dtype,
    )


def bn_relu(x, name):
    """BatchNormalization then ReLU, the pre-activation of every block."""
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def identity_block(x, filters, name, weight_decay=defaults.WEIGHT_DECAY):
    """BN, ReLU, Conv3x3, BN, ReLU, Conv3x3, plus the raw input (identity shortcut)."""
    y = bn_relu(x, f"{name}_pre1")
    y = conv2d(filters, 3, f"{name}_conv1", weight_decay=weight_decay)(y)
    y = bn_relu(y, f"{name}_pre2")
    y = conv2d(filters, 3, f"{name}_conv2", weight_decay=weight_decay)(y)
    return layers.Add(name=f"{name}_add")([y, x])


def projection_block(x, filters, name, mode, weight_decay=defaults.WEIGHT_DECAY):
    """A block that changes the number of filters and the resolution, with a 1x1 projection shortcut.

    mode="increase" (encoder): the first 3x3 conv and the 1x1 shortcut have stride 2 (half resolution).
    mode="decrease" (decoder): UpSampling2D(2) first; the pre-activation, both 3x3 convs and the 1x1 shortcut
    then read the upsampled tensor (double resolution).
    The shortcut reads the block's raw input (not its pre-activated version), as the original does.
    """
    if mode == "increase":
        strides = 2
    elif mode == "decrease":
        strides = 1
        x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
    else:
        raise ValueError(f"mode must be 'increase' or 'decrease'; got {mode!r}")
    y = bn_relu(x, f"{name}_pre1")
    y = conv2d(filters, 3, f"{name}_conv1", strides=strides, weight_decay=weight_decay)(y)
    y = bn_relu(y, f"{name}_pre2")
    y = conv2d(filters, 3, f"{name}_conv2", weight_decay=weight_decay)(y)
    shortcut = conv2d(filters, 1, f"{name}_shortcut", strides=strides, weight_decay=weight_decay)(x)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def stage(x, filters, blocks, name, mode=None, weight_decay=defaults.WEIGHT_DECAY):
    """`blocks` residual blocks at `filters`; the first is a projection block when `mode` is given."""
    for index in range(blocks):
        block_name = f"{name}_block{index + 1}"
        if index == 0 and mode is not None:
            x = projection_block(x, filters, block_name, mode, weight_decay=weight_decay)
        else:
            x = identity_block(x, filters, block_name, weight_decay=weight_decay)
    return x
