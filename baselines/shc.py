"""SHC (Chen, Liu, Zhou, Ma, Chen & Zhang, "Deep Hashing with Semantic Hash Centers for Image Retrieval", arXiv
2507.08404 / ACM TOIS 2025; official code cc752424640/Deep-Hashing-with-Semantic-Hash-Centers-for-Image-Retrieval).

CSQ with hash centres that follow the classes' similarity instead of being fixed in advance. Three stages:

1. A classifier is trained on the training images (`train_classifier`). Its logits over the training images give
   the class similarity S (C x C) (`baselines.hash_centres.class_similarity_from_logits`: for an image of class y,
   the softmax of its logits without class y is added to row y; S is symmetrised, each row rescaled to [-1, 1],
   the diagonal set to 1).
2. Centres H in {-1, +1}^(q x C) are fitted to S under a minimum pairwise Hamming distance d
   (`semantic_centres`, `shc_min_distance`: d is the smallest with sum_{j<d} binom(q, j) >= 2^q / C):

       min_H (1/C^2) ||S - (1/q) H^T H||_F^2    subject to    Hamming(h_i, h_j) >= d for i != j.

3. The hashing network is trained with CSQ's loss (baselines/csq.py) towards these centres, t = (c_y + 1) / 2:

       loss = BCE((h + 1) / 2, t) + lambda * mean((|h| - 1)^2),     h = tanh output of `hash_x`.

Stage 1 trains in the run's stage folder `stages/classifier` (a run folder of its own, trained by the loop that the
context hands in, `context.train_stage`, so that this module does not import `saeh.training`): a resumed run reuses
the finished classifier, and a classifier killed part-way resumes from its checkpoint. S, the centres, d and a digest
of the classifier they came from are written to `stages/classifier/centres.npz` (`CENTRES_FILE`); a later call with
the same classifier, bits and seed reads the centres back instead of recomputing them, so a resumed run trains
towards exactly the same centres.

Single-label only, as the released code (it takes the argmax label's centre, with `is_single_label=True` hard-coded;
its README lists MSCOCO nonetheless): multi-hot labels raise SaehError when the model is built, before the run
folder is touched.

Defaults and their sources:

* quantization_weight (lambda) = 1e-4: the official README command's `--lambd 1e-4`. (Its `--beta 1.00` is parsed
  by `run.py` but used by no released file, so it has no counterpart here.)
* Stage 2: the official solver settings (see baselines/hash_centres.py, which also lists where our solver differs).

What is ours rather than the paper's recipe:

* Stage 1 network: SAEH's encoder and a softmax layer (`y_logits`, then `y_predict`) instead of ResNet-34 and a
  linear layer, trained with cross-entropy by the official stage's recipe (`CLASSIFIER_RECIPE`: RMSprop 1e-4,
  weight decay 1e-5, cosine annealing) for the run's own number of epochs (the official classify_epoch is 100, on an
  ImageNet-pretrained ResNet-34). The classifier kept is the last epoch's, as the official script uses the
  classifier after its final epoch; the validation images are only watched (their accuracy is logged), so the
  validation labels, which are the query labels under --select-on-test, never shape the centres.
* Stage 3 network: SAEH's encoder and a Dense tanh code layer `hash_x` (as CSQ here) instead of ResNet-34 and a
  linear layer initialised N(0, 0.01) with tanh inside the loss; the official recipe (`RECIPE`: RMSprop lr 1e-4,
  weight decay 1e-5, cosine annealing to 1e-7 over the run's epochs, batch 64). Before issue 27 both stages
  trained with SAEH's recipe.
* Best epoch: the lowest validation loss, as CSQ; the official code picks it on test mAP.
* Codes: sign(h) (threshold 0), as the official code.
"""

import dataclasses
import hashlib
import os

import keras
import numpy as np

from baselines.csq import CSQ, centre_extras, minimum_distance
from baselines.hash_centres import centre_fit, class_similarity_from_logits, semantic_centres, shc_min_distance
from saeh import defaults, recipes
from saeh.atomic import atomic_path
from saeh.errors import SaehError
from saeh.losses import classifier_metrics
from saeh.methods import DeepMethod
from saeh.models import blocks, build_code_network, encoders
from saeh.registry import register
from saeh.run_folder import RunFolder

