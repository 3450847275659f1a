"""Named bundles of training settings: `hash_su_ae_train.py --preset NAME`.

A preset gives every setting in `PRESET_SETTINGS`; a setting it leaves out keeps the paper's value
(`PAPER_SETTINGS`). Flags given on the command line still win; the settings at the top of `hash_su_ae_train.py`
do not (the user asked for the preset explicitly). The code length (`--hash-bits`) is no part of a preset: it is an
axis of the paper's tables.

A preset's deviations from the paper are worked out from its settings (`deviations`), so that changing a preset is
an edit of its settings alone and the list printed beside it stays true. `python -m saeh.presets` lists them.

A preset's epochs are passes over the training set: a method whose epoch visits only a sample of it (ADSH's outer
iterations) trains for as many epochs as make the same number of image visits (`DeepMethod.epochs_for_passes`),
unless --epochs is given.
"""

import dataclasses
import sys

from saeh import defaults, recipes
from saeh.errors import SaehError

_NOT_GIVEN = object()  # a flag's default while finding which settings the command line gave

# The settings a preset may give, as the flags of hash_su_ae_train.py name them (dest names).
PRESET_SETTINGS = ("encoder", "stack_num", "epochs", "batch_size", "augment", "learning_rate", "mixed_precision")

# The paper's (and the original code's) setting. learning_rate None is each method's registered starting rate:
# 0.1 for SAEH, as the paper (DSH registers 0.01; 0.1 collapsed its codes).
PAPER_SETTINGS = {
    "encoder": defaults.ENCODER,
    "stack_num": defaults.STACK_NUM,
    "epochs": defaults.EPOCHS,
    "batch_size": defaults.BATCH_SIZE,
    "augment": False,
    "learning_rate": None,
    "mixed_precision": False,
}


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict  # only what differs from PAPER_SETTINGS, or restates it


PRESETS = {preset.name: preset for preset in (
    Preset("paper", "the paper's setting: ResNet-110 (stack_num 18), 90 epochs, batch 64; a GPU job", {}),
    # Provisional: to be tuned by measurement. Edit the settings here; the deviations follow.
    Preset("cifar10-cpu", "CIFAR-10 on a CPU in hours rather than days",
           {"stack_num": 2, "epochs": 12, "batch_size": 64, "augment": True}),
    # Candidate for the seeded CIFAR-10 tables: the cifar10-cpu setting one block a stage shallower, which cuts a
    # cell's time by about 0.6x (benchmarks/bench_train.py) so that the seeded cells fit in about 15 CPU-hours.
    Preset("cifar10-table", "the seeded CIFAR-10 tables on a CPU: cifar10-cpu, one residual block a stage",
           {"stack_num": 1, "epochs": 12, "batch_size": 64, "augment": True}),
    # The paper's SSDH* row is SSDH on a ResNet50; SAEH on the same encoder beside it. Three epochs because a
    # CIFAR-10 epoch of ResNet50 at 32x32 takes about an hour on a 2-core CPU (RESULTS.md, "Training throughput").
    Preset("cifar10-resnet50", "the ResNet50 rows of CIFAR-10 (SSDH*, and SAEH beside it) on a CPU: 3 epochs",
           {"encoder": "resnet50", "epochs": 3, "batch_size": 64, "augment": True}),
    # airbench94's network and recipe (saeh.models.whitened_cnn, saeh.recipes.WHITENED_CNN): the classifier reaches
    # the low 90s in ten epochs, the paper's level, where cifar10-table's ResNet-8 stops near 80%.
    Preset("cifar10-fast", "CIFAR-10 at the paper's accuracy on a CPU: the whitened_cnn encoder and its own recipe, "
           "10 epochs at batch 1024, mixed precision",
           {"encoder": "whitened_cnn", "epochs": 10, "batch_size": 1024, "augment": True, "mixed_precision": True}),
    Preset("mnist-cpu", "MNIST on a CPU in minutes (the README's Table 1 rows)",
           {"stack_num": 1, "epochs": 3, "batch_size": 64}),
    Preset("tiny", "seconds: for tests and the notebook's headless run, not for numbers",
           {"stack_num": 1, "epochs": 1, "batch_size": 64}),
)}


def names():
    """The preset names, in the order they are listed."""
    return tuple(PRESETS)


def get(name):
    """The preset called `name`; SaehError naming the known ones otherwise."""
    if name not in PRESETS:
        raise SaehError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def settings(name):
    """Every setting of `PRESET_SETTINGS` under preset `name`: its own values over the paper's."""
    preset = get(name)
    unknown = sorted(set(preset.settings) - set(PRESET_SETTINGS))
    if unknown:
        raise SaehError(f"preset {name!r} sets {', '.join(unknown)}; a preset may set {', '.join(PRESET_SETTINGS)}")
    return {**PAPER_SETTINGS, **preset.settings}


