"""Train a hashing method (SAEH by default), dump the codes of the query and database sets, and score them.

The settings of `hash_su_ae_train.py` (module-level names, as in the original script) are the defaults of the
flags here; a flag given on the command line wins.
"""

import argparse
import os
import time

from saeh import cpu_cost, defaults, dumps, presets, recipes, validation
from saeh.atomic import write_json
from saeh.cli import common
from saeh.errors import SaehError
from saeh.retrieval import score
from saeh.run_codes import learned_database_rows
from saeh.run_data import AUTO_ON_OFF, load_split
from saeh.run_folder import RunFolder

# The original script's settings, under their original names. hash_su_ae_train.py repeats them at its top for users
# to edit; these are the fallbacks when a caller passes none.
SETTINGS = {
    "which_data": "cifar10",
    "num_classes": None,  # None: taken from the data
    "stack_num": defaults.STACK_NUM,
    "batch_size": defaults.BATCH_SIZE,
    "epochs": defaults.EPOCHS,
    "alpha": defaults.ALPHA,
    "beta": defaults.BETA,
    "gamma": defaults.GAMMA,
    "hash_bits": defaults.HASH_BITS,
    "load_path": None,
    "save_dir": "runs",
}
SAEH_WEIGHTS = ("alpha", "beta", "gamma")
SAEH_METHODS = ("saeh", "saeh-minus")  # the methods whose weights --alpha, --beta, --gamma are
# Flags of the Keras training loop, which the shallow methods (fit in numpy) do not use.
DEEP_ONLY = ("stack_num", "epochs", "batch_size", "learning_rate", "encoder", "encoder_weights", "augment",
             "load_path", "mixed_precision", "jit_compile", "deterministic", "profile", "warmup_epochs", "ablate")


def parse_hyperparameter(text):
    """NAME=VALUE with VALUE kept as text: the method converts it to its hyperparameter's own type."""
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    return name.replace("-", "_"), value


