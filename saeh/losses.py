"""The terms of SAEH's objective (paper Eq. 7), each a small function of tensors, and the Keras objects that
attach them to the model's outputs.

With h the `hash_x` outputs of a batch (B images x K bits, in (0, 1)), x the input and x^ the decoded image:

    E1 = categorical cross-entropy of `y_predict`                       (supervised)
    E3 = -mean_{b,k} (h_bk - 0.5)^2                                      (binary: push outputs away from 0.5)
    E4 = sum_k (mean_b h_bk - 0.5)^2                                     (balance: each bit fires for half the batch)
    E2 = mean (x - x^)^2                                                 (recovery)
    total = E1 + alpha * E3 + beta * E4 + gamma * E2

Keras adds the L2 weight decay of the layers on top. Each term is reported on its own every epoch:
`y_predict_loss` (E1), `y_decoded_loss` (E2), `hash_x_loss` (alpha*E3 + beta*E4), `hash_x_binary` (E3) and
`hash_x_balance` (E4), in the progress bar, the history, the CSV log and TensorBoard.

The classifier `y_predict` of SAEH, SSDH and CNNH+ takes its loss and metric from `classifier_loss` and
`classifier_metrics`: softmax cross-entropy on class ids, sigmoid (binary) cross-entropy on multi-hot labels, and
one accuracy named `accuracy` for both, logged as `y_predict_accuracy` / `val_y_predict_accuracy`, the value the
methods choose their best epoch by.
"""

import keras
from keras import ops

from saeh import defaults
from saeh.distributed import batch_mean


def binary_term(codes):
    """E3 = -mean((h - 0.5)^2) over the batch and the bits; lowest when every output is 0 or 1."""
    return -ops.mean(ops.square(codes - 0.5))


def balance_term(codes):
    """E4 = sum over bits of (mean over the batch of h - 0.5)^2: SAEH balances each bit over the batch.

    With several replicas the batch is the global batch (`saeh.distributed.batch_mean`). (SSDH's 50%-fire-rate
    term balances each image over its bits instead; see baselines.ssdh.)
    """
    return ops.sum(ops.square(batch_mean(codes) - 0.5))


def recovery_term(images, decoded):
    """E2 = mean((x - x^)^2) over pixels and batch."""
    return ops.mean(ops.square(images - decoded))


class BatchLoss(keras.losses.Loss):
    """A loss of one value for the whole batch (a statistic of the batch, pairs within it): subclasses define
    `batch_loss(y_true, y_pred)` -> scalar.

    Keras divides a loss by the number of replicas under tf.distribute (the replicas' gradients are summed), but only
    a per-sample loss: a scalar returned by `call` passes unscaled (keras/src/losses/loss.py, `reduce_values`), and
    its gradient would be `replicas` times too large. The value is therefore handed to Keras once per image, whose
    mean over the batch is the value itself.
    """

    def batch_loss(self, y_true, y_pred):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        value = self.batch_loss(y_true, y_pred)
        return ops.broadcast_to(value, ops.shape(y_pred)[:1])


@keras.saving.register_keras_serializable(package="saeh")
class HashTermsLoss(BatchLoss):
    """alpha * E3 + beta * E4 on the `hash_x` output. Its target is ignored (the pipeline passes the labels)."""

    def __init__(self, alpha=defaults.ALPHA, beta=defaults.BETA, name="hash_terms", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def batch_loss(self, y_true, y_pred):
        return self.alpha * binary_term(y_pred) + self.beta * balance_term(y_pred)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package="saeh")
class RecoveryLoss(BatchLoss):
    """E2 on the `y_decoded` output; its target is the input image."""

    def __init__(self, name="recovery", **kwargs):
        super().__init__(name=name, **kwargs)

    def batch_loss(self, y_true, y_pred):
        return recovery_term(y_true, y_pred)


@keras.saving.register_keras_serializable(package="saeh")
class TermMean(keras.metrics.Mean):
    """The batch average of one loss term computed on an output, so each term can be watched on its own.

    `term` names one of `terms`; a baseline with terms of its own subclasses this and extends `terms`.
    """

    terms = {"binary": binary_term, "balance": balance_term}

    def __init__(self, term, name=None, **kwargs):
        super().__init__(name=name or term, **kwargs)
        if term not in self.terms:
            raise ValueError(f"unknown loss term {term!r}; expected one of {', '.join(sorted(self.terms))}")
        self.term = term

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(self.terms[self.term](y_pred))

    def get_config(self):
        return {**super().get_config(), "term": self.term}


CLASSIFIER_ACCURACY = "accuracy"


def classifier_loss(multi_label):
    """E1: categorical cross-entropy of a softmax over classes, or binary cross-entropy of one sigmoid per label
    for multi-hot labels."""
    return "binary_crossentropy" if multi_label else "categorical_crossentropy"


def classifier_metrics(multi_label):
    """The metrics of the classifier `y_predict`: its accuracy, named `CLASSIFIER_ACCURACY` whatever the labels.

    On class ids it is the share of images whose top class is right. On multi-hot labels it is the share of
    (image, label) decisions a 0.5 threshold on the sigmoid gets right (Keras's binary accuracy); the share of
    images with every label right would be too coarse to rank epochs on a small validation set.
    """
    if multi_label:
        return [keras.metrics.BinaryAccuracy(name=CLASSIFIER_ACCURACY)]
    return [keras.metrics.CategoricalAccuracy(name=CLASSIFIER_ACCURACY)]


def saeh_compile_arguments(alpha=defaults.ALPHA, beta=defaults.BETA, gamma=defaults.GAMMA, multi_label=False):
    """The `loss`, `loss_weights` and `metrics` arguments of `model.compile` for SAEH (and SAEH-minus)."""
    loss = {
        "y_predict": classifier_loss(multi_label),
        "hash_x": HashTermsLoss(alpha=alpha, beta=beta),
    }
    loss_weights = {"y_predict": 1.0, "hash_x": 1.0}
    if gamma > 0:
        loss["y_decoded"] = RecoveryLoss()
        loss_weights["y_decoded"] = float(gamma)
    metrics = {
        "y_predict": classifier_metrics(multi_label),
        "hash_x": [TermMean("binary"), TermMean("balance")],
    }
    return {"loss": loss, "loss_weights": loss_weights, "metrics": metrics}
