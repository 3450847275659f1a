"""ADSH (Jiang & Li, "Asymmetric deep supervised hashing", AAAI 2018): the network hashes the queries; the database
codes V are learned directly, in closed form.

The database is the training set, n points, every one of which gets a learned code. Each outer iteration samples
m of them (Omega) and, with u_i = tanh(F(x_i)) the network's output for a sampled image and S the soft similarity
of the sampled points to all n (1 when two images share a label, -r otherwise, r = #similar / #dissimilar in the
m x n block), minimises

    L = sum_{i in Omega} sum_{j=1..n} (u_i^T v_j - c S_ij)^2 + gamma sum_{i in Omega} ||v_{Omega_i} - u_i||^2,

first over the network for `inner_epochs` passes over the m sampled images with V fixed (SGD), then over V in
{-1, +1}^(n x c) with the network fixed, one bit column at a time in closed form (`baselines.adsh_solver`). The
batch loss is the official PyTorch code's: the batch's sum of both terms divided by n * B.

In our one training loop an epoch is one outer iteration: the method's `sampler` gives the epoch's rows (m rows
drawn from (seed, epoch), each visited `inner_epochs` times in fresh orders), the loss writes each visited image's
output into a bank U (as the official code keeps U[batch] = output), and a callback updates V from U[Omega] at the
end of the epoch, before the checkpoint saves weights, U and V together. r is set at the start of each epoch from
its sample. The best epoch is the lowest validation loss (the validation images against V, without the
quantisation term, which only sampled training images have). Codes: queries sign(u) through the network; the
database codes are sign(V) (`database_codes`), and nothing else.

The database and V. The n rows of V are the run's training images and then its validation images: the database of
protocol ssdh (the training set, validation images included). The validation images are never sampled (the network
never trains on them, and they still select the epoch), but they are columns of S through their labels, as every
database image is in ADSH, so each gets the code its labels give (the V step's argument for an unsampled row is
-2c sum_i S_ij u_i plus the other bits' term: the code of a training image with the same labels not sampled yet).
Learning their codes without their labels would leave that argument empty (a code unrelated to the image), and
their network codes, mixed with learned ones, are made as the queries' are and sit near them whatever their
labels, which ruins the ranking (as measured: precision by radius bimodal). So the database must hold the training and validation images and no
other image: under protocol dpsh (53,500 of the 59,000 database images neither) and dsh (the test set) the run is
refused before training, as it is when the validation set is the query set (`saeh.cli.common.
learned_database_rows`). ADSH's own CIFAR-10 protocol (database = training set = 59,000 images) is not one of ours.

Defaults: m = 2000 (`num_samples`, capped at n), gamma = 200, 3 inner epochs: the paper's and the official code's
(T_out = 50 outer iterations there; here the run's --epochs, which also scale the step schedule; under a
preset, as many as give the preset's image visits: 27 for `mnist-cpu`, see `DeepMethod.epochs_for_passes`). V
starts at 0, as in the official PyTorch code. The network is SAEH's encoder with a tanh code layer. Recipe
(`RECIPE`): the official PyTorch code's, plain SGD at 0.001, weight decay 5e-4, the rate divided by 10 from outer
iterations 11, 21, 31 and 41 of 50 (kept at those fractions of the run), batch 64. It replaced Nesterov momentum 0.9
at 0.001 (SAEH's optimiser), which saturated the tanh outputs: measured on 5,000 CIFAR-10 images with this network,
loss and solver (issue 27), Nesterov 0.9 at 1e-3 left 21-22 of 32 bits constant from the second outer iteration;
plain SGD at 1e-3, 2-4; at 1e-4 (either), none. Earlier, under SAEH's optimiser, 0.01 saturated every image to the
same code (30 of 32 bits constant, mAP@all 16.49 under DPSH's protocol).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from baselines.adsh_solver import dissimilar_weight, soft_similarity, update_database_codes
from baselines.dpsh import write_rows
from saeh import recipes
from saeh.data.pipeline import label_matrix
from saeh.method_state import MethodState
from saeh.methods import SIGN_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import build_code_network
from saeh.pairs import similar_pairs
from saeh.registry import register

NUM_SAMPLES, GAMMA, INNER_EPOCHS = 2000, 200.0, 3
LEARNING_RATE = 0.001

# The official PyTorch recipe. Its batch loss is ours (the batch's sum over n x B), so its rate means the same step
# here. The rate is divided by 10 after outer iterations 10, 20, 30 and 40 (0-based) of 50: the first iterations at
# the new rates are 11, 21, 31 and 41, kept at those fractions of the run's outer iterations.
RECIPE = recipes.Recipe(
    name="adsh",
    source="jiangqy/ADSH-AAAI2018 at 2e95574, ADSH_pytorch/ADSH_CIFAR_10.py: l.184 optim.SGD without momentum, "
           "l.40 lr 1e-3, l.160 weight decay 5e-4, l.142-146 and l.220 lr / 10 after outer iterations 10/20/30/40 "
           "of --max-iter 50 (l.29), l.33 batch 64",
    momentum=0.0, nesterov=False, learning_rate=LEARNING_RATE, weight_decay=5e-4,
    schedule="drops", drops=(11 / 50, 21 / 50, 31 / 50, 41 / 50), drop_factor=0.1, batch_size=64,
    deviations=(
        "the preset's outer iterations (as many as give its image visits, DeepMethod.epochs_for_passes) instead "
        "of 50, the drops at the same fractions of them",
        "SAEH's encoder from scratch instead of an ImageNet ResNet-50; the rate kept: measured on 5,000 CIFAR-10 "
        "images (issue 27), plain SGD at 1e-3 leaves 2-4 of 32 bits constant where Nesterov 0.9 at 1e-3 (our "
        "earlier recipe) left 21-22",
    ),
)


@dataclasses.dataclass(frozen=True)
class ADSHHyperparameters(Hyperparameters):
    num_samples: int = hyperparameter(NUM_SAMPLES, "positive integer",
                                      "m: training images sampled per outer iteration (capped at their number)")
    gamma: float = hyperparameter(GAMMA, "non-negative", "weight of the quantisation term ||v - u||^2")
    inner_epochs: int = hyperparameter(INNER_EPOCHS, "positive integer",
                                       "passes over the sampled images per outer iteration")


def sampled_rows(epoch, count, seed, num_samples):
    """Omega of outer iteration `epoch`: min(num_samples, count) distinct training rows drawn from (seed, epoch)."""
    rng = np.random.default_rng([int(seed), int(epoch), 0xAD5])
    return np.sort(rng.choice(count, size=min(int(num_samples), count), replace=False))


def epoch_order(epoch, count, seed, hyperparameters):
    """The rows an epoch visits: Omega, `inner_epochs` times, each pass in its own order."""
    omega = sampled_rows(epoch, count, seed, hyperparameters.num_samples)
    rng = np.random.default_rng([int(seed), int(epoch), 0xAD6])
    return np.concatenate([rng.permutation(omega) for _ in range(int(hyperparameters.inner_epochs))])


def adsh_state(context, hyperparameters):
    """V (n x c, zeros) and its rows' labels `code_labels`, n = the training images then the validation images (the
    database); the bank U of the training images' outputs (one row each, plus a last scratch row); and r."""
    train, validation, bits = context.train, context.validation, context.spec.hash_bits
    labels = np.concatenate([label_matrix(train.labels, context.spec.num_classes),
                             label_matrix(validation.labels, context.spec.num_classes)])
    return MethodState(codes=np.zeros((len(labels), bits), np.float32),
                       bank=np.zeros((len(train) + 1, bits), np.float32), code_labels=labels,
                       dissimilar_weight=np.float32(1.0))