def build_parser(settings):
    parser = argparse.ArgumentParser(
        prog="hash_su_ae_train.py",
        description="Train SAEH (or a baseline with --method) and write the query/database codes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common.add_data_arguments(parser, settings["which_data"])
    parser.add_argument("--method", default="saeh", help="registered method: see `python -m baselines`")
    parser.add_argument("--num-classes", type=int, default=settings["num_classes"],
                        help=common.stated_default("number of classes, checked against the data (default: taken from "
                                                   "the data)"))
    parser.add_argument("--stack-num", type=int, default=settings["stack_num"],
                        help="residual blocks per stage of the resnet_cifar encoder (18 = the paper's ResNet-110)")
    parser.add_argument("--hash-bits", type=int, default=settings["hash_bits"], help="code length in bits")
    parser.add_argument("--epochs", type=int, default=settings["epochs"],
                        help="the original step schedule (rate 0.1, divided by 5 from epochs 31, 56 and 76 of 90, "
                        "counted from 0) is scaled to this many epochs")
    parser.add_argument("--batch-size", type=int, default=settings["batch_size"],
                        help="images per training step; given here, it wins over the batch of a method's recipe "
                        "(its authors'), which wins over a --preset's and this setting")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help=common.stated_default("starting rate of the step schedule (default: the method's; 0.1 "
                                                   "for SAEH)"))
    parser.add_argument("--warmup-epochs", type=float, default=None,
                        help=common.stated_default("linear learning-rate warm-up over this many epochs' steps, e.g. "
                                                   "0.5 (default: 1 for the resnet50 encoder, 0 otherwise: none, as "
                                                   "the original)"))
    for name in SAEH_WEIGHTS:
        parser.add_argument(f"--{name}", type=float, default=None,
                            help=common.stated_default(f"SAEH's weight {name} (default: {settings[name]})"))
    parser.add_argument("--set", dest="hyperparameters", type=parse_hyperparameter, action="append", default=[],
                        metavar="NAME=VALUE",
                        help=common.stated_default("a hyperparameter of the method, repeatable (e.g. --set "
                                                   "margin=24 for dsh; `python -m baselines` lists them)"))
    parser.add_argument("--features", default=None, metavar="gist|MODEL.keras",
                        help=common.stated_default("shallow methods only: 'gist' (512-d GIST descriptors, as "
                                                   "LMgist computes them; DH's paper hashes these) or the features "
                                                   "a trained deep model feeds its hash layer (default: raw "
                                                   "pixels)"))
    parser.add_argument("--encoder", default=defaults.ENCODER, help="resnet_cifar, resnet50, dsh_cnn or whitened_cnn (trained with its own "
                        "recipe: `python -m saeh.presets` shows it under cifar10-fast)")
    parser.add_argument("--encoder-weights", default=None,
                        help=common.stated_default("resnet50 only: 'imagenet' (downloads) or a local weights file "
                                                   "(default: random initialisation)"))
    parser.add_argument("--augment", action="store_true", help="random flips and pad-and-crop (the original used none)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=False,
                        help=common.stated_default("no augmentation, where a --preset turns it on"))
    presets.add_preset_argument(parser)
    parser.add_argument("--load-path", default=settings["load_path"],
                        help=common.stated_default("weights to start from (.keras, its run folder, or .weights.h5), as the "
                                                   "original's "
                                                   "load_path: weights only, then the whole schedule from epoch 0 "
                                                   "(default: load_path in hash_su_ae_train.py, "
                                                   f"{settings['load_path']})"))
    parser.add_argument("--original", action="store_true",
                        help="the original script's procedure: train on the whole training set, watch the test set "
                        "as validation, keep the last epoch's weights, dump the test set only in the original's "
                        "format, score it under the dsh protocol (the test set against itself)")
    parser.add_argument("--save-dir", default=settings["save_dir"], help="where run directories are created")
    parser.add_argument("--run-name", default=None,
                        help=common.stated_default("run directory name (default: <method>_<data>_<bits>bits)"))
    parser.add_argument("--overwrite", action="store_true", help="discard an existing run of the same name")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help=common.stated_default("refuse to continue an unfinished run found in the run directory "
                                                   "(default: the same command resumes a killed run at its next "
                                                   "epoch)"))
    parser.add_argument("--mixed-precision", action="store_true",
                        help="mixed precision: float16 compute on a GPU, bfloat16 on a CPU (fast only with AMX or "
                        "AVX512-BF16 units; benchmarks/bench_train.py measures it)")
    parser.add_argument("--ablate", action="append", default=[], metavar="INGREDIENT",
                        help="train without one ingredient of the encoder's recipe (repeatable; for the recipe "
                        "ablation table): " + ", ".join(f"{name} ({text})" for name, (text, _) in
                                                        recipes.ABLATIONS.items()) + "%(default).0s")
    parser.add_argument("--no-mixed-precision", dest="mixed_precision", action="store_false",
                        help=common.stated_default("float32 throughout, where a --preset turns mixed precision on"))
    parser.add_argument("--jit-compile", choices=tuple(AUTO_ON_OFF), default="auto", help="XLA compilation")
    parser.add_argument("--deterministic", action="store_true",
                        help="TensorFlow op determinism: the same seed gives the same codes (slower)")
    parser.add_argument("--profile", nargs="?", const=DEFAULT_PROFILE_STEPS, default=None, type=parse_steps,
                        metavar="FIRST,LAST",
                        help=common.stated_default("record a TensorBoard profile of these steps of the first epoch "
                                                   "trained, in the run's logs/ (default: none; --profile alone: "
                                                   "steps 3 to 5, after the first steps' tracing)"))
    parser.add_argument(cpu_cost.AGREE_FLAG, action="store_true",
                        help="train even where no GPU is visible and the run is estimated at more than "
                        f"{cpu_cost.REFUSED_ABOVE_HOURS:.0f} hours (the paper's settings take days on a CPU; without "
                        "this flag such a run is refused, naming its cost and a preset to use instead)")
    parser.add_argument("--top-k", type=int, default=defaults.TOP_K, help="k of the mAP printed at the end")
    parser.add_argument("--radius", type=int, default=defaults.RADIUS, help="Hamming radius of the precision printed")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help=common.stated_default("Keras progress: 0 none, 1 bar, 2 one line per epoch (default: "
                                                   "a bar on a terminal, else one line per epoch)"))
    return parser


