"""CNN text hashing (Xu, Wang, Tian, Xu, Zhao, Wang, Hao, "Convolutional Neural Networks for Text Hashing", IJCAI
2015), two stages, on texts from the ``text`` source (`saeh.data.sources.text`: ``--which-data text --data-dir
CORPUS``), whose token ids the data layer packs as uint8 arrays (`saeh.data.text`).

Which source we follow (METHODS.md section 16): the paper's text and code could not be read, only its abstract; the
stage-1 construction is the first author's companion code's (jacoxu/short-text-hashing-HMTT), [inference].

* Stage 1 (`baselines.cnn_text_codes`, the abstract: "explicit features embedded into compact binary codes under
  a locality-preserving constraint"): TF-IDF of the training texts, a cosine 25-NN graph, Laplacian eigenmaps,
  each dimension thresholded at its median. No label is used (the paper's base method); `use_labels` keeps only
  the graph's edges within a class (our choice: the paper's label variants could not be read). The validation
  texts never enter stage 1: each gets the mean code of its 25 nearest training texts (their targets only feed
  the validation loss that selects the epoch).
* Stage 2 (the abstract: word features and position features into a CNN whose implicit features, combined with
  the explicit features, fit the pre-trained codes): word embeddings trained here from random initialisation
  inside the network (no pre-trained vectors, nothing downloaded), concatenated with learned position embeddings,
  one convolution over `window` words with tanh and a max over the text's positions (the implicit features);
  the explicit features are a learned linear projection of the text's term frequencies (the mean of per-word
  vectors); both, concatenated, feed a sigmoid layer `hash_x` of one unit per bit, each trained by binary
  cross-entropy towards its stage-1 bit (NASH, ACL 2018, describes the method as l binary classifiers; the
  paper's own loss is [unverified]). Sizes, dropout and the Adam recipe are our choices.
"""

import dataclasses

import keras
from keras import layers, ops

from saeh import recipes
from saeh.data import text
from saeh.errors import SaehError
from saeh.methods import DeepMethod, Hyperparameters, hyperparameter
from saeh.registry import register

DROPOUT = 0.5


@keras.saving.register_keras_serializable(package="saeh")
class UnpackTokenIds(layers.Layer):
    """The Keras twin of `saeh.data.text.unpack_token_ids`: packed texts as the pipeline scales them (bytes / 255)
    -> (N, length) int32 token ids; ids of `rows` and above read as unknown."""

    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = int(rows)

    def call(self, packed):
        digits = ops.cast(ops.round(ops.cast(packed, "float32") * 255.0), "int32")
        digits = ops.reshape(digits, (-1, packed.shape[1] * text.TOKENS_PER_ROW, text.BYTES_PER_TOKEN))
        ids = sum(digits[..., place] * (256**place) for place in range(text.BYTES_PER_TOKEN))
        return ops.where(ids < self.rows, ids, text.UNKNOWN_ID)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows}


@keras.saving.register_keras_serializable(package="saeh")
class PositionFeatures(layers.Layer):
    """A learned vector per position of the text, the same for every text: (N, length) ids -> (N, length, units)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.table = self.add_weight(shape=(input_shape[1], self.units), initializer="uniform", name="table")

    def call(self, ids):
        return ops.broadcast_to(self.table[None], (ops.shape(ids)[0], *self.table.shape))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="saeh")
class PoolOverWords(layers.Layer):
    """[features (N, length, d), ids (N, length)] -> (N, d): the max or the mean over the text's words (padding
    left out; a text with no word gives zeros)."""

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise SaehError(f"PoolOverWords mode must be 'max' or 'mean'; got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        features, ids = inputs
        words = ops.cast(ids != text.PADDING_ID, features.dtype)[..., None]
        count = ops.sum(words, axis=1)
        if self.mode == "mean":
            return ops.sum(features * words, axis=1) / ops.maximum(count, 1.0)
        largest = ops.max(features * words - 1e9 * (1.0 - words), axis=1)
        return ops.where(count > 0, largest, 0.0)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclasses.dataclass(frozen=True)
class CNNTextHyperparameters(Hyperparameters):
    vocabulary_rows: int = hyperparameter(text.VOCABULARY_CAPACITY, "positive integer",
                                          "rows of the embedding tables; higher token ids read as unknown")
    embedding_dim: int = hyperparameter(64, "positive integer", "size of the word embeddings (trained here)")
    position_dim: int = hyperparameter(8, "positive integer", "size of the position embeddings")
    filters: int = hyperparameter(128, "positive integer", "convolution filters: the implicit features")
    window: int = hyperparameter(3, "positive integer", "words the convolution sees at once")
    explicit_dim: int = hyperparameter(64, "positive integer", "size of the projected term frequencies")
    neighbours: int = hyperparameter(25, "positive integer", "k of stage 1's kNN graph (HMTT: 25)")
    use_labels: bool = hyperparameter(False, None, "stage 1 keeps only graph edges within a class (not the paper's)")


def check_text_input(spec):
    """SaehError unless the spec's input is packed text (`saeh.data.text`)."""
    if not text.is_packed_text_shape(spec.input_shape):
        raise SaehError(f"method 'cnn-text' hashes texts (--which-data text --data-dir CORPUS); got items of shape "
                        f"{spec.input_shape}, which are not packed texts (H, {text.ROW_BYTES}, 1)")


