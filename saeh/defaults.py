"""The paper's and the original code's hyperparameters, in one place.

Everything else (scripts, builders, the notebook) reads these names instead of repeating the numbers.
"""

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
# Step schedule: (first epoch, learning rate) for the original's 90 epochs.
LR_STEPS = ((0, 0.1), (30, 0.02), (55, 0.004), (75, 0.0008))

# Codes and evaluation.
THRESHOLD = 0.5  # hash_bin = hash_x > 0.5 for sigmoid outputs
TOP_K = 1000  # mAP@1000, as SSDH and SAEH report
RADIUS = 2  # precision within Hamming radius 2

# Data.
SEED = 0
PROTOCOL = "ssdh"
VALIDATION_SIZE = 0.1  # fraction of the training part held out for model selection


def learning_rate(epoch, epochs=EPOCHS, base=LEARNING_RATE, steps=LR_STEPS):
    """Learning rate of the original step schedule at `epoch` (0-based), rescaled to a run of `epochs` epochs and
    to a starting rate `base` (the steps keep their ratios: base, base/5, base/25, base/125).

    The boundaries keep their place as a fraction of the run (30/90, 55/90, 75/90 of it, rounded, and never
    before the second epoch, so the first epoch always trains at the initial rate): a 12-epoch run drops the
    rate after epochs 4, 7 and 10. With epochs=90 this is exactly the original schedule.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive; got {epochs!r}")
    rate = steps[0][1]
    for start, value in steps:
        if epoch >= (max(1, round(start * epochs / EPOCHS)) if start else 0):
            rate = value
    return rate if base == steps[0][1] else rate * base / steps[0][1]
