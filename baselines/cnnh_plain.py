"""CNNH, the plain method (Xia, Pan, Lai, Liu & Yan, "Supervised hashing for image retrieval via image
representation learning", AAAI 2014): stage 2 regresses the stage-1 codes and nothing else.

Stage 1 is CNNH+'s (`baselines.cnnh.prepare_stage1`, solved by `baselines.cnnh_codes`): the same training labels,
bits and seed give the same approximate codes H. Stage 2 trains the encoder and one sigmoid layer `hash_x` towards
(H + 1) / 2 by binary cross-entropy. CNNH+ (`baselines.cnnh`) adds a classifier beside `hash_x`; this is the method
without it, as the paper's output layer of q units (q + C for CNNH+).

Sources (METHODS.md section 10): no code of CNNH is public (the authors' code page is not on GitHub). The paper's
loss on the q outputs (squared error or cross-entropy) could not be read, [unverified]; we take CNNH+'s
cross-entropy, so that the two methods differ by the classifier alone. swuxyj/DeepHash-pytorch `CNNH.py` l.22-38,
96 regresses a linear layer by squared error instead (and reaches mAP 0.134 on CIFAR-10 at 48 bits, comment
l.19-20). The best epoch is the one of the lowest validation loss: there is no classifier accuracy to watch. The
validation targets are `baselines.cnnh.stage1_targets`' (validation labels never enter stage 1). Encoder,
optimiser, schedule and weight decay: SAEH's, borrowed as CNNH+ borrows them.
"""

import dataclasses

import keras

from baselines.cnnh import RECIPE as CNNH_PLUS_RECIPE
from baselines.cnnh import Stage1Hyperparameters, prepare_stage1
from saeh import defaults
from saeh.methods import DeepMethod
from saeh.models import blocks, encoders
from saeh.registry import register


def build_cnnh(spec, hyperparameters):
    """Encoder, then the sigmoid code layer `hash_x` (bits units) alone."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    code = blocks.dense(spec.hash_bits, "hash_x", activation="sigmoid", dtype="float32")(features)
    return keras.Model(images, {"hash_x": code}, name="cnnh")


def cnnh_compile_arguments(spec, state, hyperparameters):
    return {"loss": {"hash_x": "binary_crossentropy"}, "loss_weights": {"hash_x": 1.0}}


def _targets(images, batch):
    return {"hash_x": batch["code"]}


CNNH = register(DeepMethod(
    name="cnnh",
    summary="CNNH: stage 1 factorises label similarity into codes; stage 2 regresses them (no classifier)",
    build=build_cnnh,
    compile_arguments=cnnh_compile_arguments,
    targets=_targets,
    hyperparameters=Stage1Hyperparameters(),
    monitor=("val_loss", "min"),
    prepare=prepare_stage1,
    recipe=dataclasses.replace(CNNH_PLUS_RECIPE, name="cnnh"),
), listing_order=45)  # beside CNNH+ (50), before it as in the paper