def build_cnn_text(spec, hyperparameters):
    """Packed texts -> token ids -> [word; position] embeddings -> convolution, max over words (implicit) beside
    the mean of per-word vectors (explicit) -> sigmoid `hash_x`. `spec.encoder` and `stack_num` are not used."""
    check_text_input(spec)
    h = hyperparameters
    packed = keras.Input(shape=spec.input_shape, name="image")
    ids = UnpackTokenIds(h.vocabulary_rows, name="token_ids")(packed)
    words = layers.Embedding(h.vocabulary_rows, h.embedding_dim, name="word_embedding")(ids)
    positions = PositionFeatures(h.position_dim, name="position_embedding")(ids)
    sequence = layers.Concatenate(name="word_and_position")([words, positions])
    convolved = layers.Conv1D(h.filters, h.window, padding="same", activation="tanh", name="convolution")(sequence)
    implicit = PoolOverWords("max", name="implicit_features")([convolved, ids])
    per_word = layers.Embedding(h.vocabulary_rows, h.explicit_dim, name="explicit_projection")(ids)
    explicit = PoolOverWords("mean", name="explicit_features")([per_word, ids])
    features = layers.Concatenate(name="features")([implicit, explicit])
    features = layers.Dropout(DROPOUT, name="dropout")(features)
    code = layers.Dense(spec.hash_bits, activation="sigmoid", name="hash_x", dtype="float32")(features)
    return keras.Model(packed, {"hash_x": code}, name="cnn_text")


def compile_arguments(spec, state, hyperparameters):
    return {"loss": {"hash_x": "binary_crossentropy"}, "loss_weights": {"hash_x": 1.0}}


def prepare_stage1(context, hyperparameters):
    """Stage 1 (`baselines.cnn_text_codes`) on the training texts; the validation texts' targets out of sample."""
    from baselines.cnn_text_codes import out_of_sample_codes, stage1_codes

    if context.augment:
        raise SaehError("method 'cnn-text' takes no augmentation: flips and crops would scramble the packed texts; "
                        "drop --augment")
    rows, k = hyperparameters.vocabulary_rows, hyperparameters.neighbours

    def ids_of(image_set):
        ids = text.unpack_token_ids(image_set.images)
        ids[ids >= rows] = text.UNKNOWN_ID
        return ids

    labels = context.train.labels if hyperparameters.use_labels else None
    codes, features, idf = stage1_codes(ids_of(context.train), rows, context.spec.hash_bits, context.seed, k, labels)
    context.log(f"stage 1: Laplacian-eigenmap codes of {len(codes)} training texts ({k}-NN cosine graph on TF-IDF)")
    validation_codes = out_of_sample_codes(ids_of(context.validation), rows, idf, features, codes, k)
    return {"code": codes}, {"code": validation_codes}


def _targets(packed, batch):
    return {"hash_x": batch["code"]}


RECIPE = recipes.Recipe(
    name="cnn-text", source="none public (METHODS.md section 16: the paper's solver could not be read); ours",
    optimizer="adam", learning_rate=1e-3, schedule="drops", drops=(0.8,), drop_factor=0.1, batch_size=64,
    whiten_from_data=False,
    deviations=("Adam at 1e-3, x0.1 for the last fifth of the run, batch 64: our choice, the paper's is unread",))

CNN_TEXT = register(DeepMethod(
    name="cnn-text",
    summary="CNN text hashing (Xu et al.): stage 1 Laplacian-eigenmap codes of TF-IDF; stage 2 a text CNN fits them",
    build=build_cnn_text,
    compile_arguments=compile_arguments,
    targets=_targets,
    hyperparameters=CNNTextHyperparameters(),
    monitor=("val_loss", "min"),
    recipe=RECIPE,
    prepare=prepare_stage1,
    multi_label=False,
    data_kind="text",
), listing_order=120)
