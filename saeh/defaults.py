"""The paper's and the original code's hyperparameters, in one place.

Everything else (scripts, builders, the notebook) reads these names instead of repeating the numbers.
"""

import math

from saeh import validation

# Network (original hash_model.py).
STACK_NUM = 18  # residual blocks per stage; 18 gives the paper's ResNet-110-like network
HASH_BITS = 32
WEIGHT_DECAY = 5e-4  # L2 on every conv/dense kernel
KERNEL_INITIALIZER = "he_normal"
ENCODER = "resnet_cifar"

# Loss (paper Eq. 7): total = E1 + ALPHA * E3 + BETA * E4 + GAMMA * E2.
ALPHA = 0.1  # binary term E3
BETA = 0.1  # balance ("50% fire rate") term E4
GAMMA = 1.0  # recovery (decoder) term E2; 0 gives SAEH-minus

# Training (original hash_su_ae_train.py).
EPOCHS = 90
BATCH_SIZE = 64
LEARNING_RATE = 0.1
MOMENTUM = 0.9
NESTEROV = True
# Step schedule of the original's scheduler(epoch), which Keras calls with 0-based epochs: 0.1 while epoch <= 30,
# 0.02 while <= 55, 0.004 while <= 75, then 0.0008. As (first 0-based epoch at the rate, rate): 31 / 25 / 20 / 14
# epochs at the four rates.
LR_STEPS = ((0, 0.1), (31, 0.02), (56, 0.004), (76, 0.0008))

# Codes and evaluation.
THRESHOLD = 0.5  # hash_bin = hash_x > 0.5 for sigmoid outputs
TOP_K = 1000  # mAP@1000, as SSDH and SAEH report
RADIUS = 2  # precision within Hamming radius 2

# Data.
SEED = 0
PROTOCOL = "ssdh"
VALIDATION_SIZE = 0.1  # fraction of the training part held out for model selection


def step_starts(epochs, steps=LR_STEPS):
    """The 0-based epoch at which each rate of `steps` starts, in a run of `epochs` epochs.

    With epochs=90 these are the original's 0, 31, 56 and 76. Otherwise each start keeps its place as a fraction
    of the run (31/90, 56/90 and 76/90 of it), rounded half up, then moved just enough that the starts are strictly
    increasing and, when the run has at least as many epochs as rates, the last start lies inside the run: the
    first epoch always trains at the initial rate, and from 4 epochs on every rate is used (4 epochs: one each).
    """
    epochs = validation.positive_int(epochs, "epochs")
    starts = [math.floor(start * epochs / EPOCHS + 0.5) for start, _ in steps]
    for index in range(1, len(starts)):
        starts[index] = max(starts[index], starts[index - 1] + 1)
    if epochs >= len(starts):
        for index in range(len(starts) - 1, 0, -1):
            starts[index] = min(starts[index], epochs - (len(starts) - index))
    return starts


def learning_rate(epoch, epochs=EPOCHS, base=LEARNING_RATE, steps=LR_STEPS):
    """Learning rate of the original step schedule at `epoch` (0-based) of a run of `epochs` epochs (see
    `step_starts`), for a starting rate `base`: the steps keep their ratios (base, base/5, base/25, base/125).

    With epochs=90 this is exactly the original's scheduler. A 12-epoch run trains 4 / 3 / 3 / 2 epochs at the
    four rates (starts 0, 4, 7, 10).
    """
    rate = steps[0][1]
    for start, (_, value) in zip(step_starts(epochs, steps), steps):
        if epoch >= start:
            rate = value
    return rate if base == steps[0][1] else rate * base / steps[0][1]
