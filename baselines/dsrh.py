"""DSRH, deep semantic ranking based hashing (Zhao, Huang, Wang & Tan, "Deep semantic ranking based hashing for
multi-label image retrieval", CVPR 2015): its NDCG-weighted ranking loss and balance term as functions, then the
registered method.

Defined for multi-label data: an image's relevance r to a query is the number of labels they share, and the loss
ranks the more relevant above the less. On single-label data r is 0 or 1, and the loss degenerates to a triplet
loss (positive above negative) weighted by 1 / Z, with Z the query's ideal DCG.

What we follow (facts and sources: METHODS.md section 13; the official code is zhaofang0627/cuda-convnet-for-hashing
at f47ecfe, `LocRankCostLayer`, `layer_kernels.cu` l.349-395):

- Hash function: the paper's h(x) = sign(w^T [f_a(x); f_b(x)]), a skip from the lower features; as coded, a logistic
  layer on [fc7; fc6], the test bit being sigmoid > 0.5. Ours: `hash_x` = sigmoid(Dense) on [`dsrh_fc7` (a ReLU
  layer of 512 units on SAEH's encoder's features); those features].
- Ranking loss, the paper's: for a query q and its ranked list, with h~ = 2 sigmoid - 1 and the surrogate Hamming
  distance d(a, b) = (bits - h~_a . h~_b) / 2 (as coded),

      L_q = sum_i sum_{j: r_j < r_i} w(r_i, r_j) [d(q, i) - d(q, j) + rho]_+,   w(r_i, r_j) = (2^r_i - 2^r_j) / Z,

  rho = 5 (hard-coded, l.352; the paper's value is [unverified]) and Z the ideal DCG of the query's list,
  sum_k (2^r_(k) - 1) / ln(1 + k) over its relevances sorted down (the natural log, as the code's Z). Our list
  for a query is the other images of its batch (each batch image a query in turn); the code's list holds at most
  three images (an image of the highest relevance, one lower, one of none). So that a batch of 100 does not weigh
  the loss by its ~10^4 pairs, L_q is divided by the number of its pairs (i, j) with r_i > r_j, and the loss is the
  mean over the queries that have one.
- Balance term, the paper's: (alpha / 2) ||mean over the batch of h~(q)||^2, alpha = 1 (the code's `rho` = 1; the
  code applies it to the query stream alone and scales it by each triplet's weight: not followed).
- The paper's (beta / 2) ||W||^2 is the recipe's weight decay.
"""

import dataclasses

import keras
from keras import ops

from saeh import defaults, recipes
from saeh.methods import SIGMOID_CODES, DeepMethod, Hyperparameters, hyperparameter
from saeh.models import blocks, encoders
from saeh.pairs import ordered_pairs
from saeh.registry import register

MARGIN = 5.0  # rho, hard-coded in computeLocRankCost
BALANCE_WEIGHT = 1.0  # alpha (`rho` in the layer's config)
FC7_UNITS = 512


def relevance_levels(labels_a, labels_b):
    """(A, B) float32 matrix of the number of labels row i of `labels_a` shares with row j of `labels_b` (one-hot
    or multi-hot rows)."""
    labels_a = ops.cast(ops.convert_to_tensor(labels_a), "float32")
    labels_b = ops.cast(ops.convert_to_tensor(labels_b), "float32")
    return ops.matmul(labels_a, ops.transpose(labels_b))


def ideal_dcg(levels, listed):
    """Per row of `levels` ((Q, N) relevances), sum_k (2^r_(k) - 1) / ln(1 + k) over the entries `listed` (0/1)
    sorted by decreasing relevance."""
    gains = (ops.power(2.0, levels) - 1.0) * listed
    sorted_gains = ops.flip(ops.sort(gains, axis=-1), axis=-1)
    ranks = ops.arange(1, ops.shape(levels)[-1] + 1, dtype="float32")
    return ops.sum(sorted_gains / ops.log(1.0 + ranks), axis=-1)


