"""ITQ and KSH as registered methods: fitted on raw-pixel features of the training set, then used to encode the
query and database sets into the same dump format as the deep methods."""

import dataclasses

from baselines.itq import ITQ
from baselines.ksh import KSH
from saeh.atomic import check_writable
from saeh.codes import make_codes
from saeh.methods import check_label_kind, resolve_hyperparameters
from saeh.registry import register
from saeh.run_folder import RunFolder


@dataclasses.dataclass(frozen=True)
class ShallowMethod:
    """A shallow (numpy) method: `hasher` is a `baselines.shallow.ShallowHasher` subclass. `multi_label`: False for
    a method defined for single-label data only (`fit_shallow` then refuses multi-hot labels, as training does for
    a deep method)."""

    name: str
    summary: str
    hasher: type
    kind: str = "shallow"
    multi_label: bool = True

    @property
    def hyperparameters(self):
        """The hasher's declared hyperparameters with their defaults (a `saeh.methods.Hyperparameters`)."""
        return self.hasher.defaults

    def resolve(self, overrides=None):
        """As `DeepMethod.resolve`: the hyperparameters with `overrides` applied and checked."""
        return resolve_hyperparameters(self.name, self.hyperparameters, overrides)


ITQ_METHOD = register(ShallowMethod(
    "itq", "ITQ: PCA then an orthogonal rotation minimising quantisation error (unsupervised)", ITQ),
    listing_order=140)
KSH_METHOD = register(ShallowMethod(
    "ksh", "KSH: supervised kernel hashing, greedy bit-by-bit against label similarity", KSH),
    listing_order=150)


GIST = "gist"  # the --features value for GIST descriptors (baselines.gist)


def feature_function(feature_model=None):
    """images -> features: raw pixels in [0, 1] (the default, and what RESULTS.md uses), GIST descriptors for
    `GIST`, or, given the path of a trained deep model, the features that model feeds its hash layer."""
    if feature_model is None:
        from baselines.shallow import features_from_images

        return features_from_images
    if feature_model == GIST:
        from baselines.gist import gist_descriptors

        return gist_descriptors
    from saeh.inference import hash_layer_inputs, load_hash_model

    model = load_hash_model(feature_model)
    return lambda images: hash_layer_inputs(model, images)


def fit_shallow(method, split, run_dir, hash_bits, seed, hyperparameters=None, settings=None, overwrite=False,
                feature_model=None):
    """Fit `method` on features of `split.train` (see `feature_function`), save it as `<run_dir>/model.npz`, and
    return the codes of the query and database sets."""
    folder = RunFolder(run_dir)
    model_path = folder.shallow_model
    check_writable(model_path, overwrite)
    check_label_kind(method, split.train.labels)
    # Made before the old run is cleared: it refuses a bad hash_bits, seed or hyperparameter.
    hasher = method.hasher(hash_bits=hash_bits, seed=seed, **(hyperparameters or {}))
    folder.clear()  # an overwritten run leaves none of its files (codes, scores) beside the new one
    features = feature_function(feature_model)
    folder.record.write({**(settings or {}), "method": method.name, "hash_bits": hash_bits, "seed": seed,
                         "hyperparameters": dict(hasher.hyperparameters),
                         "features": {None: "raw pixels in [0, 1]", GIST: "GIST descriptors (baselines.gist)"}.get(
                             feature_model, feature_model)})
    hasher.fit(features(split.train.images), split.train.labels)
    hasher.save(model_path, overwrite=True)
    print(f"{method.name} fitted on {len(split.train)} training images; model written to {model_path}")
    return {name: make_codes(hasher.project(features(getattr(split, name).images)), getattr(split, name).labels,
                             hasher.threshold)
            for name in ("query", "database")}