DEFAULT_PROFILE_STEPS = (3, 5)


def parse_steps(text):
    """FIRST,LAST as two integers (range checks are the training loop's, which knows the steps of an epoch)."""
    if isinstance(text, tuple):
        return text
    first, separator, last = text.partition(",")
    try:
        return int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two step numbers FIRST,LAST; got {text!r}") from None


def method_hyperparameters(method, args, settings):
    """SAEH's alpha/beta/gamma come from the flags or the script's settings, for SAEH and SAEH-minus only; other
    methods take --set only (DSH's own alpha, its regulariser weight, is not SAEH's alpha)."""
    given = dict(args.hyperparameters)
    for name in SAEH_WEIGHTS:
        value = getattr(args, name)
        if method.name in SAEH_METHODS and name in method.hyperparameters:
            given.setdefault(name, value if value is not None else settings[name])
        elif value is not None:
            raise SaehError(f"--{name} is a weight of SAEH; method {method.name!r} takes "
                            f"{', '.join(sorted(method.hyperparameters)) or 'no hyperparameters'} (use --set)")
    return method.resolve(given)


ORIGINAL_PROTOCOL = "dsh"  # what the original's test-set dump can be scored under: the test set against itself


def check_data_kind(args, method):
    """Refuse a method on data of another kind (a text method on images, or the reverse), and the image-only flags
    on text, before the data loads."""
    from saeh.data.sources import data_kind_of

    method_kind, data_kind = getattr(method, "data_kind", "images"), data_kind_of(args.which_data)
    if method_kind != data_kind:
        raise SaehError(f"method {method.name!r} hashes {method_kind}, but --which-data {args.which_data} holds "
                        f"{data_kind}")
    if data_kind == "text" and args.augment:
        raise SaehError("--augment flips and shifts images; --which-data text holds texts (pass --no-augment)")


def check_original_flags(args, method):
    """--original fixes the data procedure; flags that would change it are refused rather than ignored."""
    if not args.original:
        return
    if method.kind == "shallow":
        raise SaehError(f"--original is the deep methods' training procedure; {method.name!r} is not trained by it")
    if args.protocol not in (None, ORIGINAL_PROTOCOL):
        raise SaehError(f"--original scores the test set against itself (protocol {ORIGINAL_PROTOCOL}); got "
                        f"--protocol {args.protocol}")
    if args.validation_size is not None:
        raise SaehError("--original trains on the whole training set and watches the test set; --validation-size "
                        "does not apply")


def main(argv=None, settings=None):
    train_from_arguments(argv, settings)
    return 0


