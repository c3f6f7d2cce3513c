"""Semantics of the SQL92 filter: every operator, precedence, literals, NULL handling and the
conversions RocketMQ applies when a string property meets a number or boolean literal."""

from __future__ import annotations

import pytest

from runtime.filter import FilterError, compile_cached, compile_expression
from runtime.filter.sql92 import _compile_outcome, cache_clear


def match(expression: str, **properties: str) -> bool:
    return compile_expression(expression)(properties)


# -- numeric comparisons --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("a > 5", "6", True),
        ("a > 5", "5", False),
        ("a >= 5", "5", True),
        ("a >= 5", "4", False),
        ("a < 5", "4", True),
        ("a < 5", "5", False),
        ("a <= 5", "5", True),
        ("a <= 5", "6", False),
        ("a = 5", "5", True),
        ("a = 5", "6", False),
        ("a <> 5", "6", True),
        ("a <> 5", "5", False),
        ("a = 5", "+5", True),  # Integer.valueOf accepts a plus sign
        ("a = 5", "005", True),  # and leading zeros
        ("a > -5", "-4", True),
        ("a > -5", "-6", False),
        ("a < -0", "-1", True),
        ("a > 2147483648", "2147483649", True),  # a Long literal reads the property as a Long
        ("a > 2147483647", "2147483648", False),  # an Integer literal as an Integer: overflow
        ("a = 9223372036854775807", "9223372036854775807", True),
        ("a = 5L", "5", True),
    ],
)
def test_integer_comparisons(expression: str, value: str, expected: bool) -> None:
    assert match(expression, a=value) is expected


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("a > 3.14", "3.1415", True),
        ("a > 3.14", "3.14", False),
        ("a >= 3.14", "3.14", True),
        ("a < 3.14", "3", True),  # a decimal literal reads the property as a double
        ("a = 5.0", "5", True),
        ("a = 5.", "5", True),
        ("a = .5", "0.5", True),
        ("a > 3.1E10", "31415000000", True),
        ("a > 1e3", "1001", True),
        ("a < -2.5", "-3", True),
        ("a = 5.0", " 5 ", True),  # Double.valueOf trims
        ("a = 5.0", "5d", True),  # and takes a type suffix
        ("a = 8.0", "0x1p3", True),  # and hexadecimal
        ("a = 0.0", "0", True),  # RocketMQ itself rejects a 0.0 literal; accepted here
        ("a = 0.0", "-0", False),  # Double.compare: -0.0 < 0.0
        ("a < 0.0", "-0.0", True),
        ("a > 5.0", "NaN", True),  # Double.compare puts NaN above everything
        ("a < 5.0", "NaN", False),
        ("a > 1e300", "Infinity", True),
        ("a < -1e300", "-Infinity", True),
    ],
)
def test_decimal_comparisons(expression: str, value: str, expected: bool) -> None:
    assert match(expression, a=value) is expected


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("a > 5", "5.5"),  # Integer.valueOf("5.5") throws
        ("a = 5", "5.0"),
        ("a > 5", "abc"),
        ("a > 5", ""),
        ("a > 5", " 6"),  # Integer.valueOf does not trim
        ("a > 5", "1_000"),
        ("a > 5", "2147483648"),  # past Integer range against an Integer literal
        ("a > 5.0", "abc"),
        ("a > 5.0", "inf"),  # Java spells it Infinity
        ("a > 5.0", "1_0"),
        ("a > 5.0", "\u00a06"),  # only chars up to U+0020 are trimmed
        ("a < 5", "abc"),
        ("a <> 5", "abc"),  # the failure is not negated: the message just does not match
    ],
)
def test_non_numeric_property_does_not_match(expression: str, value: str) -> None:
    assert match(expression, a=value) is False
    assert match(f"NOT ({expression})", a=value) is False


def test_conversion_failure_fails_the_whole_expression() -> None:
    # RocketMQ evaluates left to right and a failed conversion throws out of the whole
    # expression, so an OR does not rescue it, but a clause decided before it does.
    assert match("a > 5 OR b = 'x'", a="abc", b="x") is False
    assert match("b = 'x' OR a > 5", a="abc", b="x") is True
    assert match("b = 'y' AND a > 5", a="abc", b="x") is False


def test_unicode_digits_parse_like_java() -> None:
    # Integer.parseInt takes any Unicode decimal digit; Double.valueOf only ASCII ones.
    assert match("a = 3", a="\u0663") is True
    assert match("a = 3.0", a="\u0663") is False
    assert match("a = 12", a="\uff11\uff12") is True


def test_literal_on_either_side() -> None:
    for value, expected in [("6", True), ("5", False), ("abc", False)]:
        assert match("5 < a", a=value) is expected
        assert match("a > 5", a=value) is expected
    assert match("3.5 >= a", a="3.5") is True
    assert match("'x' = a", a="x") is True
    assert match("5 = 5.0") is True
    assert match("5 > 4") is True
    assert match("-5 < -4.5") is True


