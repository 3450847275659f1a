"""Layers the methods beyond SAEH put in their networks, registered so that saved models load anywhere."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="saeh")
class ScaledTanh(keras.layers.Layer):
    """tanh(beta * x) with beta a non-trainable scalar weight that a callback raises during training (HashNet's
    continuation). Saved with the model, so a checkpoint resumes at its beta; sign(output) does not depend on it."""

    def __init__(self, initial_beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_beta = float(initial_beta)

    def build(self, input_shape):
        self.beta = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_beta),
                                    trainable=False, name="beta", dtype="float32")

    def call(self, inputs):
        return ops.tanh(ops.cast(self.beta, inputs.dtype) * inputs)

    def get_config(self):
        return {**super().get_config(), "initial_beta": self.initial_beta}


@keras.saving.register_keras_serializable(package="saeh")
class DivideAndEncode(keras.layers.Layer):
    """DNNH's divide-and-encode module: the features split into `bits` equal slices, slice j -> one linear unit ->
    sigmoid, so that bit j sees slice j alone (the released Caffe net's Slice, InnerProduct(1) per slice, Sigmoid;
    weights N(0, 0.1), bias 0). The feature width must be a multiple of `bits`."""

    def __init__(self, bits, weight_decay=0.0, **kwargs):
        super().__init__(**kwargs)
        self.bits, self.weight_decay = int(bits), float(weight_decay)

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None or width % self.bits:
            raise ValueError(f"layer {self.name!r}: the feature width ({width}) must be a multiple of the "
                             f"{self.bits} bits, one equal slice a bit")
        regularizer = keras.regularizers.L2(self.weight_decay) if self.weight_decay else None
        self.kernel = self.add_weight(shape=(self.bits, width // self.bits), name="kernel", regularizer=regularizer,
                                      initializer=keras.initializers.RandomNormal(stddev=0.1))
        self.bias = self.add_weight(shape=(self.bits,), name="bias", initializer="zeros")

    def call(self, inputs):
        slices = ops.reshape(inputs, (-1, self.bits, inputs.shape[-1] // self.bits))
        return ops.sigmoid(ops.sum(slices * ops.cast(self.kernel, slices.dtype), axis=-1)
                           + ops.cast(self.bias, slices.dtype))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.bits)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "weight_decay": self.weight_decay}
