"""The query and database codes of a trained run, made as its method makes them: the method its run.json names,
the method's state beside the model, and for an asymmetric method the database codes it learned."""

import os

import numpy as np

from saeh.errors import SaehError


def method_of_run(settings):
    """The registered method a run's settings name, or None (a model file without run.json)."""
    name = settings.get("method")
    if not name:
        return None
    from saeh.registry import get

    return get(name)


def run_state_arrays(folder, settings):
    """The method state beside a run's model (method_state.npz) when its method keeps one, else None."""
    method = method_of_run(settings)
    if method is None or getattr(method, "state", None) is None or not os.path.exists(folder.method_state):
        return None
    from saeh.method_state import load_arrays

    return load_arrays(folder.method_state)


def learned_database_rows(method, split):
    """The database row of each code an asymmetric `method` learns (its training images, then its validation
    images), once it is checked that together they are the whole database.

    The rule: an asymmetric method's database holds its learned codes only, never a mix of learned codes and network
    codes (the network's codes of the database images it did not learn sit near the queries' and swamp the
    ranking). ADSH learns a code for every image of its database, which is its training set; here it learns one
    for every training and validation image of the run (a validation image's code comes from its labels alone, as
    for a training image not sampled yet: `baselines.adsh`). So the database must hold those images and no other:
    protocol ssdh (database = the training set = training + validation images). Under dpsh (59,000 database images,
    5,500 of them training or validation) and dsh (the test set) a SaehError says so, before training
    (`hash_su_ae_train.py`) and when the codes are made. The validation set must not be the query set
    (select_on_test, --original): the queries' labels would then make codes."""
    name, protocol = method.name, split.protocol
    if split.validation_is_query:
        raise SaehError(f"method {name!r} learns a database code for every validation image from its labels; with "
                        "the query set as the validation set (select_on_test, --original) it would learn the "
                        "queries' labels: use a validation set carved from the training images (the default)")
    parts = []
    for what, images, rows in (("training", split.train, split.train_in_database),
                               ("validation", split.validation, split.validation_in_database)):
        if rows is None or len(rows) != len(images):
            raise SaehError(f"method {name!r} learns the database codes of its {what} images, but this split does "
                            f"not say where its {len(images)} {what} images are in the database")
        parts.append(np.asarray(rows, np.int64))
    rows = np.concatenate(parts)
    covered = np.zeros(len(split.database), bool)
    covered[rows[rows >= 0]] = True
    missing = int(np.count_nonzero(~covered))
    if missing:
        remedy = ("The dataset comes with its own database set (list files' database.txt): use a symmetric method"
                  if split.database_given else "Use --protocol ssdh, whose database is the training set (training + "
                  "validation images), or a symmetric method")
        raise SaehError(
            f"method {name!r} is asymmetric: its database codes are the codes it learns for its training and "
            f"validation images, but under protocol {protocol!r} {missing} of the {len(split.database)} database "
            f"images are neither, and their network codes would be mixed with the learned ones. {remedy}")
    return rows


def run_database_codes(model, split, settings, state_arrays=None, batch_size=None, out=None, encoder=None):
    """The database codes of a run: the network's codes at its method's threshold; for an asymmetric method, the
    codes it learned (`state_arrays`, its state) and only those: each database image takes the learned code of the
    training or validation image it is (`learned_database_rows`, which refuses a database holding any other image;
    the network encodes no database image). `out` and `encoder`: as for `saeh.inference.encode`."""
    from saeh.codes import make_codes
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_threshold

    batch_size = batch_size or ENCODE_BATCH_SIZE
    method = method_of_run(settings)
    if method is None or not getattr(method, "asymmetric", False):
        return codes_for(model, split.database, batch_size, method, out=out, encoder=encoder, progress="auto")
    if state_arrays is None:
        raise SaehError(f"method {method.name!r} learns its database codes, but its state was not found (the run "
                        "folder's method_state.npz)")
    rows = learned_database_rows(method, split)
    learned = np.asarray(method.database_codes(state_arrays), np.float32)
    if len(learned) != len(rows):
        raise SaehError(f"the run's learned database codes cover {len(learned)} images but this split has "
                        f"{len(split.train)} training and {len(split.validation)} validation images: use the data "
                        "settings the model was trained with (a run whose codes cover its training images alone "
                        "predates the codes of the validation images: train it again)")
    codes = np.empty((len(split.database), learned.shape[1]), np.float32)
    inside = rows >= 0
    codes[rows[inside]] = learned[inside]
    return make_codes(codes, split.database.labels, hash_threshold(model, method))


def run_code_sets(model, split, settings, state_arrays=None, batch_size=None, outs=None):
    """{"query": Codes, "database": Codes} of a run (`run_database_codes` for the database). `outs`: optional
    {set: array} to encode a set into (see `saeh.inference.encode`)."""
    from saeh.inference import ENCODE_BATCH_SIZE, codes_for, hash_encoder

    batch_size = batch_size or ENCODE_BATCH_SIZE
    outs = outs or {}
    encoder = hash_encoder(model)  # one for both sets: each new one traces its prediction again
    return {"query": codes_for(model, split.query, batch_size, method_of_run(settings), out=outs.get("query"),
                               encoder=encoder, progress="auto"),
            "database": run_database_codes(model, split, settings, state_arrays, batch_size, out=outs.get("database"),
                                           encoder=encoder)}
