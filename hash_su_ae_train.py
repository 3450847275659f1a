"""Train SAEH: `python hash_su_ae_train.py` (see --help).

Edit the settings below, as in the original script (put a number in place of a default), or override any of them
with its flag (--which-data, --stack-num, --hash-bits, ...). The run directory gets checkpoints, logs, the model and
the codes of the query and database sets; mAP@1000 and precision within Hamming radius 2 are printed at the end.
"""

import sys

from saeh import defaults
from saeh.cli import run
from saeh.cli.train import main

which_data = "cifar10"  # mnist-sample (bundled), mnist, cifar10, svhn, folder, list, or a folder path
num_classes = None  # None: taken from the data
stack_num = defaults.STACK_NUM  # 18 blocks per stage is the paper's ResNet-110; 1 trains fast on a CPU
batch_size = defaults.BATCH_SIZE  # 64
epochs = defaults.EPOCHS  # 90; the learning-rate steps are scaled to other lengths
alpha = defaults.ALPHA  # 0.1, binary term
beta = defaults.BETA  # 0.1, balance term
gamma = defaults.GAMMA  # 1.0, decoder (recovery) term; 0 is SAEH-minus
hash_bits = defaults.HASH_BITS  # 32
load_path = None  # weights to start from (.keras or .weights.h5): weights only, then the whole schedule
save_dir = "runs"

if __name__ == "__main__":
    settings = dict(which_data=which_data, num_classes=num_classes, stack_num=stack_num, batch_size=batch_size,
                    epochs=epochs, alpha=alpha, beta=beta, gamma=gamma, hash_bits=hash_bits, load_path=load_path,
                    save_dir=save_dir)
    sys.exit(run(main, settings=settings))
