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

A method whose loss is one function of several outputs and the batch (DPSH, ADSH, DSAH: a memory bank indexed by the
images' rows, the batch's labels) declares it as `saeh.methods.DeepMethod.batch_loss`; `BatchLossModel` hands its
terms to Keras as compiled per-output losses would be.

The classifier `y_predict` of SAEH, SSDH and CNNH+ takes its loss and metric from `classifier_loss` and
`classifier_metrics`: softmax cross-entropy on class ids, sigmoid (binary) cross-entropy on multi-hot labels, and
one accuracy named `accuracy` for both, logged as `y_predict_accuracy` / `val_y_predict_accuracy`, the value the
methods choose their best epoch by.
"""

import dataclasses
from typing import NamedTuple

import keras
import tensorflow as tf
from keras import ops

from saeh import defaults
from saeh.distributed import batch_mean
from saeh.errors import SaehError


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


class LossTerm(NamedTuple):
    """One term of a `batch_loss`: its `name`, its `value` (a scalar, a statistic of the whole batch, or one value
    per image) and the `weight` that multiplies its batch mean."""

    name: str
    value: object
    weight: float = 1.0


class PerImageTerm(keras.losses.Loss):
    """A loss term handed to Keras as a compiled per-output loss is: `PerImageTerm()(value, reference)` is the mean
    over the batch of `value` (a scalar comes back once per image, as in `BatchLoss`) divided by the replicas;
    `reference` is any per-image tensor of the batch (its first axis is the batch)."""

    def __init__(self, name="term", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return ops.broadcast_to(y_true, ops.shape(y_pred)[:1]) if len(y_true.shape) == 0 else y_true


@dataclasses.dataclass(frozen=True)
class AttachedLoss:
    """What `BatchLossModel.attach_loss` keeps: the function, its terms' names, the output whose rows are the
    images, and, for several terms, one mean of each term."""

    function: object
    terms: tuple
    per_image_output: str
    trackers: tuple


@keras.saving.register_keras_serializable(package="saeh")
class BatchLossModel(keras.Model):
    """A functional model whose loss is one function of all its outputs and the whole batch, attached by
    `attach_loss` (`saeh.training.compiled_model.build_compiled` does, for a method with a `batch_loss`). It trains
    on batches whose targets are the batch's per-sample tensors ({"label": ..., "index": ..., ...}). Saved and
    loaded as any functional model; a loaded one has no loss until one is attached.

    The loss is what Keras's compiled per-output losses would give for the same terms, to the last bit: each term's
    batch mean (`PerImageTerm`), taken as the term comes, times its weight, summed in order, plus the layers' own
    losses (weight decay); with several terms each is logged, unweighted, as `<term>_loss`.
    """

    def attach_loss(self, function, terms, per_image_output="hash_x"):
        """`function(outputs, batch)` yields the loss's terms one at a time (`LossTerm`s, or (name, value[,
        weight]) tuples), named `terms` in that order; `batch` holds the images (under "image") and the batch's
        per-sample tensors. A scalar term is handed to Keras once per row of the output `per_image_output`, as a
        compiled loss of that output would be. Call inside the strategy's scope."""
        trackers = tuple(keras.metrics.Mean(name=f"{term}_loss") for term in terms) if len(terms) > 1 else ()
        # Held outside Keras's attribute tracking: the trackers are not part of the saved model.
        self._attached = AttachedLoss(function, tuple(terms), per_image_output, trackers)

    @property
    def metrics(self):
        attached = getattr(self, "_attached", None)
        return [*super().metrics, *(attached.trackers if attached else ())]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        attached = getattr(self, "_attached", None)
        if attached is None:
            raise SaehError(f"model {self.name!r} has no batch loss attached; it was loaded, not built for training")
        reference = y_pred[attached.per_image_output]
        names, values = [], []
        # Each term is reduced as it comes, before the next is computed: the operations then come in the order of
        # compiled per-output losses, and TensorFlow's graph optimiser sums the gradients as it did for them.
        for index, term in enumerate(attached.function(y_pred, {**y, "image": x["image"] if isinstance(x, dict)
                                                                 else x})):
            term = LossTerm(*term)
            names.append(term.name)
            if index >= len(attached.terms) or term.name != attached.terms[index]:
                break
            value = PerImageTerm(name=term.name)(term.value, reference)
            if attached.trackers:
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                attached.trackers[index].update_state(value * replicas if replicas > 1 else value,
                                                      sample_weight=reference.shape[0])
            values.append(ops.multiply(value, term.weight))
        if tuple(names) != attached.terms:
            raise SaehError(f"the batch loss of model {self.name!r} gave the terms {names}; it declares "
                            f"{list(attached.terms)}")
        losses = [sum(values), *(ops.sum(loss) for loss in self.losses)]
        return losses[0] if len(losses) == 1 else ops.sum(losses)


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