def test_two_properties() -> None:
    assert match("a > b", a="20", b="10") is True
    assert match("a > b", a="10", b="20") is False
    assert match("a > b", a="1.5", b="1") is True  # two strings compare as doubles
    assert match("a > b", a="x", b="1") is False
    assert match("a = b", a="3.14", b="3.14") is True
    assert match("a <> b", a="3.14", b="3.141") is True
    assert match("a = b", a="1", b="1.0") is False  # equality of two strings is textual


# -- strings --------------------------------------------------------------------------------


def test_string_equality_is_exact() -> None:
    assert match("a = 'abc'", a="abc") is True
    assert match("a = 'abc'", a="ABC") is False
    assert match("a = 'abc'", a="abc ") is False
    assert match("a <> 'abc'", a="abd") is True
    assert match("a <> 'abc'", a="abc") is False
    assert match("a = ''", a="") is True


def test_string_escapes() -> None:
    assert match("a = 'it''s'", a="it's") is True
    assert match("a = ''''", a="'") is True
    assert match("TAGS IS NOT NULL AND TAGS = '''''tag'''''", TAGS="''tag''") is True
    assert match("a = 'x\ny'", a="x\ny") is True  # a string literal may span lines
    assert match("a = '\u00e9\U0001f600'", a="\u00e9\U0001f600") is True
    assert match("a = '--not a comment'", a="--not a comment") is True


def test_string_against_number_literal_converts_the_property() -> None:
    assert match("a = 10", a="10") is True
    assert match("a = '10'", a="10") is True
    assert match("a = '10'", a="10.0") is False


def test_boolean_literals() -> None:
    assert match("TRUE") is True
    assert match("FALSE") is False
    assert match("a = TRUE", a="true") is True
    assert match("a = TRUE", a="TRUE") is True  # Boolean.valueOf ignores case
    assert match("a = TRUE", a="yes") is False
    assert match("a = FALSE", a="anything") is True  # Boolean.valueOf is false for all else
    assert match("a = TRUE OR b = FALSE", a="true", b="false") is True
    assert match("a = TRUE OR b = FALSE", a="false", b="true") is False
    assert match("TRUE = a", a="true") is False  # Java fails casting the Boolean to String


@pytest.mark.parametrize(
    ("expression", "properties", "expected"),
    [
        ("a CONTAINS 'x'", {"a": "axb"}, True),
        ("a CONTAINS 'x'", {"a": "abb"}, False),
        ("a STARTSWITH 'ax'", {"a": "axb"}, True),
        ("a ENDSWITH 'xb'", {"a": "axb"}, True),
        ("a ENDSWITH 'x'", {"a": "axb"}, False),
        ("a NOT CONTAINS 'x'", {"a": "abb"}, True),
        ("a NOT STARTSWITH 'x'", {"a": "axb"}, True),
        ("a NOT ENDSWITH 'b'", {"a": "axb"}, False),
        ("a CONTAINS ''", {"a": "axb"}, False),  # an empty search never matches
        ("a NOT CONTAINS ''", {"a": "axb"}, False),
        ("a CONTAINS 'x'", {}, False),
        ("a NOT CONTAINS 'x'", {}, False),  # missing is false, not unknown
        ("NOT (a NOT CONTAINS 'x')", {}, True),
        ("'axb' contains 'x'", {}, True),
        ("(a = 'x') CONTAINS 'x'", {"a": "x"}, False),  # not a string
    ],
)
def test_contains_startswith_endswith(
    expression: str, properties: dict[str, str], expected: bool
) -> None:
    assert compile_expression(expression)(properties) is expected


# -- IN, BETWEEN ----------------------------------------------------------------------------


def test_in_and_not_in() -> None:
    expression = "a IN ('3', '4', '5')"
    assert [match(expression, a=v) for v in ("3", "4", "5", "8", "3.0")] == [
        True, True, True, False, False,
    ]  # fmt: skip
    assert match("a NOT IN ('3', '4')", a="8") is True
    assert match("a NOT IN ('3', '4')", a="3") is False
    assert match("a IN ('3')", a="3") is True
    assert match("a IN ('1','2','3','4','5','6','7')", a="7") is True
    assert match("a IN ('it''s')", a="it's") is True
    assert match("a IN ('x')") is False
    assert match("a NOT IN ('x')") is False  # missing: unknown, not true
    assert match("(a) IN ('x')", a="x") is True