def adsh_batch_loss(outputs, batch, spec, state, hyperparameters):
    """The batch's ADSH loss against V (module docstring), after writing its outputs into the bank
    (`DeepMethod.batch_loss`). A training image's row (`index`; -1 for validation images) is also its row of V,
    whose first rows are the training images'."""
    yield "adsh", adsh_loss(outputs["hash_x"], batch["label"], batch["index"], state, hyperparameters.gamma)


def adsh_loss(outputs, labels, rows, state, gamma):
    """The ADSH loss of the outputs `outputs` of images of labels `labels` and training-set rows `rows` against the
    codes V of `state`, after writing the outputs into its bank."""
    import tensorflow as tf

    u = ops.cast(outputs, "float32")
    write_rows(state["bank"], rows, ops.stop_gradient(u))
    codes = state["codes"]
    shares = similar_pairs(labels, state["code_labels"])
    similarity = shares - (1.0 - shares) * state["dissimilar_weight"]
    square = ops.sum(ops.square(ops.matmul(u, ops.transpose(codes)) - codes.shape[1] * similarity))
    trained = ops.cast(rows >= 0, "float32")[:, None]
    own_codes = tf.gather(codes, tf.maximum(rows, 0))
    quantisation = float(gamma) * ops.sum(trained * ops.square(own_codes - u))
    count = ops.cast(ops.shape(codes)[0], "float32")
    batch = ops.cast(ops.shape(u)[0], "float32")
    return (square + quantisation) / (count * batch)


