"""The registry of dataset sources: `which_data` name -> `Source`, filled by `@register_source` beside each loader.

    from saeh.data import sources
    sources.names()          # ("mnist-sample", "mnist", "cifar10", "svhn", "folder", "list")
    sources.find("cifar10")  # its Source, or None for a name no source has

A source module registers its loader when it is imported; `registered`, `names` and `find` import every module of
this package first, so a new source is one new file here. Nothing is imported when this module is.
"""

import dataclasses
import importlib
import pkgutil

from saeh.errors import SaehError

# The arguments of `load_dataset` that a loader may take, as it names them in `takes`. A loader that takes "stream"
# reads image files and may leave them there; one that does not holds arrays, always loaded into memory.
LOAD_ARGUMENTS = ("data_dir", "image_size", "stream", "memory_budget", "log", "cache_dir")

_SOURCES = {}  # filled by `register_source` as source modules are imported


@dataclasses.dataclass(frozen=True)
class Source:
    """A dataset source: its `which_data` name and the loader `load_dataset` calls for it.

    `takes`: the arguments of `load_dataset` the loader accepts (from `LOAD_ARGUMENTS`); data_dir is passed as the
    first positional argument, the others by keyword. `needs_data_dir`: the source has no default location.
    `rank`: where `names` lists it, lowest first. `data_kind`: what its arrays hold, "images" or "text" (token ids
    packed in the image layout, `saeh.data.text`), matched against a method's own `data_kind`.
    """

    name: str
    load: object
    takes: tuple
    rank: int
    needs_data_dir: bool = False
    data_kind: str = "images"

    @property
    def streams(self):
        """True when the source reads image files, which it may leave in their files (`ImageFiles`); False when it
        holds arrays, always loaded into memory."""
        return "stream" in self.takes

    def load_with(self, arguments):
        """The loader's `LabelledData` for `arguments` (a dict of `load_dataset`'s arguments by name)."""
        keywords = {name: arguments[name] for name in self.takes if name != "data_dir"}
        if "data_dir" in self.takes:
            return self.load(arguments["data_dir"], **keywords)
        return self.load(**keywords)


DATA_KINDS = ("images", "text")


def register_source(name, *, rank, takes=(), needs_data_dir=False, data_kind="images"):
    """Decorate a loader to register it as the source `name` (see `Source` for the other arguments); the loader is
    returned unchanged. A second loader claiming a registered name is an error."""
    if data_kind not in DATA_KINDS:
        raise SaehError(f"source {name!r}: data_kind must be one of {', '.join(DATA_KINDS)}; got {data_kind!r}")
    unknown = [argument for argument in takes if argument not in LOAD_ARGUMENTS]
    if unknown:
        raise SaehError(f"source {name!r} takes unknown argument(s) {', '.join(unknown)}; expected some of "
                        f"{', '.join(LOAD_ARGUMENTS)}")

    def register(load):
        source = Source(name=name, load=load, takes=tuple(takes), rank=rank, needs_data_dir=needs_data_dir,
                        data_kind=data_kind)
        existing = _SOURCES.get(name)
        if existing is not None and existing.load is not load:
            raise SaehError(f"two loaders are registered as the dataset source {name!r}: "
                            f"{existing.load.__module__}.{existing.load.__qualname__} and "
                            f"{load.__module__}.{load.__qualname__}")
        _SOURCES[name] = source
        return load

    return register


def _load():
    for module in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)


def registered():
    """Every registered `Source`, by rank."""
    _load()
    return tuple(sorted(_SOURCES.values(), key=lambda source: source.rank))


def names():
    """The registered source names, by rank."""
    return tuple(source.name for source in registered())


def find(name):
    """The source registered as `name` (already lower case), or None."""
    _load()
    return _SOURCES.get(name)


def data_kind_of(which_data):
    """What the dataset `which_data` (a source's name, or a path: an image folder or an .npz) holds: "images" or
    "text"."""
    source = find(str(which_data).strip().lower())
    return "images" if source is None else source.data_kind
