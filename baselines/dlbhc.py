"""DLBHC (Lin, Yang, Hsiao & Chen, "Deep learning of binary hash codes for fast image retrieval", CVPR Workshops
2015): a sigmoid latent layer `hash_x` of `bits` units between the encoder and the classifier `y_predict`, trained
by classification alone. With p the classifier's softmax over the C classes of an image of class y:

    loss = -mean over the batch of log p_y          (softmax cross-entropy; there is no term on the codes)

Codes: bit = sigmoid activation > 0.5 (the paper's threshold, its `run_cifar10.m`). The best epoch is the one with
the highest validation accuracy of the classifier. The paper's retrieval is coarse-to-fine (Hamming ranking, then a
re-ranking of a pool by Euclidean distance between deep features): `python -m saeh.cli.search --rerank POOL`.

Multi-hot labels. The paper has softmax only (single-label data). For multi-hot labels we use SAEH's sigmoid
classifier with binary cross-entropy (`saeh.losses.classifier_loss`), as SAEH, SSDH and CNNH+ do here; that path
is ours, not the paper's.

What is the paper's recipe and what is ours:
- Latent layer initialisation: the paper's Caffe model draws the latent layer's weights with std 0.005 and sets its
  bias to 1 (every unit starts near sigmoid(1) = 0.73 on CaffeNet's fc7). We keep SAEH's initialisation of the
  hash layer (he_normal, zero bias) instead: that setting was tuned for 4096-d fc7 activations of a pretrained
  network, not for SAEH's encoder trained from scratch, and every row of Table 1 shares the code layer's
  initialisation so that only the loss differs.
- Recipe (`RECIPE`): the released solver (SGD, momentum 0.9, lr 1e-3 divided by 10 at half of the run, weight decay
  5e-4, batch 32, the classifier at 10x the rate); SAEH's encoder from scratch instead of CaffeNet. Before issue 27
  DLBHC trained with SAEH's recipe.
"""

from saeh import recipes
from saeh.losses import classifier_loss, classifier_metrics
from saeh.methods import SIGMOID_CODES, DeepMethod, classification_targets
from saeh.models import build_code_network
from saeh.registry import register


def build_dlbhc(spec, hyperparameters):
    """Encoder, sigmoid latent layer `hash_x` (bits units), classifier `y_predict` on it (softmax, or sigmoid for
    multi-hot labels)."""
    return build_code_network(spec, "dlbhc", activation="sigmoid", classifier=True)


def dlbhc_compile_arguments(spec, state, hyperparameters):
    """Classification only: no loss and no loss weight on `hash_x`."""
    return {"loss": {"y_predict": classifier_loss(spec.multi_label)},
            "metrics": {"y_predict": classifier_metrics(spec.multi_label)}}


# The released Caffe solver. Its softmax loss is a batch mean, as ours, so its rate means the same step here.
RECIPE = recipes.Recipe(
    name="dlbhc",
    source="kevinlin311tw/caffe-cvprw15 at 45c2a1b, examples/cvprw15-cifar10/solver_CIFAR10_48.prototxt l.5-12 "
           "(SGD momentum 0.9, lr 1e-3, x0.1 every 25,000 of 50,000 iterations, weight decay 5e-4), "
           "train_CIFAR10_48.prototxt l.385-386 (classifier fc8_pascal at lr x10); batch 32 (METHODS.md section 7)",
    momentum=0.9, nesterov=False, learning_rate=1e-3, weight_decay=5e-4,
    schedule="drops", drops=(0.5,), drop_factor=0.1, drop_unit="step",
    layer_rates=(("y_predict/", 10.0),), batch_size=32,
    deviations=(
        "the preset's steps instead of 50,000, the drop at the same fraction of them",
        "Caffe's momentum keeps the rate inside its buffer (torch's, ours, outside): the two differ only in the steps after the drop",
        "the biases' own Caffe multipliers (rate x2, no decay) are not kept: every weight decays, at the rate of its layer",
        "SAEH's encoder from scratch instead of CaffeNet; SAEH's initialisation of the latent layer (module "
        "docstring)",
    ),
)

DLBHC = register(DeepMethod(
    name="dlbhc",
    summary="DLBHC: classification only, through a sigmoid latent layer whose activations > 0.5 are the codes",
    build=build_dlbhc,
    compile_arguments=dlbhc_compile_arguments,
    targets=classification_targets,
    recipe=RECIPE,
    code=SIGMOID_CODES,
), listing_order=300)  # codes from a classifier: listed after the methods of a hashing loss