class DatabaseCodeUpdate(keras.callbacks.Callback):
    """At the start of an epoch: r of its sample; at its end: V from the outputs of its sample (closed form).

    `prior`: optional function (model) -> (P, mu), a target of the database codes and its weight (DSAH).
    Logs `database_codes_agree`: the fraction of the sample's bits whose new database code has the sign of the
    network's output (how far the two halves of the asymmetric pair still disagree)."""

    def __init__(self, state, count, seed, bits, num_samples, gamma, log, prior=None):
        super().__init__()
        self.state, self.count, self.seed, self.bits = state, count, seed, bits
        self.num_samples, self.gamma, self.log, self.prior = num_samples, gamma, log, prior

    def _sample(self, epoch):
        """The rows this epoch visits (the sampler's, by the same seed; training images) and the labels of every
        row of V (training then validation images)."""
        return sampled_rows(epoch, self.count, self.seed, self.num_samples), self.state["code_labels"].numpy()

    def on_epoch_begin(self, epoch, logs=None):
        omega, labels = self._sample(epoch)
        self.state["dissimilar_weight"].assign(np.float32(dissimilar_weight(labels[omega], labels)))

    def on_epoch_end(self, epoch, logs=None):
        omega, labels = self._sample(epoch)
        similarity = soft_similarity(labels[omega], labels).astype(np.float32)
        outputs = self.state["bank"].numpy()[omega]
        prior, weight = (None, 0.0) if self.prior is None else self.prior(self.model)
        codes = update_database_codes(self.state["codes"].numpy(), outputs, omega, similarity, self.bits, self.gamma,
                                      prior, weight)
        self.state["codes"].assign(codes.astype(np.float32))
        if logs is not None:
            logs["database_codes_agree"] = float(np.mean(np.sign(outputs) == codes[omega]))


def build_adsh(spec, hyperparameters):
    return build_code_network(spec, "adsh", activation="tanh")


def adsh_callbacks(context, model, state, hyperparameters, prior=None):
    """The V step after each epoch (`DatabaseCodeUpdate`, with DSAH's `prior`)."""
    return [DatabaseCodeUpdate(state, len(context.train), context.seed, context.spec.hash_bits,
                               hyperparameters.num_samples, hyperparameters.gamma, context.log, prior=prior)]


ADSH = register(DeepMethod(
    name="adsh",
    summary="ADSH: asymmetric; the network hashes sampled queries, database codes V are learned in closed form",
    build=build_adsh,
    batch_loss=adsh_batch_loss,
    loss_terms=("adsh",),
    hyperparameters=ADSHHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGN_CODES,
    state=adsh_state,
    callbacks=adsh_callbacks,
    sampler=epoch_order,
    database_codes=lambda arrays: arrays["codes"],
), listing_order=100)
