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