def test_between_and_not_between() -> None:
    assert [match("a BETWEEN 2 AND 10", a=v) for v in ("1", "2", "3", "10", "11")] == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert [match("a NOT BETWEEN 2 AND 10", a=v) for v in ("1", "2", "10", "11")] == [
        True, False, False, True,
    ]  # fmt: skip
    assert match("a BETWEEN -1.5 AND 1.5", a="0") is True
    assert match("a BETWEEN 2 AND 2", a="2") is True
    assert match("a BETWEEN 2 AND 10", a="abc") is False
    assert match("a NOT BETWEEN 2 AND 10", a="abc") is False
    assert match("a BETWEEN 2 AND 10") is False
    assert match("a NOT BETWEEN 2 AND 10") is False
    assert match("a BETWEEN b AND c", a="5", b="1", c="9") is True
    # NOT BETWEEN is (a < low OR a > high): an unknown bound can still be decided by the other
    assert match("a NOT BETWEEN b AND c", a="5", c="1") is True


def test_between_binds_its_own_and() -> None:
    assert match("a BETWEEN 1 AND 3 AND b = 'x'", a="2", b="x") is True
    assert match("a BETWEEN 1 AND 3 AND b = 'x'", a="2", b="y") is False


# -- NULL -----------------------------------------------------------------------------------


def test_is_null_and_is_not_null() -> None:
    assert match("a IS NULL") is True
    assert match("a IS NULL", a="2") is False
    assert match("a IS NULL", a="") is False  # an empty string is a value
    assert match("a IS NOT NULL", a="2") is True
    assert match("a IS NOT NULL") is False
    assert match("a is null OR a = 'hello'") is True
    assert match("a is null OR a = 'hello'", a="hello") is True
    assert match("a is null OR a = 'hello'", a="abc") is False
    assert match("(a > 5) IS NULL") is True  # the comparison is unknown
    assert match("NULL IS NULL") is True
    assert match("5 IS NOT NULL") is True


@pytest.mark.parametrize(
    "expression",
    ["a > 5", "a = 'x'", "a <> 'x'", "a = 5", "a IN ('x')", "a NOT IN ('x')", "a BETWEEN 1 AND 2"],
)
def test_missing_property_is_unknown_and_unknown_does_not_match(expression: str) -> None:
    assert match(expression) is False
    assert match(f"NOT ({expression})") is False  # NOT unknown is unknown
    assert match(f"({expression}) OR TRUE") is True
    assert match(f"({expression}) AND TRUE") is False
    assert match(f"({expression}) IS NULL") is True


def test_three_valued_logic() -> None:
    assert match("a > 5 AND b = 'x'", b="x") is False
    assert match("a > 5 OR b = 'x'", b="x") is True
    assert match("NOT (a > 5 AND b = 'x')", b="y") is True  # unknown AND false is false
    assert match("NOT (a > 5 OR b = 'x')", b="y") is False  # unknown OR false is unknown
    assert match("NULL") is False
    assert match("NOT NULL") is False


def test_equality_with_missing_side_is_asymmetric_like_rocketmq() -> None:
    # RocketMQ: a null left operand gives unknown, a null right operand gives false.
    assert match("NOT (a = 'x')") is False
    assert match("NOT ('x' = a)") is True
    assert match("'x' <> a") is True
    assert match("a = b") is True  # both missing: equal


def test_property_alone_as_a_boolean() -> None:
    # A property used as a condition is never a Boolean (values are strings): false if present,
    # unknown if missing.
    assert match("a", a="true") is False
    assert match("NOT a", a="true") is True
    assert match("NOT a") is False
    assert match("a OR b = '1'", a="x", b="1") is True


# -- precedence, parentheses, keywords ------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    expression = "a = '1' OR b = '1' AND c = '1'"
    assert match(expression, a="1") is True
    assert match(expression, b="1") is False
    assert match(expression, b="1", c="1") is True
    assert match("(a = '1' OR b = '1') AND c = '1'", a="1") is False


def test_not_binds_tighter_than_comparison() -> None:
    # RocketMQ's grammar makes NOT a unary operator: NOT a = 'x' is (NOT a) = 'x'.
    assert match("NOT a = 'x'", a="y") is False
    assert match("NOT (a = 'x')", a="y") is True
    assert match("NOT a = TRUE", a="y") is True  # (NOT a) is TRUE when a is present


def test_parentheses_and_nesting() -> None:
    assert match("((a = '1'))", a="1") is True
    assert match("NOT (NOT (a = '1'))", a="1") is True
    assert match("NOT NOT (a = '1')", a="1") is True
    assert match("(a = '1' OR (b = '2' AND (c = '3' OR d = '4')))", b="2", d="4") is True
    assert match("(a = '1' OR (b = '2' AND (c = '3' OR d = '4')))", b="2") is False
    assert match("(a > 1) = (b > 1)", a="2", b="3") is True
    assert match("(a > 1) = (b > 1)", a="2", b="0") is False