def train_from_arguments(argv=None, settings=None):
    """What `hash_su_ae_train.py` does with the arguments `argv` (and the script's `settings` as the defaults of
    its flags): train, dump the codes, score them. Returns {"run_dir", "scores", "codes": {set: dump path}};
    "scores" and "codes" are None on a worker other than the chief, which writes neither."""
    settings = {**SETTINGS, **(settings or {})}
    parser = build_parser(settings)
    args = presets.parse_args(parser, argv)  # a --preset's settings, then the flags given
    started = time.time()
    import baselines
    from saeh import registry

    method = registry.get(args.method)
    hyperparameters = method_hyperparameters(method, args, settings)
    # Checked before the data loads (the library checks the training settings again for its Python callers, by their
    # argument names) and the scoring flags before hours of training, where they are first used.
    for flag in ("hash_bits", "batch_size", "epochs", "stack_num"):
        if getattr(args, flag) is not None:
            validation.positive_int(getattr(args, flag), "--" + flag.replace("_", "-"))
    validation.positive_int(args.top_k, "--top-k")
    validation.non_negative_int(args.radius, "--radius")
    if args.features and method.kind != "shallow":
        raise SaehError(f"--features is for the shallow methods (`python -m baselines` lists them); {method.name!r} "
                        "learns its own")
    check_original_flags(args, method)
    check_data_kind(args, method)
    args.load_path = common.model_argument(args.load_path)  # a run folder or shipped name: its model.keras
    recipes.ablated(recipes.for_method(method, args.encoder), args.ablate)  # an unknown ingredient, before the data loads
    protocol = ORIGINAL_PROTOCOL if args.original else args.protocol or defaults.PROTOCOL
    select_on_test = bool(args.select_on_test or args.original)
    seed = defaults.SEED if args.seed is None else args.seed
    validation_size = defaults.VALIDATION_SIZE if args.validation_size is None else args.validation_size
    data, split = load_split(args.which_data, args.data_dir, args.image_size, protocol, seed, validation_size,
                             select_on_test, stream=args.stream, memory_budget=args.memory_budget,
                             cache_dir=args.cache_dir)
    if args.num_classes is not None and args.num_classes != data.num_classes:
        raise SaehError(f"--num-classes is {args.num_classes} but {args.which_data} has {data.num_classes} classes")
    print(split.describe())
    if method.kind != "shallow":  # before the run folder: the paper's settings take days on a CPU
        cpu_cost.check_cpu_training(encoder=args.encoder, stack_num=args.stack_num, epochs=args.epochs,
                                    training_images=len(split.train), which_data=args.which_data,
                                    agreed=args.yes_train_on_cpu)
        check_load_path_fits(args.load_path, data, args.hash_bits)
    if getattr(method, "asymmetric", False):
        learned_database_rows(method, split)  # refused now rather than after training (its docstring)
    run_name = args.run_name or f"{method.name}_{data.name}_{args.hash_bits}bits" + ("_original" if args.original
                                                                                     else "")
    folder = RunFolder(os.path.join(args.save_dir, run_name))
    data_settings = {"which_data": args.which_data, "data_dir": args.data_dir, "protocol": protocol, "seed": seed,
                     "validation_size": validation_size, "select_on_test": select_on_test,
                     "image_size": args.image_size, "procedure": "original" if args.original else "default",
                     "preset": args.preset}
    if method.kind == "shallow":
        ignored = [f"--{name.replace('_', '-')}" for name in DEEP_ONLY
                   if getattr(args, name) != parser.get_default(name)]
        if ignored:
            print(f"note: {method.name} is not trained by the Keras loop and ignores {', '.join(ignored)}")
        codes = baselines.fit_shallow(method, split, folder.run_dir, hash_bits=args.hash_bits, seed=seed,
                                      hyperparameters=hyperparameters, settings=data_settings,
                                      overwrite=args.overwrite, feature_model=args.features)
        codes = {name: dumps.with_image_ids(set_codes, getattr(split, name)) for name, set_codes in codes.items()}
        paths = dumps.write_codes(codes, folder.codes, overwrite=True)
    else:
        trained = train_deep(method, data, split, folder, args, hyperparameters, data_settings)
        if not trained.chief:  # one of several workers: the chief writes the codes and scores
            print(f"this worker's part of the training is done; the chief writes {folder.run_dir}")
            return {"run_dir": folder.run_dir, "scores": None, "codes": None}
        codes, paths = dumps.dump_run_codes(trained.model, split, {**data_settings, "method": method.name},
                                            folder.dump_directory(data_settings["procedure"]), overwrite=True,
                                            state_arrays=None if trained.state is None else trained.state.numpy())
    scores = score(codes["query"], codes["database"], top_k=args.top_k, radius=args.radius)
    write_json(folder.scores,
               {**scores, "seconds": round(time.time() - started, 1), "bits": codes["query"].bits,
                "protocol": protocol, "procedure": data_settings["procedure"],
                "n_query": len(codes["query"]), "n_database": len(codes["database"])})
    if args.original:
        print(f"scores of the original procedure's dump, protocol {ORIGINAL_PROTOCOL}: the {len(codes['query'])} "
              "test images as queries and as the database (each finds itself)")
    print(" ".join(f"{name} = {value:.4f}" for name, value in scores.items()))
    print(f"evaluate in full with: python evaluate.py {folder.run_dir}  (or --query {paths['query']} --database "
          f"{paths['database']})")
    return {"run_dir": folder.run_dir, "scores": scores, "codes": paths}


