"""saeh.validation: what each check accepts, what it returns, and its exact message for each kind of bad value."""

import math

import numpy as np
import pytest

from saeh import validation
from saeh.errors import SaehError


@pytest.mark.parametrize("check, value, expected", [
    (validation.positive_int, 1, 1),
    (validation.positive_int, np.int64(32), 32),
    (validation.non_negative_int, 0, 0),
    (validation.non_negative_int, np.uint8(7), 7),
    (validation.finite_number, -2, -2.0),
    (validation.finite_number, np.float32(0.5), 0.5),
    (validation.non_negative_number, 0, 0.0),
    (validation.non_negative_number, 1e-4, 1e-4),
    (validation.positive_number, np.int64(3), 3.0),
])
def test_a_valid_value_comes_back_as_a_plain_python_number(check, value, expected):
    result = check(value, "x")
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("check, value, message", [
    (validation.positive_int, 0, "hash_bits must be a positive integer; got 0"),
    (validation.positive_int, -8, "hash_bits must be a positive integer; got -8"),
    (validation.positive_int, 2.0, "hash_bits must be a positive integer; got 2.0"),
    (validation.positive_int, True, "hash_bits must be a positive integer; got True"),
    (validation.positive_int, None, "hash_bits must be a positive integer; got None"),
    (validation.positive_int, "8", "hash_bits must be a positive integer; got '8'"),
    (validation.non_negative_int, -1, "hash_bits must be a non-negative integer; got -1"),
    (validation.non_negative_int, 1.5, "hash_bits must be a non-negative integer; got 1.5"),
    (validation.non_negative_int, False, "hash_bits must be a non-negative integer; got False"),
    (validation.finite_number, math.nan, "hash_bits must be a finite number; got nan"),
    (validation.finite_number, -math.inf, "hash_bits must be a finite number; got -inf"),
    (validation.finite_number, "1", "hash_bits must be a finite number; got '1'"),
    (validation.finite_number, True, "hash_bits must be a finite number; got True"),
    (validation.non_negative_number, -0.5, "hash_bits must be a non-negative number; got -0.5"),
    (validation.non_negative_number, math.inf, "hash_bits must be a non-negative number; got inf"),
    (validation.non_negative_number, True, "hash_bits must be a non-negative number; got True"),
    (validation.positive_number, 0, "hash_bits must be a positive number; got 0"),
    (validation.positive_number, math.nan, "hash_bits must be a positive number; got nan"),
    (validation.positive_number, None, "hash_bits must be a positive number; got None"),
])
def test_a_bad_value_is_named_and_quoted(check, value, message):
    with pytest.raises(SaehError) as raised:
        check(value, "hash_bits")
    assert str(raised.value) == message


def test_one_of_lists_the_choices_in_their_order():
    assert validation.one_of("last", "final_weights", ("best", "last")) == "last"
    with pytest.raises(SaehError) as raised:
        validation.one_of("first", "final_weights", ("best", "last"))
    assert str(raised.value) == "final_weights must be one of best, last; got 'first'"


def test_a_flag_name_is_quoted_as_given():
    with pytest.raises(SaehError) as raised:
        validation.positive_int(0, "--top-k")
    assert str(raised.value) == "--top-k must be a positive integer; got 0"


@pytest.mark.parametrize("value, integer, expected", [
    ("24", False, 24), (" 1e-2 ", False, 0.01), (np.float32(0.5), False, 0.5), (3, False, 3),
    ("24", True, 24), ("1e3", True, 1000), (24.0, True, 24), (np.int64(7), True, 7),
])
def test_number_from_text_reads_a_number_or_its_text(value, integer, expected):
    result = validation.number_from_text(value, "x", integer=integer)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value, integer, message", [
    ("abc", False, "alpha must be a finite number; got 'abc'"),
    ("nan", False, "alpha must be a finite number; got 'nan'"),
    (True, False, "alpha must be a finite number; got True"),
    (None, False, "alpha must be a finite number; got None"),
    (2.5, True, "alpha must be an integer; got 2.5"),
    ("inf", True, "alpha must be an integer; got 'inf'"),
    (False, True, "alpha must be an integer; got False"),
])
def test_number_from_text_names_what_it_expected(value, integer, message):
    with pytest.raises(SaehError) as raised:
        validation.number_from_text(value, "alpha", integer=integer)
    assert str(raised.value) == message
