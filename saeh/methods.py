"""What a deep hashing method is to the one training loop, and SAEH's own two methods.

A method is a `DeepMethod`: a model builder and its loss, either per output (compile arguments, and how a batch becomes
the targets of the model's outputs) or one function of all the outputs and the whole batch (`batch_loss`: labels,
training-set rows, the method's state), and the optional hooks that the methods beyond SAEH need, each a plain
function the method declares:

- `prepare`: per-sample targets worked out before training (CNNH's stage-1 codes, CSQ's and SHC's hash centres;
  a stage may train a model of its own, in a folder of the run);
- `state`: arrays kept beside the network's weights across batches and epochs (a memory bank of every training
  image's latest output, the learned database codes of an asymmetric method), saved in every checkpoint and
  beside the final model, so that a resumed run continues exactly;
- `callbacks`: Keras callbacks of the method (a schedule inside the loss, an update of the state between epochs);
- `sampler`: which training images an epoch visits, in which order (a subset per outer iteration);
- `database_codes`: for an asymmetric method, the learned codes of the training and validation images, which
  stand for those images in the database instead of the network's codes (and must make up the whole database:
  `saeh.cli.common.learned_database_rows`);
- `inputs`: the model's inputs in training when it takes more than the images (DSAH's label branch);
- `code`: how the hash output becomes bits (`CodeRule`), declared rather than guessed from a layer.

`ModelSpec` carries what every builder needs (input shape, classes, bits, encoder, depth, weights, label kind). A
method's own settings are one declared object (`Hyperparameters`: a frozen dataclass of `hyperparameter` fields, each
with its default, constraint and meaning), resolved once with the run's overrides and given to every hook.
Every method registers itself beside its definition (`saeh.registry.register`).
"""

import dataclasses
from collections.abc import Mapping
from typing import Callable, Optional