def check_load_path_fits(load_path, data, hash_bits):
    """Refuse a --load-path model of other images or another code length before the run folder is made: Keras
    would print a warning per layer it cannot fill and then fail. Checked from the model file's config; a
    .weights.h5 file records none, and is left to the training loop's own check."""
    from saeh.inference import check_model_file, saved_shapes

    if load_path is None or not load_path.endswith(".keras"):
        return
    saved_shape, saved_bits = saved_shapes(check_model_file(load_path, "load_path"))
    if saved_shape is not None and tuple(saved_shape) != tuple(data.image_shape):
        raise SaehError(f"--load-path {load_path} was trained on images of shape {tuple(saved_shape)}, but "
                        f"{data.name} has images of shape {tuple(data.image_shape)}: start from a model trained on "
                        "this data (or on images of its size)")
    if saved_bits is not None and saved_bits != hash_bits:
        raise SaehError(f"--load-path {load_path} has {saved_bits}-bit codes but --hash-bits is {hash_bits}: pass "
                        f"--hash-bits {saved_bits}, or start from a model of {hash_bits} bits")


def batch_size_for(method, args):
    """(batch size, where it comes from): an explicit --batch-size wins; else the batch of the recipe the method
    trains with (`saeh.recipes.for_method`: its authors', or an encoder's own recipe's) where it names one; else the
    preset's, or the script's setting."""
    from saeh import recipes

    if "batch_size" in getattr(args, "given", ()):
        return args.batch_size, "--batch-size"
    recipe = recipes.for_method(method, args.encoder)
    if recipe.batch_size is not None:
        return recipe.batch_size, f"recipe {recipe.name}'s"
    origin = f"preset {args.preset}'s" if "batch_size" in getattr(args, "from_preset", ()) else "the script's setting"
    return args.batch_size, origin


def train_deep(method, data, split, folder, args, hyperparameters, data_settings):
    """Train (or resume, or reuse a finished run of) a deep method; return its `saeh.training.TrainedRun`."""
    from saeh import recipes, training

    batch_size, origin = batch_size_for(method, args)
    print(f"batch size {batch_size} ({origin}; an explicit --batch-size wins over a method's recipe, which wins "
          "over a preset)")
    epochs = args.epochs
    if "epochs" in args.from_preset:  # passes over the training set: the same image visits for every method
        epochs = method.epochs_for_passes(args.epochs, len(split.train), data_settings["seed"], hyperparameters)
        if epochs != args.epochs:
            print(f"preset {args.preset}: {args.epochs} passes over the {len(split.train)} training images are "
                  f"{epochs} epochs of {method.name}, whose epoch visits a sample of them")
    # The library's check, before the warm-up below compares with it (a caller's settings may hold any epochs).
    epochs = validation.positive_int(epochs, "epochs")
    warmup_epochs = args.warmup_epochs
    if warmup_epochs is None:
        from saeh.models.encoders import DEFAULT_WARMUP_EPOCHS

        # The warm-up is the original step schedule's; a recipe with a schedule of its own trains without one.
        on_steps = recipes.for_method(method, args.encoder).schedule == "step"
        warmup_epochs = min(DEFAULT_WARMUP_EPOCHS.get(args.encoder, 0.0), epochs) if on_steps else 0.0
        if warmup_epochs:
            print(f"encoder {args.encoder}: a linear learning-rate warm-up over the first {warmup_epochs:g} epoch(s) "
                  "(--warmup-epochs 0 for none)")
    trained = training.train(
        method, split, data.num_classes, folder.run_dir, hash_bits=args.hash_bits, stack_num=args.stack_num,
        encoder=args.encoder, encoder_weights=args.encoder_weights, hyperparameters=hyperparameters,
        epochs=epochs, batch_size=batch_size, seed=data_settings["seed"], augment=args.augment,
        load_path=args.load_path, resume=args.resume, overwrite=args.overwrite,
        mixed_precision=args.mixed_precision, jit_compile=AUTO_ON_OFF[args.jit_compile],
        deterministic=args.deterministic, verbose="auto" if args.verbose is None else args.verbose,
        learning_rate=args.learning_rate, final_weights="last" if args.original else "best",
        settings=data_settings, profile_steps=args.profile, warmup_epochs=warmup_epochs,
        recipe=recipes.ablated(recipes.for_method(method, args.encoder), args.ablate) if args.ablate else None,
        # A run killed after its model was written but before its scores: the same command dumps and scores it.
        reuse_finished=not folder.is_scored())
    return trained