QUANTIZATION_WEIGHT = 1e-4  # official README: --lambd 1e-4
STAGE = "classifier"  # stage 1's folder: <run>/stages/classifier
CENTRES_FILE = "centres.npz"  # S, centres, min distance, bits, seed and classifier digest, in the stage folder
LOGITS_LAYER = "y_logits"


def check_single_label(spec):
    """SaehError for multi-hot labels: SHC, as released, has no rule for an image of several classes."""
    if spec.multi_label:
        raise SaehError("method 'shc' supports single-label data only: its semantic centres are one per class and "
                        "the released code has no rule for an image with several labels (it hard-codes "
                        "is_single_label=True); use csq for multi-hot labels")


# ----------------------------------------------------------------------------------------- stage 1: the classifier

def build_classifier(spec):
    """SAEH's encoder, a linear layer `y_logits` to the classes, then its softmax `y_predict`."""
    images = keras.Input(shape=spec.input_shape, name="image")
    features, _ = encoders.encode_features(images, spec.encoder, spec.stack_num, defaults.WEIGHT_DECAY,
                                           spec.encoder_weights)
    logits = blocks.dense(spec.num_classes, LOGITS_LAYER, dtype="float32")(features)
    prediction = keras.layers.Activation("softmax", name="y_predict", dtype="float32")(logits)
    return keras.Model(images, {"y_predict": prediction}, name="shc_classifier")


# The official recipes, with the run's epochs as T_max (both the stage and the hashing network train for them).
_SHC_CODE = "cc752424640/Deep-Hashing-with-Semantic-Hash-Centers-for-Image-Retrieval at 4348dc7"
RECIPE = recipes.Recipe(
    name="shc",
    source=f"{_SHC_CODE}, train.py: l.77 RMSprop (torch's alpha 0.99), weight decay 1e-5, l.78 CosineAnnealingLR "
           "T_max = epochs, eta_min 1e-7, l.127 stepped once an epoch; run.py l.26 lr 1e-4, l.28 100 epochs, l.40 "
           "batch 64",
    optimizer="rmsprop", momentum=0.0, nesterov=False, learning_rate=1e-4, weight_decay=1e-5,
    schedule="cosine", cosine_floor=1e-7 / 1e-4, batch_size=64,
    deviations=("the preset's epochs instead of 100 as T_max",
                "SAEH's encoder from scratch instead of an ImageNet ResNet-34"),
)
CLASSIFIER_RECIPE = dataclasses.replace(
    RECIPE, name="shc-classifier", cosine_floor=0.0,
    source=f"{_SHC_CODE}, GenerateSimilarityMatrix.py: l.14-18 RMSprop, weight decay 1e-5, l.19 "
           "CosineAnnealingLR T_max = classify_epoch (eta_min 0), l.49 stepped once an epoch; run.py l.26 lr "
           "1e-4, l.30 classify_epoch 100",
    deviations=("the run's epochs instead of classify_epoch 100 as T_max",
                "SAEH's encoder from scratch and a softmax layer instead of an ImageNet ResNet-34"))

# Not registered: stage 1 of SHC, trained by `train_classifier` only. It has no `hash_x`; nothing encodes with it.
CLASSIFIER = DeepMethod(
    name="shc-classifier",
    summary="SHC stage 1: softmax classifier on SAEH's encoder (cross-entropy)",
    build=lambda spec, hyperparameters: build_classifier(spec),
    compile_arguments=lambda spec, state, hyperparameters: {"loss": {"y_predict": "categorical_crossentropy"},
                                                            "metrics": {"y_predict": classifier_metrics(False)}},
    targets=lambda images, batch: {"y_predict": batch["label"]},
    monitor=("val_loss", "min"),  # only names the best-epoch file: the stage keeps its last epoch
    recipe=CLASSIFIER_RECIPE,
)


class EpochLog(keras.callbacks.Callback):
    """One line per epoch of the classifier through the run's `log` (the stage trains with verbose=0)."""

    def __init__(self, log, epochs):
        super().__init__()
        self.log, self.epochs = log, epochs

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{name} {float(value):.4f}" for name, value in sorted((logs or {}).items()))
        self.log(f"SHC stage 1 (classifier) epoch {epoch + 1}/{self.epochs}: {values}")


