"""The data of a run: a dataset loaded and split as data settings say (`load_split`: the data flags' values), or as
the run.json of a trained model's run folder recorded them (`split_of_run`)."""

from saeh import defaults
from saeh.errors import SaehError

# --stream and --jit-compile: the word on the command line, and the value the library takes ("auto" lets it choose)
AUTO_ON_OFF = {"auto": "auto", "on": True, "off": False}


def load_split(which_data, data_dir=None, image_size=None, protocol=defaults.PROTOCOL, seed=defaults.SEED,
               validation_size=defaults.VALIDATION_SIZE, select_on_test=False, stream="auto", memory_budget=None,
               log=print, cache_dir=None):
    """Load a dataset and apply a protocol: (LabelledData, Split). `stream`: "auto", "on", "off" (the --stream
    values) or "auto", True, False (`load_dataset`'s); `memory_budget`, `cache_dir` as for `load_dataset`."""
    from saeh.data import load_dataset, make_split

    if not which_data:
        raise SaehError("no dataset given; pass --which-data")
    data = load_dataset(which_data, data_dir=data_dir, image_size=tuple(image_size) if image_size else None,
                        stream=AUTO_ON_OFF.get(stream, stream), memory_budget=memory_budget, log=log,
                        cache_dir=cache_dir)
    if validation_size is not None and validation_size >= 1 and float(validation_size).is_integer():
        validation_size = int(validation_size)  # a count of images rather than a fraction
    split = make_split(data, protocol=protocol, seed=seed, validation_size=validation_size,
                       select_on_test=bool(select_on_test))
    return data, split


DATA_SETTINGS = ("which_data", "data_dir", "image_size", "protocol", "seed", "validation_size", "select_on_test")


def split_of_run(model_path, overrides=None, stream="auto", memory_budget=None, cache_dir=None):
    """The (data, split) a model was trained for: the data settings of its run.json, where `overrides` (flags the
    user gave; None means not given) do not replace them. `stream`, `memory_budget`, `cache_dir`: as for
    `load_split`."""
    from saeh.run_folder import RunFolder

    recorded = RunFolder.of_model(model_path).settings()
    settings = {name: recorded.get(name) for name in DATA_SETTINGS}
    settings.update({name: value for name, value in (overrides or {}).items() if value is not None})
    if not settings["which_data"]:
        raise SaehError(f"no run.json beside {model_path} says which data it was trained on; pass --which-data")
    return load_split(
        settings["which_data"], settings["data_dir"], settings["image_size"], settings["protocol"] or defaults.PROTOCOL,
        defaults.SEED if settings["seed"] is None else settings["seed"],
        defaults.VALIDATION_SIZE if settings["validation_size"] is None else settings["validation_size"],
        bool(settings["select_on_test"]), stream=stream, memory_budget=memory_budget, cache_dir=cache_dir)
