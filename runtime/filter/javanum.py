"""Java's number parsing and ordering as RocketMQ's filter uses them.

RocketMQ compares a string property with a literal by converting the string with
``Integer.valueOf``, ``Long.valueOf``, ``Double.valueOf`` or ``Boolean.valueOf`` (chosen by the
literal's type), and orders doubles with ``Double.compare``. A failed conversion is an exception
that makes the whole expression not match; here it is ``Abort``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from runtime.filter.nodes import BOOL, DOUBLE, INT, LONG, NULL, STR

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class Abort(Exception):
    """A conversion RocketMQ would fail with an exception: the message does not match."""


# Double.valueOf: trimmed of chars <= U+0020, ASCII digits, optional f/F/d/D suffix, NaN, Infinity,
# and hexadecimal floating point with a binary exponent.
_TRIM = "".join(chr(c) for c in range(0x21))
_PLAIN_DECIMAL_CHARS = "0123456789.+-eE"
_JAVA_DECIMAL = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)"
)
_JAVA_HEX = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?"
)


def _digits_value(body: str, limit: int) -> int:
    """Value of a run of Unicode decimal digits, or Abort once it passes ``limit``."""
    if len(body) <= 18:
        return int(body)
    value = 0
    for ch in body:
        value = value * 10 + unicodedata.decimal(ch)
        if value > limit:
            raise Abort
    return value


def _parse_integral(text: str, low: int, high: int) -> int:
    """Integer.parseInt / Long.parseLong: optional sign, Unicode decimal digits, range checked."""
    if text.isdecimal():
        value = _digits_value(text, high)
    else:
        sign = text[:1]
        body = text[1:]
        if sign not in ("+", "-") or not body.isdecimal():
            raise Abort
        value = _digits_value(body, -low if sign == "-" else high)
        if sign == "-":
            value = -value
    if value < low or value > high:
        raise Abort
    return value


def java_int(text: str) -> int:
    """``Integer.valueOf(text)``; Abort when Java would throw."""
    return _parse_integral(text, INT_MIN, INT_MAX)


def java_long(text: str) -> int:
    """``Long.valueOf(text)``; Abort when Java would throw."""
    return _parse_integral(text, LONG_MIN, LONG_MAX)


def java_double(text: str) -> float:
    """``Double.valueOf(text)``; Abort when Java would throw."""
    if not text.strip(_PLAIN_DECIMAL_CHARS):
        # Only digits, '.', signs and 'e': Python's float() accepts exactly what Java accepts.
        try:
            return float(text)
        except ValueError:
            raise Abort from None
    text = text.strip(_TRIM)
    if _JAVA_DECIMAL.fullmatch(text):
        if text.endswith("NaN"):
            return math.nan
        if text.endswith("Infinity"):
            return -math.inf if text[0] == "-" else math.inf
        return float(text[:-1] if text[-1] in "fFdD" else text)
    if _JAVA_HEX.fullmatch(text):
        try:
            return float.fromhex(text[:-1] if text[-1] in "fFdD" else text)
        except OverflowError:
            return -math.inf if text[0] == "-" else math.inf
    raise Abort


def java_bool(text: str) -> bool:
    """``Boolean.valueOf(text)``: true only for "true" in any case."""
    return len(text) == 4 and text.lower() == "true"


def double_compare(a: float, b: float) -> int:
    """``Double.compare``: -0.0 < 0.0, and NaN equals NaN and is above everything else."""
    if a < b:
        return -1
    if a > b:
        return 1
    if a == b:
        if a == 0.0:
            sa, sb = math.copysign(1.0, a), math.copysign(1.0, b)
            return (sa > sb) - (sa < sb)
        return 0
    a_nan, b_nan = a != a, b != b
    return (a_nan > b_nan) - (a_nan < b_nan)


def _plain(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _abort(a: Any, b: Any) -> int:
    raise Abort


def _below(a: Any, b: Any) -> int:
    return -1


Comparator = Callable[[Any, Any], int]

_CONVERT: dict[str, Callable[[str], Any]] = {
    INT: java_int,
    LONG: java_long,
    DOUBLE: java_double,
    BOOL: java_bool,
}


def comparator(left: str, right: str) -> Comparator:
    """RocketMQ's ``__compare`` for non-null values of static types ``left`` and ``right``:
    -1, 0 or 1, or Abort where Java throws."""
    if NULL in (left, right):
        return _below  # never called: a null-typed value is always null
    if left == right:
        return double_compare if left == DOUBLE else _plain
    if left == BOOL:
        return _abort if right == STR else _below  # Java casts the Boolean to String and fails
    if right == BOOL:
        if left == STR:
            return lambda a, b: _plain(java_bool(a), b)
        return _below
    if left == STR:
        convert = _CONVERT[right]
        if right == DOUBLE:
            return lambda a, b: double_compare(java_double(a), b)
        return lambda a, b: _plain(convert(a), b)
    if right == STR:
        convert = _CONVERT[left]
        if left == DOUBLE:
            return lambda a, b: double_compare(a, java_double(b))
        return lambda a, b: _plain(a, convert(b))
    if DOUBLE in (left, right):
        return lambda a, b: double_compare(float(a), float(b))
    return _plain  # Integer against Long


def order_comparator(left: str, right: str) -> Comparator:
    """The comparison behind ``>``, ``>=``, ``<``, ``<=``: two strings are both read as doubles
    (Abort if either is not a number); other pairs as in ``comparator``."""
    if left == right == STR:
        return lambda a, b: double_compare(java_double(a), java_double(b))
    return comparator(left, right)