from saeh import defaults, validation
from saeh.data.sources import DATA_KINDS
from saeh.errors import SaehError
from saeh.losses import CLASSIFIER_ACCURACY, saeh_compile_arguments
from saeh.recipes import ORIGINAL, Recipe
from saeh.registry import register


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The settings every model builder takes, checked once here.

    input_shape: (height, width, channels) of the images; num_classes: classes of the labels; hash_bits: code
    length; stack_num: residual blocks per stage of the resnet_cifar encoder; encoder: one of
    `saeh.models.ENCODERS`; encoder_weights: resnet50 only (None, "imagenet" or a file); multi_label: multi-hot
    labels (sigmoid classifiers, overlap similarity).
    """

    input_shape: tuple
    num_classes: int
    hash_bits: int = defaults.HASH_BITS
    stack_num: int = defaults.STACK_NUM
    encoder: str = defaults.ENCODER
    encoder_weights: Optional[str] = None
    multi_label: bool = False

    def __post_init__(self):
        from saeh.models.encoders import check_encoder
        from saeh.models.saeh_model import check_input_shape

        object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        for name in ("num_classes", "hash_bits", "stack_num"):
            object.__setattr__(self, name, validation.positive_int(getattr(self, name), name))
        check_encoder(self.encoder)
        if not isinstance(self.multi_label, bool):
            raise SaehError(f"multi_label must be True or False; got {self.multi_label!r}")

    def builder_arguments(self):
        """The spec as keyword arguments of the model builders of `saeh.models`."""
        return {"hash_bits": self.hash_bits, "stack_num": self.stack_num, "encoder": self.encoder,
                "multi_label": self.multi_label, "encoder_weights": self.encoder_weights}


@dataclasses.dataclass(frozen=True)
class CodeRule:
    """How a method's hash output `hash_x` becomes bits: bit = output > threshold. `activation` names the output's
    range (sigmoid: (0, 1); tanh: (-1, 1); linear: unbounded), for listings and checks."""

    activation: str
    threshold: float

    def __post_init__(self):
        expected = {"sigmoid": 0.5, "tanh": 0.0, "linear": 0.0}
        if self.activation not in expected:
            raise SaehError(f"code activation must be one of {', '.join(expected)}; got {self.activation!r}")


SIGMOID_CODES = CodeRule("sigmoid", 0.5)  # SAEH, SSDH, CNNH+, DLBHC: bit = sigmoid output > 0.5
SIGN_CODES = CodeRule("tanh", 0.0)  # DPSH, HashNet, CSQ, ...: bit = sign of the output
LINEAR_CODES = CodeRule("linear", 0.0)  # DSH: bit = sign of a linear output


@dataclasses.dataclass(frozen=True)
class TrainingContext:
    """What a method's hooks may look at: the model spec, the training and validation sets, the seed, the run
    folder (where a stage writes what it trains), the loop's epochs, batch size, augmentation and precision (so that
    a stage training a network of its own, SHC's classifier, trains as the run does, eagerly or not), its strategy,
    and the loop itself (`train_stage`: `saeh.training.train`, handed in by the loop, so that a method training a
    stage never imports the layer above it)."""

    spec: ModelSpec
    train: object  # saeh.data.ImageSet
    validation: object  # saeh.data.ImageSet
    seed: int
    run_dir: str
    epochs: int
    batch_size: int  # per replica
    log: Callable = print
    strategy: object = None  # the run's tf.distribute strategy
    augment: bool = False
    mixed_precision: object = False  # as saeh.training.train takes it
    run_eagerly: bool = False
    train_stage: Optional[Callable] = None  # saeh.training.train


CONSTRAINTS = {
    "non-negative": lambda value: value >= 0,
    "positive": lambda value: value > 0,
    "positive integer": lambda value: value > 0 and float(value).is_integer(),
}


def hyperparameter(default, check=None, meaning=""):
    """A field of a method's `Hyperparameters`: its `default` (None: a number worked out later, DSH's margin), the
    constraint its values meet (a key of `CONSTRAINTS`; None: any value of the default's type) and its meaning."""
    if check is not None and check not in CONSTRAINTS:
        raise SaehError(f"check must be one of {', '.join(CONSTRAINTS)} or None; got {check!r}")
    return dataclasses.field(default=default, metadata={"check": check, "meaning": meaning})


@dataclasses.dataclass(frozen=True)
class Hyperparameters(Mapping):
    """A method's own settings: subclass it as a frozen dataclass of `hyperparameter` fields. `DeepMethod.resolve`
    gives the hooks an instance with the run's overrides applied and checked. Read by attribute (`h.eta`) or as a
    mapping (`h["eta"]`, `dict(h)`, which run.json records)."""

    def __getitem__(self, name):
        if name not in {field.name for field in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self):
        return (field.name for field in dataclasses.fields(self))

    def __len__(self):
        return len(dataclasses.fields(self))

    @classmethod
    def meanings(cls):
        """{name: (default, constraint, meaning)} of the declared fields, for listings."""
        return {field.name: (field.default, field.metadata.get("check"), field.metadata.get("meaning", ""))
                for field in dataclasses.fields(cls)}


NO_HYPERPARAMETERS = Hyperparameters()


@dataclasses.dataclass(frozen=True)
class SAEHHyperparameters(Hyperparameters):
    """The weights of SAEH's loss terms (`saeh.losses`)."""

    alpha: float = hyperparameter(defaults.ALPHA, "non-negative", "weight of the binary term E3")
    beta: float = hyperparameter(defaults.BETA, "non-negative", "weight of the per-bit balance term E4")
    gamma: float = hyperparameter(defaults.GAMMA, "non-negative", "weight of the decoder's recovery term E2")


@dataclasses.dataclass(frozen=True)
class SAEHMinusHyperparameters(Hyperparameters):
    """SAEH's weights without gamma: SAEH-minus has no decoder."""

    alpha: float = hyperparameter(defaults.ALPHA, "non-negative", "weight of the binary term E3")
    beta: float = hyperparameter(defaults.BETA, "non-negative", "weight of the per-bit balance term E4")


@dataclasses.dataclass(frozen=True)
class DeepMethod:
    """A deep hashing method trained by `saeh.training.train`.

    Attributes:
        name: registry name.
        summary: one line for listings.
        build: (spec: ModelSpec, hyperparameters) -> keras.Model with (at least) the output `hash_x`.
        compile_arguments: (spec, state, hyperparameters) -> dict with `loss`, `loss_weights`, `metrics`; `state`
            is the method's `MethodState` (None for a method without one). With `batch_loss`: optional, and without
            `loss` (metrics only).
        targets: (images, batch) -> dict of targets per output; `batch` holds the batch's per-sample arrays: `label`
            (one-hot or multi-hot float), `index` (the image's row in the training set; -1 for validation images)
            and whatever `prepare` added. Not with `batch_loss`, whose targets are the batch itself.
        batch_loss: instead of per-output losses, a generator (outputs, batch, spec, state, hyperparameters) that
            yields the loss's terms, as one function of the model's outputs ({name: tensor}) and the whole `batch`
            (the images under "image", `label`, `index` and whatever `prepare` added; a method needs no packed
            targets or outputs made for its loss). Each term is (name, value) or (name, value, weight), `value` a
            scalar (a statistic of the batch) or one value per image; the loss is the sum of their weighted batch
            means (`saeh.losses.BatchLossModel`, which also scales them for replicas).
        loss_terms: the names of the terms `batch_loss` yields, in order; with several, each is logged as
            `<term>_loss`.
        hyperparameters: the method's own settings with their defaults, an instance of its `Hyperparameters`
            subclass (whose fields declare each one's constraint and meaning); every hook gets the resolved one
            (`resolve`) as its argument `hyperparameters`.
        monitor: (history key, "max" or "min") for choosing the best epoch on the validation set.
        recipe: how the method trains (`saeh.recipes.Recipe`: optimiser, starting rate and schedule, weight decay,
            per-layer rates, batch size), with its source and what we changed (`deviations`); SAEH's is the
            original's (`saeh.recipes.ORIGINAL`). An encoder with a recipe of its own (whitened_cnn) replaces it
            (`saeh.recipes.for_method`).
        code: how `hash_x` becomes bits.
        prepare: optional (context: TrainingContext, hyperparameters) -> (dict, dict) of per-sample arrays for the
            training and the validation images, which travel with their images through the pipeline. The
            validation labels must not shape the training arrays: under --select-on-test the validation set is the
            query set.
        state: optional (context, hyperparameters) -> saeh.method_state.MethodState.
        callbacks: optional (context, model, state, hyperparameters) -> list of Keras callbacks, run before the
            loop's checkpoint callback (so that values they log can be monitored).
        sampler: optional (epoch, count, seed, hyperparameters) -> int array: the training rows the epoch visits,
            in order; the same length every epoch. Default: every row, in a permutation drawn from (seed, epoch).
        database_codes: optional (state arrays: {name: numpy array}) -> (count, bits) float array: the learned
            codes (in the hash output's range) of the training images then the validation images, which stand for
            them in the database; the database must hold no other image (`saeh.cli.common.learned_database_rows`).
        multi_label: False for a method defined for single-label data only; training then refuses multi-hot labels.
        inputs: optional (images, batch) -> the model's inputs in training, for a model that takes more than the
            images (a label branch trained beside the image network); its image input must be named "image", and
            `hash_x` must depend on it alone, since codes are computed from images only.
        class_code_targets: True for a method that trains each class towards a fixed code (hash centres): a bit on
            which every class's code agrees is constant by design, and the constant-bit warning says so.
        data_kind: what the method hashes, "images" or "text" (`saeh.data.sources.DATA_KINDS`); the training script
            refuses a dataset of another kind.
    """

    name: str
    summary: str
    build: Callable
    compile_arguments: Optional[Callable] = None
    targets: Optional[Callable] = None
    batch_loss: Optional[Callable] = None
    loss_terms: tuple = ()
    hyperparameters: Hyperparameters = NO_HYPERPARAMETERS
    monitor: tuple = (f"val_y_predict_{CLASSIFIER_ACCURACY}", "max")
    recipe: Recipe = ORIGINAL
    code: CodeRule = SIGMOID_CODES
    prepare: Optional[Callable] = None
    state: Optional[Callable] = None
    callbacks: Optional[Callable] = None
    sampler: Optional[Callable] = None
    database_codes: Optional[Callable] = None
    multi_label: bool = True
    inputs: Optional[Callable] = None
    class_code_targets: bool = False
    data_kind: str = "images"
    kind: str = "deep"

    def __post_init__(self):
        if self.batch_loss is None and (self.compile_arguments is None or self.targets is None):
            raise SaehError(f"method {self.name!r} needs compile_arguments and targets (per-output losses) or a "
                            "batch_loss")
        if self.batch_loss is not None and (self.targets is not None or not self.loss_terms):
            raise SaehError(f"method {self.name!r} has a batch_loss: it takes no targets (its targets are the batch) "
                            "and names its terms in loss_terms")
        if self.data_kind not in DATA_KINDS:
            raise SaehError(f"method {self.name!r}: data_kind must be one of {', '.join(DATA_KINDS)}; got "
                            f"{self.data_kind!r}")

    def resolve(self, overrides=None):
        """The method's `Hyperparameters` with `overrides` ({name: value or its text}, or a resolved object)
        applied; unknown names and values of the wrong type or out of range are an error."""
        return resolve_hyperparameters(self.name, self.hyperparameters, overrides)

    def epochs_for_passes(self, passes, count, seed=0, hyperparameters=None):
        """The epochs that visit as many training images as `passes` full passes over `count` images: `passes` for
        a method whose epoch is one pass; more for one whose `sampler` visits fewer rows an epoch (ADSH's outer
        iteration: 3 x 2,000 of them), so that a preset gives every row of a table the same number of image visits
        (and the same steps) rather than the same number of epochs."""
        if self.sampler is None:
            return passes
        visits = len(self.sampler(0, count, seed, self.resolve(hyperparameters)))
        return max(1, round(passes * count / visits))

    @property
    def learning_rate(self):
        """The starting rate of the method's recipe (the original's 0.1 where the recipe names none)."""
        return defaults.LEARNING_RATE if self.recipe.learning_rate is None else self.recipe.learning_rate

    @property
    def asymmetric(self):
        """True when the training images' database codes are learned rather than computed by the network."""
        return self.database_codes is not None


def check_label_kind(method, labels):
    """Raise SaehError when `labels` are multi-hot ((N, classes)) and `method` (deep or shallow) is defined for
    single-label data only (`method.multi_label` False)."""
    if labels.ndim == 2 and not method.multi_label:
        raise SaehError(f"method {method.name!r} is defined for single-label data only; these labels are multi-hot "
                        f"({labels.shape[1]} classes)")


def check_constraints(method_name, hyperparameters):
    """Raise SaehError for the first field of `hyperparameters` (`Hyperparameters`) outside its declared constraint
    (a None value, "worked out later", is not checked)."""
    for field in dataclasses.fields(hyperparameters):
        constraint, value = field.metadata.get("check"), getattr(hyperparameters, field.name)
        if constraint is not None and value is not None and not CONSTRAINTS[constraint](value):
            raise SaehError(f"hyperparameter {field.name} of method {method_name!r} must be a {constraint} number; "
                            f"got {value!r}")


def resolve_hyperparameters(method_name, defaults, overrides=None):
    """`defaults` (a `Hyperparameters`, or a plain dict) updated with the non-None `overrides`,
    each converted to the type of its default (`as_type_of`); a `Hyperparameters` comes back as one, checked
    against its constraints.

    A name the method does not take, or a value that does not convert or is out of range, raises SaehError.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SaehError(f"method {method_name!r} has no hyperparameter(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(defaults)) or 'none'}")
    resolved = dict(defaults)
    for name, value in overrides.items():
        resolved[name] = as_type_of(defaults[name], value, f"hyperparameter {name} of method {method_name!r}")
    if isinstance(defaults, Hyperparameters):
        resolved = dataclasses.replace(defaults, **resolved)
        check_constraints(method_name, resolved)
    return resolved


BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


def as_type_of(default, value, name):
    """`value` (a number, or text as given on the command line) as the type of `default`: bool (true/false/1/0),
    int, float (finite; an int is fine) or str. A None default stands for a number worked out later (DSH's margin
    is 2 * bits), so it takes an int or a float. Raises SaehError naming `name` and what was expected."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[str(value).strip().lower()]
        raise SaehError(f"{name} must be a boolean (true, false, 1 or 0); got {value!r}")
    if isinstance(default, str):
        return str(value)
    if isinstance(default, int):
        return validation.number_from_text(value, name, integer=True)
    if isinstance(default, float):
        return float(validation.number_from_text(value, name))
    if default is None:
        return validation.number_from_text(value, name)
    return value


def classification_targets(images, batch):
    """SAEH-like targets: labels for the classifier and (ignored) for the hash terms, the image for the decoder.

    The training loop keeps only the targets of outputs the model has, so SAEH-minus (no decoder) shares this.
    """
    return {"hash_x": batch["label"], "y_predict": batch["label"], "y_decoded": images}


def _build_saeh(spec, hyperparameters):
    from saeh.models import build_saeh

    # SAEH-minus takes no gamma: it is SAEH with gamma = 0, which removes the decoder.
    return build_saeh(spec.input_shape, spec.num_classes, gamma=hyperparameters.get("gamma", 0.0),
                      **spec.builder_arguments())


def _saeh_compile_arguments(spec, state, hyperparameters):
    return saeh_compile_arguments(alpha=hyperparameters.alpha, beta=hyperparameters.beta,
                                  gamma=hyperparameters.get("gamma", 0.0), multi_label=spec.multi_label)


SAEH = register(DeepMethod(
    name="saeh",
    summary="SAEH: classification + binary + per-bit balance + gamma * decoder recovery, sigmoid hash layer",
    build=_build_saeh,
    compile_arguments=_saeh_compile_arguments,
    targets=classification_targets,
    hyperparameters=SAEHHyperparameters(),
), listing_order=10)

# SAEH-minus is the paper's ablation: SAEH with gamma = 0, which removes the decoder from the graph.
SAEH_MINUS = register(dataclasses.replace(
    SAEH,
    name="saeh-minus",
    summary="SAEH-minus: SAEH without the decoder (gamma = 0)",
    hyperparameters=SAEHMinusHyperparameters(),
), listing_order=20)
