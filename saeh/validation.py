"""Checks of single arguments, shared by every layer of the package.

Each check returns the value as a plain Python number (so that it can go into JSON) or raises `SaehError` with a
message that names the argument as the caller calls it (`hash_bits`, `--top-k`) and quotes the bad value.
Booleans are refused wherever a number is expected, and numpy numbers are accepted.
"""

import math
import numbers

from saeh.errors import SaehError


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(value, name):
    """`value` as an int if it is an integer >= 1."""
    if not _is_integer(value) or value <= 0:
        raise SaehError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def non_negative_int(value, name):
    """`value` as an int if it is an integer >= 0 (a seed, a radius, a count that may be zero)."""
    if not _is_integer(value) or value < 0:
        raise SaehError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def finite_number(value, name):
    """`value` as a float if it is a finite real number."""
    if not _is_finite(value):
        raise SaehError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def non_negative_number(value, name):
    """`value` as a float if it is a finite real number >= 0 (a weight, a tolerance)."""
    if not _is_finite(value) or value < 0:
        raise SaehError(f"{name} must be a non-negative number; got {value!r}")
    return float(value)


def positive_number(value, name):
    """`value` as a float if it is a finite real number > 0 (a step size, a scale)."""
    if not _is_finite(value) or value <= 0:
        raise SaehError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def one_of(value, name, choices):
    """`value` if it is one of `choices` (names, listed in the message in their order)."""
    if value not in choices:
        raise SaehError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def number_from_text(value, name, integer=False):
    """`value`, a real number or its text as typed on a command line ("24", "1e-2"), as an int or a finite float;
    with `integer`, as an int, refusing a fraction (2.5)."""
    number = _parsed_number(value.strip()) if isinstance(value, str) else value
    if not _is_finite(number) or (integer and not float(number).is_integer()):
        raise SaehError(f"{name} must be {'an integer' if integer else 'a finite number'}; got {value!r}")
    return int(number) if integer or _is_integer(number) else float(number)


def _parsed_number(text):
    """The int or float that `text` spells; None if it spells neither."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return None