def semantic_ranking_loss(outputs, labels, margin=MARGIN):
    """The NDCG-weighted ranking loss of the module docstring over a batch: `outputs` the sigmoid outputs (B, bits),
    `labels` their one-hot or multi-hot rows; each image a query, the others its list."""
    outputs = ops.cast(ops.convert_to_tensor(outputs), "float32")
    signed = 2.0 * outputs - 1.0
    bits = ops.cast(ops.shape(outputs)[-1], "float32")
    distances = 0.5 * (bits - ops.matmul(signed, ops.transpose(signed)))  # d(q, i)
    levels = relevance_levels(labels, labels)
    listed = ordered_pairs(ops.shape(outputs)[0])  # a query's list: the batch but itself
    pairs = listed[:, :, None] * listed[:, None, :] * ops.cast(levels[:, :, None] > levels[:, None, :], "float32")
    normaliser = ideal_dcg(levels, listed)
    weights = (ops.power(2.0, levels)[:, :, None] - ops.power(2.0, levels)[:, None, :]) / \
        ops.maximum(normaliser, 1e-12)[:, None, None]
    hinges = ops.maximum(0.0, distances[:, :, None] - distances[:, None, :] + margin)
    pair_counts = ops.sum(pairs, axis=(1, 2))
    per_query = ops.sum(pairs * weights * hinges, axis=(1, 2)) / ops.maximum(pair_counts, 1.0)
    ranked = ops.cast(pair_counts > 0, "float32")
    return ops.sum(per_query) / ops.maximum(ops.sum(ranked), 1.0)


def balance_term(outputs):
    """(1/2) ||mean over the batch of (2 sigmoid - 1)||^2. Unweighted: alpha is the term's weight."""
    signed = 2.0 * ops.cast(ops.convert_to_tensor(outputs), "float32") - 1.0
    return 0.5 * ops.sum(ops.square(ops.mean(signed, axis=0)))


def dsrh_batch_loss(outputs, batch, spec, state, hyperparameters):
    """The ranking loss, then alpha times the balance term (`DeepMethod.batch_loss`)."""
    codes = ops.cast(outputs["hash_x"], "float32")
    yield "dsrh_rank", semantic_ranking_loss(codes, batch["label"], hyperparameters.margin)
    yield "dsrh_balance", balance_term(codes), hyperparameters.balance_weight


def build_dsrh(spec, hyperparameters):
    """SAEH's encoder (f_b), `dsrh_fc7` (f_a) and `hash_x` = sigmoid(Dense) on [f_a; f_b]."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    fc7 = blocks.dense(FC7_UNITS, "dsrh_fc7", activation="relu")(features)
    both = keras.layers.Concatenate(name="dsrh_skip")([fc7, features])
    codes = blocks.dense(spec.hash_bits, "hash_x", activation="sigmoid", dtype="float32")(both)
    return keras.Model(images, {"hash_x": codes}, name="dsrh")


# The released NUS-WIDE configuration: the backbone at 1e-4, the hash layer at 1e-3 (10x) on its fc7 input, each
# rate down to a tenth past half the run (cuda-convnet2's DiscreteExpLRS with tgtFactor 10, numSteps 2: two rates,
# the base one up to progress 0.5, base / 10 after it).
RECIPE = recipes.Recipe(
    name="dsrh",
    source="zhaofang0627/cuda-convnet-for-hashing at f47ecfe, layers/layer-params-nuswide-train.cfg: momentum 0.9, "
           "weight decay 5e-4, epsW 1e-4 (backbone), 1e-3 (hash layer, fc7 input), 2.5e-4 (fc6 input), "
           "schedule dexp tgtFactor=10 numSteps=2; batches of 512 (retrdata.py)",
    momentum=0.9, nesterov=False, learning_rate=1e-4, weight_decay=5e-4,
    schedule="drops", drops=(0.5,), drop_factor=0.1, drop_unit="step",
    layer_rates=(("hash_x/", 10.0),), batch_size=100,
    deviations=("the preset's steps, the rate down to a tenth at half of them",
                "the hash layer at 10x on its whole input (released: 10x on the fc7 input, 2.5x on the fc6 input)",
                "a batch of 100 images, each a query ranked against the others, instead of 512 images repeated by "
                "their rarest label and triplets of at most three listed images",
                "SAEH's encoder from scratch and one fc layer instead of a pretrained AlexNet's fc6 and fc7"),
)


@dataclasses.dataclass(frozen=True)
class DSRHHyperparameters(Hyperparameters):
    margin: float = hyperparameter(MARGIN, "non-negative", "margin rho of the ranking hinge (released: 5)")
    balance_weight: float = hyperparameter(BALANCE_WEIGHT, "non-negative",
                                           "weight alpha of the balance term (released: 1)")


DSRH = register(DeepMethod(
    name="dsrh",
    summary="DSRH: NDCG-weighted ranking hinge on multi-level similarity (shared labels) + balance term, sigmoid "
            "codes",
    build=build_dsrh,
    batch_loss=dsrh_batch_loss,
    loss_terms=("dsrh_rank", "dsrh_balance"),
    hyperparameters=DSRHHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    code=SIGMOID_CODES,
), listing_order=78)