def train_classifier(context):
    """Stage 1's classifier, trained (or resumed, or reused when finished) in <run>/stages/classifier."""
    from saeh import distributed
    from saeh.data import Split

    if distributed.is_multi_worker(context.strategy):
        raise SaehError("shc trains its classifier stage inside its preparation, which is not supported on several "
                        "workers; train it on one machine")
    spec = context.spec
    split = Split(protocol="ssdh", seed=context.seed, train=context.train, validation=context.validation,
                  query=context.validation, database=context.train, dataset="shc-stage")
    stage_dir = RunFolder(context.run_dir).stage(STAGE).run_dir
    return context.train_stage(CLASSIFIER, split, spec.num_classes, stage_dir, hash_bits=spec.hash_bits,
                               stack_num=spec.stack_num, encoder=spec.encoder, encoder_weights=spec.encoder_weights,
                               epochs=context.epochs, batch_size=context.batch_size, seed=context.seed,
                               augment=context.augment, mixed_precision=context.mixed_precision,
                               run_eagerly=context.run_eagerly, verbose=0, final_weights="last",
                               reuse_finished=True, callbacks=[EpochLog(context.log, context.epochs)],
                               log=context.log, strategy=context.strategy)


def classifier_logits(model, images):
    """The classifier's logits (N, C) float64 for uint8 images (N, H, W, C)."""
    from saeh.data import pipeline
    from saeh.inference import ENCODE_BATCH_SIZE

    logits = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output, name="shc_logits")
    return np.asarray(logits.predict(pipeline.image_batches(images, ENCODE_BATCH_SIZE), verbose=0), np.float64)


# ------------------------------------------------------------------------------- stage 2: the semantic centres

def file_digest(path):
    """sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_centres(path, digest, bits, seed):
    """The centres saved at `path` for this classifier digest, bits and seed, or None (no file, or another run's)."""
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        same = (str(saved["classifier_digest"]) == digest and int(saved["bits"]) == bits
                and int(saved["seed"]) == seed)
        return saved["centres"].copy() if same else None


def semantic_centres_of_run(context, trained):
    """Stage 2: the (C, bits) int8 centres of the classifier `trained`, read back from its CENTRES_FILE when they
    were computed for it before, else computed and written there."""
    spec, log = context.spec, context.log
    path = os.path.join(trained.run_dir, CENTRES_FILE)
    digest = file_digest(RunFolder(trained.run_dir).model)
    centres = read_centres(path, digest, spec.hash_bits, context.seed)
    if centres is not None:
        log(f"SHC: reusing the hash centres in {path} (minimum pairwise Hamming distance {minimum_distance(centres)})")
        return centres
    logits = classifier_logits(trained.model, context.train.images)
    similarity = class_similarity_from_logits(logits, context.train.labels, spec.num_classes)
    distance = shc_min_distance(spec.hash_bits, spec.num_classes)
    centres = semantic_centres(similarity, spec.hash_bits, distance, seed=context.seed)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, similarity=similarity, centres=centres, min_distance=distance, bits=spec.hash_bits,
                     seed=context.seed, classifier_digest=digest)
    log(f"SHC hash centres: {spec.num_classes} classes, {spec.hash_bits} bits, minimum pairwise Hamming distance "
        f"{minimum_distance(centres)} (required {distance}), fit {centre_fit(similarity, centres):.4f}; "
        f"written to {path}")
    return centres


def prepare_shc(context, hyperparameters):
    """Stages 1 and 2, then each training and validation image's centre (the centre of its class)."""
    check_single_label(context.spec)
    centres = semantic_centres_of_run(context, train_classifier(context))
    return centre_extras(centres, context)


# ------------------------------------------------------------------------------------ stage 3: the hashing network

def build_shc(spec, hyperparameters):
    """CSQ's network (SAEH's encoder, tanh `hash_x`); refuses multi-hot labels."""
    check_single_label(spec)
    return build_code_network(spec, "shc", activation="tanh")


# CSQ with SHC's own centres, network name, quantisation weight, and single-label data only (as the released code).
SHC = register(dataclasses.replace(
    CSQ,
    name="shc",
    summary="SHC: CSQ's loss towards semantic hash centres fitted to a classifier's class similarity",
    build=build_shc,
    hyperparameters=dataclasses.replace(CSQ.hyperparameters, quantization_weight=QUANTIZATION_WEIGHT),
    prepare=prepare_shc,
    multi_label=False,
    recipe=RECIPE,
), listing_order=90)
