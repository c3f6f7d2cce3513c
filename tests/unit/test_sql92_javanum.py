"""Java's number parsing and ordering as the SQL92 filter reproduces them."""

from __future__ import annotations

import math

import pytest

from runtime.filter.javanum import (
    Abort,
    comparator,
    double_compare,
    java_bool,
    java_double,
    java_int,
    java_long,
    order_comparator,
)
from runtime.filter.nodes import BOOL, DOUBLE, INT, LONG, STR


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("5", 5),
        ("+5", 5),
        ("-5", -5),
        ("-0", 0),
        ("00012", 12),
        ("2147483647", 2**31 - 1),
        ("-2147483648", -(2**31)),
        ("\u0663", 3),  # ARABIC-INDIC DIGIT THREE: Character.digit accepts it
        ("0" * 5000 + "7", 7),  # leading zeros past Python's int() digit limit
    ],
)
def test_java_int_accepts(text: str, value: int) -> None:
    assert java_int(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "+", "-", " 5", "5 ", "5.0", "1e3", "1_000", "0x10", "2147483648", "-2147483649",
     "\u00b2", "9" * 5000, "abc", "--5", "+-5"],
)  # fmt: skip
def test_java_int_refuses(text: str) -> None:
    with pytest.raises(Abort):
        java_int(text)


def test_java_long_range() -> None:
    assert java_long("9223372036854775807") == 2**63 - 1
    assert java_long("-9223372036854775808") == -(2**63)
    assert java_long("2147483648") == 2**31
    for text in ("9223372036854775808", "-9223372036854775809", "1L"):
        with pytest.raises(Abort):
            java_long(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5.0),
        ("-5.5", -5.5),
        ("+.5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E+3", 1000.0),
        ("1e-3", 0.001),
        ("5f", 5.0),
        ("5D", 5.0),
        (" \t5\n", 5.0),
        ("\x005\x1f", 5.0),  # String.trim drops every char up to U+0020
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("0x1p3", 8.0),
        ("-0X1.8P1", -3.0),
        ("0x1p99999", math.inf),
        ("1e400", math.inf),
        ("1e-400", 0.0),
    ],
)
def test_java_double_accepts(text: str, value: float) -> None:
    assert java_double(text) == value


def test_java_double_nan_and_negative_zero() -> None:
    assert math.isnan(java_double("NaN"))
    assert math.isnan(java_double("-NaN"))
    assert math.copysign(1.0, java_double("-0")) == -1.0


@pytest.mark.parametrize(
    "text",
    ["", ".", "e5", "1e", "1e+", "inf", "nan", "infinity", "NaNf", "1_0", "\u0663",
     "\u00a05", "0x1", "0x", "1.5.5", "5ff", "--5", "abc"],
)  # fmt: skip
def test_java_double_refuses(text: str) -> None:
    with pytest.raises(Abort):
        java_double(text)


def test_java_bool() -> None:
    assert [java_bool(t) for t in ("true", "TRUE", "tRuE")] == [True, True, True]
    assert [java_bool(t) for t in ("yes", "1", " true", "truee", "")] == [False] * 5


def test_double_compare_is_javas_total_order() -> None:
    nan = math.nan
    assert double_compare(1.0, 2.0) == -1
    assert double_compare(2.0, 1.0) == 1
    assert double_compare(1.0, 1.0) == 0
    assert double_compare(-0.0, 0.0) == -1
    assert double_compare(0.0, -0.0) == 1
    assert double_compare(-0.0, -0.0) == 0
    assert double_compare(nan, nan) == 0
    assert double_compare(nan, math.inf) == 1
    assert double_compare(math.inf, nan) == -1


def test_comparator_matrix() -> None:
    assert comparator(STR, INT)("5", 5) == 0
    assert comparator(INT, STR)(5, "6") == -1
    assert comparator(STR, DOUBLE)("5", 5.0) == 0
    assert comparator(INT, DOUBLE)(5, 5.0) == 0
    assert comparator(LONG, INT)(2**40, 5) == 1
    assert comparator(STR, BOOL)("TRUE", True) == 0
    assert comparator(BOOL, BOOL)(False, True) == -1
    assert comparator(INT, BOOL)(1, True) == -1  # Java gives up: "not comparable"
    assert comparator(STR, STR)("a", "a") == 0
    assert comparator(STR, STR)("1", "1.0") != 0
    with pytest.raises(Abort):
        comparator(BOOL, STR)(True, "true")  # Java casts the Boolean to String and fails
    with pytest.raises(Abort):
        comparator(STR, INT)("x", 5)
    assert order_comparator(STR, STR)("1", "1.0") == 0
    with pytest.raises(Abort):
        order_comparator(STR, STR)("1", "x")
