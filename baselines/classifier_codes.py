"""Classifier codes: the baseline of Sablayrolles, Douze, Usunier & Jegou, "How should we evaluate supervised
hashing?" (ICASSP 2017; arXiv 1609.06753), which encodes a plain classifier's class probabilities.

The network is SAEH's encoder and a classifier `y_predict` (softmax over the C classes), trained by classification
alone; with p the predicted probabilities of an image of class y:

    loss = -mean over the batch of log p_y          (softmax cross-entropy; no term on the codes)

The codes are computed from p inside the model by a layer `hash_x` that is not trained, chosen by the
hyperparameter `encoding`:

- "lsh" (default; the paper's better encoding, LSH-48 0.295 against one-hot 0.267 mAP with 1k labels in its
  README), faiss `IndexLSH(C, bits, rotate_data=True, train_thresholds=True)` in the paper's code:
  hash_x = R p - t, with R a fixed random orthogonal projection from C to `bits` dimensions (orthonormal rows when
  bits <= C; a tight frame, orthonormal columns, when bits > C, as faiss's random rotation does) and t the per-bit
  median of R p; bit = hash_x > 0 (`LINEAR_CODES`). R is drawn when the model is built, from Keras's global
  generator, which `saeh.training.train` seeds with the run's seed (faiss's own generator and seed are not
  reproduced). `hash_x` is a plain Dense layer (kernel R, bias -t), not trainable, without weight decay.
- "onehot" (the paper's one-hot encoding): hash_x = the one-hot vector of the argmax of p, so bit c is on exactly
  when c is the predicted class; it needs bits == C.

Where the medians come from. faiss trains the thresholds on the database. Ours are the medians over the TRAINING
images (`ProjectionThresholds`), the only set the training loop has: under the default protocol the database is
the training set plus the validation images, so the training images are nearly all of it, and the validation
images (the query set under --select-on-test) must not shape anything the model keeps. The medians are computed
with the model in inference mode, after every epoch that can become the model's final weights (an epoch whose
validation accuracy is at least the best so far, and the last epoch), so each best-epoch checkpoint holds the
thresholds of its own weights; a threshold set once at the end of training would be lost when the loop reloads the
best epoch's weights.

Differences from the paper's pipeline, beyond SAEH's encoder, optimiser, schedule, weight decay and batch size
(shared by every method so that only the loss differs): the paper's classifier is a logistic regression on RBF
features of GIST; its labelled database items get their true one-hot label instead of the prediction (ours get the
network's prediction, as every method's database does); its one-hot encoding is asymmetric (queries keep p and are
ranked by inner product), ours gives both sides the one-hot code and ranks by Hamming distance (0 for the same
predicted class, 2 otherwise); faiss puts a value equal to its threshold on the 1 side, we on the 0 side (as the
rest of the project does). On multi-hot labels the classifier is SAEH's sigmoid one (binary cross-entropy), which
the paper does not have; "onehot" then keeps only the most probable label.

The best epoch is the one with the highest validation accuracy of the classifier.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from saeh import defaults
from saeh import recipes
from saeh.errors import SaehError
from saeh.losses import CLASSIFIER_ACCURACY, classifier_loss, classifier_metrics
from saeh.methods import LINEAR_CODES, DeepMethod, Hyperparameters, classification_targets, hyperparameter
from saeh.models import encoders
from saeh.registry import register

ENCODINGS = ("lsh", "onehot")
MONITOR = (f"val_y_predict_{CLASSIFIER_ACCURACY}", "max")


@keras.saving.register_keras_serializable(package="saeh")
class OneHotArgmax(keras.layers.Layer):
    """The one-hot vector (float32) of the argmax of its input's last axis; the first maximum on a tie."""

    def call(self, inputs):
        return ops.one_hot(ops.argmax(inputs, axis=-1), inputs.shape[-1], dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape


def check_encoding(encoding, spec):
    if encoding not in ENCODINGS:
        raise SaehError(f"encoding of method 'classifier-codes' must be one of {', '.join(ENCODINGS)}; "
                        f"got {encoding!r}")
    if encoding == "onehot" and spec.hash_bits != spec.num_classes:
        raise SaehError(f"encoding 'onehot' of method 'classifier-codes' gives one bit per class, so it needs "
                        f"hash bits == classes; got {spec.hash_bits} hash bits and {spec.num_classes} classes")


@dataclasses.dataclass(frozen=True)
class ClassifierCodesHyperparameters(Hyperparameters):
    encoding: str = hyperparameter("lsh", None, f"how the probabilities become bits: one of {', '.join(ENCODINGS)}")


def build_classifier_codes(spec, hyperparameters):
    """Encoder, classifier `y_predict`, then the untrained code layer `hash_x` on its probabilities."""
    encoding = hyperparameters.encoding
    check_encoding(encoding, spec)
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    probabilities = encoders.classifier_head(features, spec.encoder, spec.num_classes, "y_predict",
                                             "sigmoid" if spec.multi_label else "softmax", defaults.WEIGHT_DECAY)
    if encoding == "onehot":
        code = OneHotArgmax(name="hash_x", dtype="float32")(probabilities)
    else:
        code = keras.layers.Dense(spec.hash_bits, kernel_initializer=keras.initializers.Orthogonal(),
                                  bias_initializer="zeros", trainable=False, name="hash_x",
                                  dtype="float32")(probabilities)
    return keras.Model(images, {"hash_x": code, "y_predict": probabilities}, name="classifier_codes")


def classifier_compile_arguments(spec, state, hyperparameters):
    """Classification only: no loss on `hash_x`."""
    return {"loss": {"y_predict": classifier_loss(spec.multi_label)},
            "metrics": {"y_predict": classifier_metrics(spec.multi_label)}}


def training_projections(model, images, features=None):
    """R p of `images` (N, bits) float32: the code layer's output without its bias. `features`: a model from the
    input to the code layer's input (the probabilities), built here when not given."""
    from saeh.data import pipeline
    from saeh.inference import ENCODE_BATCH_SIZE, hash_layer_inputs

    if features is None:
        probabilities = hash_layer_inputs(model, images)
    else:
        probabilities = features.predict(pipeline.image_batches(images, ENCODE_BATCH_SIZE), verbose=0)
    return np.asarray(probabilities, np.float32) @ model.get_layer("hash_x").kernel.numpy()


class ProjectionThresholds(keras.callbacks.Callback):
    """Sets the bias of the LSH layer `hash_x` to minus the per-bit median of the training images' projections
    after every epoch that may end up as the model's weights: one whose `monitor` value is at least as good as the
    best of this fit (a superset of the epochs the checkpoint keeps as best), and the last. Runs before the
    loop's checkpoint callback, so the thresholds are saved with the weights they belong to."""

    def __init__(self, images, epochs, monitor=MONITOR):
        super().__init__()
        self.images, self.epochs = images, epochs
        self.monitor, self.mode = monitor
        self.best = None
        self.features = None

    def on_train_begin(self, logs=None):
        self.best = None
        # One sub-model for the whole fit, so that its predict function is traced once.
        self.features = keras.Model(self.model.inputs, self.model.get_layer("hash_x").input, name="hash_features")

    def _better(self, value, best, or_equal):
        if or_equal and value == best:
            return True
        return value > best if self.mode == "max" else value < best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if epoch + 1 >= self.epochs or value is None or self.best is None or self._better(value, self.best, True):
            medians = np.median(training_projections(self.model, self.images, self.features), axis=0)
            self.model.get_layer("hash_x").bias.assign(-medians.astype(np.float32))
        if value is not None and (self.best is None or self._better(value, self.best, False)):
            self.best = value


def classifier_codes_callbacks(context, model, state, hyperparameters):
    if hyperparameters.encoding == "onehot":
        return []
    return [ProjectionThresholds(context.train.images, context.epochs)]


# The paper's classifier is a logistic regression on RBF features of GIST (scikit-learn; facebookresearch/
# supervised-hashing-baselines, main.py): no network recipe to carry over. SAEH's recipe.
RECIPE = dataclasses.replace(
    recipes.ORIGINAL, name="classifier-codes",
    source="SAEH's recipe (the original hash_su_ae_train.py): the source's classifier, scikit-learn's "
           "LogisticRegression on GIST features (facebookresearch/supervised-hashing-baselines main.py), has none",
    deviations=("a network trained as SAEH's instead of a logistic regression",))

CLASSIFIER_CODES = register(DeepMethod(
    name="classifier-codes",
    summary="Classifier codes: a plain classifier; its class probabilities hashed by median-thresholded random "
            "projections (LSH) or one-hot",
    build=build_classifier_codes,
    compile_arguments=classifier_compile_arguments,
    targets=classification_targets,
    hyperparameters=ClassifierCodesHyperparameters(),
    monitor=MONITOR,
    code=LINEAR_CODES,
    callbacks=classifier_codes_callbacks,
    recipe=RECIPE,
), listing_order=310)  # codes from a classifier: listed after the methods of a hashing loss