def test_keywords_are_case_insensitive() -> None:
    assert match("a Is NoT nUlL aNd b iN ('x') oR c BeTwEeN 1 AnD 2", a="1", b="x") is True
    assert match("a not between 2 and 10 or b is null", a="1") is True
    assert match("true") is True
    assert match("a = tRuE", a="true") is True
    assert match("a contains 'x' and a StartsWith 'a'", a="ax") is True


def test_identifiers() -> None:
    assert match("$a_1 = 'x'", **{"$a_1": "x"}) is True
    assert match("_ = 'x'", _="x") is True
    assert match("Abc = 'x'", abc="x") is False  # names are case-sensitive
    assert match("Abc = 'x'", Abc="x") is True
    assert match("notx = 'x'", notx="x") is True  # keywords only as whole words
    assert match("TAGS = 'TagA' OR TAGS = 'TagB'", TAGS="TagB") is True
    assert match("TAGS IN ('TagA', 'TagB') AND a > 5", TAGS="TagA", a="6") is True


def test_whitespace_and_comments() -> None:
    assert match("\ta\n=\r'1'\f", a="1") is True
    assert match("a = '1' -- trailing comment", a="1") is True
    assert match("a = '1' -- comment\n AND b = '2'", a="1", b="2") is True
    assert match("a /* x */ = /* y */ '1'", a="1") is True


def test_unary_plus_and_minus() -> None:
    assert match("a = +5", a="5") is True
    assert match("a = -5", a="-5") is True
    assert match("a = - -5", a="5") is True
    with pytest.raises(FilterError, match="end of expression"):
        compile_expression("a = --5")  # "--" starts a comment, as in RocketMQ
    assert match("a = - 5.5", a="-5.5") is True
    assert match("-a = 5", a="-5") is False  # negating a string gives null
    assert match("-a IS NULL", a="5") is True
    assert match("a = -2147483648", a="-2147483648") is True


def test_rocketmq_test_suite_expressions() -> None:
    # Expressions and results from RocketMQ's own filter tests.
    and_expr = "a=3 and b<>4 And c>5 AND d<=4"
    assert compile_expression(and_expr)({"a": "3", "b": "5", "c": "6", "d": "1"}) is True
    assert compile_expression(and_expr)({"a": "4", "b": "5", "c": "6", "d": "1"}) is False
    or_expr = "a=3 or b<>4 Or c>5 OR d<=4"
    assert compile_expression(or_expr)({"a": "3"}) is True
    assert compile_expression(or_expr)({"a": "4", "b": "4", "c": "3", "d": "2"}) is True
    assert compile_expression(or_expr)({"a": "4", "b": "4", "c": "3", "d": "10"}) is False
    all_in_one = "a not in ('4', '4', '5') and b between 3 and 10 and c not contains 'axbc'"
    assert compile_expression(all_in_one)({"a": "3", "b": "3", "c": "axbdc"}) is True
    assert match("key is not null and key between 0 and 100", key="con") is False


def test_predicate_returns_plain_bool() -> None:
    predicate = compile_expression("a > 5")
    for properties in ({}, {"a": "x"}, {"a": "6"}, {"a": "4"}):
        assert type(predicate(properties)) is bool


# -- cache ----------------------------------------------------------------------------------


def test_compile_cached_reuses_compiled_predicates() -> None:
    cache_clear()
    first = compile_cached("a > 5")
    assert compile_cached("a > 5") is first
    assert compile_cached("a > 6") is not first
    info = _compile_outcome.cache_info()
    assert (info.hits, info.misses) == (1, 2)


def test_compile_cached_caches_failures_and_raises_fresh_errors() -> None:
    cache_clear()
    errors = []
    for _ in range(3):
        with pytest.raises(FilterError) as caught:
            compile_cached("a >")
        errors.append(caught.value)
    assert _compile_outcome.cache_info().misses == 1
    assert errors[0] is not errors[1]
    assert (
        str(errors[0])
        == str(errors[2])
        == ("unexpected end of expression at column 4; expected a value, a property name or '('")
    )


def test_compile_cached_is_bounded() -> None:
    from runtime.filter.sql92 import CACHE_SIZE

    cache_clear()
    for i in range(CACHE_SIZE + 10):
        compile_cached(f"a > {i}")
    assert _compile_outcome.cache_info().currsize == CACHE_SIZE


def test_evaluation_is_fast_enough_for_the_pull_path() -> None:
    # Measured at about 1 us (docs/filtering.md); the bound leaves room for slow, busy machines.
    import time

    predicate = compile_expression("a > 5 AND b = 'abc' AND c IN ('x', 'y')")
    properties = {"a": "10", "b": "abc", "c": "y", "TAGS": "TagA", "KEYS": "k1"}
    rounds = 20_000
    start = time.perf_counter()
    for _ in range(rounds):
        predicate(properties)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 25e-6