def resnet_depth(stack_num):
    """Layers of the resnet_cifar encoder with `stack_num` blocks per stage: two convs a block, three stages, the
    first conv and the classifier (18 gives the paper's ResNet-110)."""
    return 6 * stack_num + 2


def epochs_per_rate(epochs):
    """How many epochs a run of `epochs` trains at each rate of the scaled step schedule."""
    starts = [min(start, epochs) for start in defaults.step_starts(epochs)] + [epochs]
    return [end - start for start, end in zip(starts, starts[1:])]


def setting_applies(key, values):
    """Whether setting `key` has any effect in the settings `values`: stack_num shapes the resnet_cifar encoder
    alone."""
    return key != "stack_num" or values["encoder"] == defaults.ENCODER


def deviations(name):
    """The ways preset `name` departs from the paper's setting, one sentence each (none for `paper`)."""
    values, paper = settings(name), PAPER_SETTINGS
    found = []
    recipe = recipes.for_encoder(values["encoder"])
    if values["encoder"] != paper["encoder"]:
        trained = (f"trained with its own recipe, for every method ({recipe.summary()}; deviations from its source: "
                   f"{'; '.join(recipe.deviations)})" if recipe is not recipes.ORIGINAL else
                   "with the training script's rate warm-up for it (the README's Encoders section)")
        found.append(f"encoder {values['encoder']} instead of {paper['encoder']} (the paper's ResNet-110; its SSDH* "
                     f"row used a ResNet50), from scratch, {trained}")
    if setting_applies("stack_num", values) and values["stack_num"] != paper["stack_num"]:
        found.append(f"stack_num {values['stack_num']} (ResNet-{resnet_depth(values['stack_num'])}-like) instead of "
                     f"{paper['stack_num']} (ResNet-{resnet_depth(paper['stack_num'])})")
    if values["epochs"] != paper["epochs"] and recipe.schedule != "step":
        found.append(f"{values['epochs']} epochs instead of {paper['epochs']}, on the recipe's own schedule")
    elif values["epochs"] != paper["epochs"]:
        split = " / ".join(str(count) for count in epochs_per_rate(values["epochs"]))
        found.append(f"{values['epochs']} epoch{'s' if values['epochs'] != 1 else ''} instead of {paper['epochs']}, "
                     f"the step schedule scaled (saeh.defaults.step_starts): {split} epochs at the four rates")
    if values["batch_size"] != paper["batch_size"]:
        found.append(f"batch {values['batch_size']} instead of {paper['batch_size']}")
    if values["augment"] != paper["augment"]:
        found.append("random flips and pad-and-crop augmentation (the original used none)" if values["augment"]
                     else "no augmentation")
    if values["learning_rate"] != paper["learning_rate"]:
        found.append(f"starting rate {values['learning_rate']} instead of each method's own (0.1 for SAEH)")
    if values["mixed_precision"] != paper["mixed_precision"]:
        found.append("mixed precision, bfloat16 on a CPU and float16 on a GPU (the original computed in float32)")
    return found


def describe(name):
    """A few lines for a listing: the name, the description, the settings and the deviations."""
    values = settings(name)
    shown = [key for key in PRESET_SETTINGS if setting_applies(key, values)]
    own_rate = recipes.for_encoder(values["encoder"]).learning_rate
    own = "(the method’s own)" if own_rate is None else f"(the recipe’s {own_rate:.4g})"
    lines = [f"{name}: {get(name).description}",
             "    " + ", ".join(f"{key} {own if values[key] is None else values[key]}" for key in shown)]
    lines += [f"    - {deviation}" for deviation in deviations(name)] or ["    - no deviation from the paper"]
    return "\n".join(lines)


def add_preset_argument(parser):
    """--preset NAME, for a parser whose other flags carry the dest names of `PRESET_SETTINGS`."""
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help=f"a bundle of training settings ({', '.join(PRESETS)}; `python -m saeh.presets` lists "
                        "them); flags given on the command line override it%(default).0s")


def parse_args(parser, argv=None):
    """Parse `argv`; with --preset, parse it again with the preset's settings as the defaults, so that a flag given
    on the command line still wins. An unknown preset is refused here, before anything runs. `args.from_preset`
    names the settings the preset gave (those no flag overrode); `args.given`, those of `PRESET_SETTINGS` that a
    flag gave."""
    args = parser.parse_args(argv)
    defaults_before = {key: parser.get_default(key) for key in PRESET_SETTINGS}
    parser.set_defaults(**dict.fromkeys(PRESET_SETTINGS, _NOT_GIVEN))
    marked = parser.parse_args(argv)
    given = tuple(key for key in PRESET_SETTINGS if getattr(marked, key) is not _NOT_GIVEN)
    parser.set_defaults(**defaults_before)
    if args.preset is None:
        args.from_preset, args.given = (), given
        return args
    values = settings(args.preset)
    parser.set_defaults(**values)
    args = parser.parse_args(argv)
    args.from_preset = tuple(key for key in values if key not in given)
    args.given = given
    return args


def main():
    print("\n\n".join(describe(name) for name in PRESETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
