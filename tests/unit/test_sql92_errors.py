"""Invalid SQL92 filter expressions: each is refused with FilterError saying what and where."""

from __future__ import annotations

import pytest

from runtime.errors import ActorMQError
from runtime.filter import MAX_DEPTH, MAX_LENGTH, FilterError, compile_expression


def error_of(expression: str) -> FilterError:
    with pytest.raises(FilterError) as caught:
        compile_expression(expression)
    return caught.value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("a > 5 AND AND b = 1", "unexpected token 'AND' at column 11; expected a value"),
        ("a and between 2 and 10", "unexpected token 'between' at column 7; expected a value"),
        ("a > ", "unexpected end of expression at column 5; expected a value"),
        ("a = = 1", "unexpected token '=' at column 5"),
        ("a == 1", "unexpected token '=' at column 4"),
        ("a != 1", "unexpected character '!' at column 3"),
        ("a = 1 b = 2", "unexpected token 'b' at column 7; expected AND, OR, a comparison"),
        ("a = 1)", "unexpected token ')' at column 6"),
        ("(a = 1", "unexpected end of expression at column 7; expected ')'"),
        ("a = 'abc", "unterminated string literal at column 5"),
        ("a = 'it''s", "unterminated string literal at column 9"),  # 'it' then 's
        ("a = 1 /* open", "unterminated comment at column 7"),
        ('a = "x"', "unexpected character '\"' at column 5"),
        ("a = 1 && b = 2", "unexpected character '&' at column 7"),
        ("a.b = 1", "unexpected character '.' at column 2"),
        ("a = 05", "unexpected token '5' at column 6"),
        ("a = 1.5L", "unexpected token 'L' at column 8"),
        ("a = \x00", "unexpected character 'U+0000' at column 5"),
        ("a IS 5", "unexpected token '5' at column 6; expected NULL or NOT NULL"),
        ("a IS NOT 5", "unexpected token '5' at column 10; expected NULL"),
        ("a IN 'x'", "unexpected string 'x' at column 6; expected '(' after IN"),
        ("a IN ()", "unexpected token ')' at column 7; expected a string literal in the IN list"),
        ("a IN (1, 2)", "unexpected token '1' at column 7; expected a string literal"),
        ("a IN ('x' 'y')", "unexpected string 'y' at column 11; expected ',' or ')'"),
        ("'x' IN ('x')", "IN needs a property on its left, not 'x' at column 5"),
        ("a BETWEEN 1 OR 2", "unexpected token 'OR' at column 13; expected AND"),
        ("a BETWEEN 10 AND 0", "BETWEEN bounds are reversed: 10 is above 0 at column 3"),
        ("a BETWEEN 1.5 AND 1", "BETWEEN bounds are reversed: 1.5 is above 1 at column 3"),
        ("a BETWEEN NULL AND 1", "BETWEEN bounds cannot be NULL at column 3"),
        ("a BETWEEN 'x' AND 'y'", "'x' cannot be compared with BETWEEN at column 11"),
        ("a CONTAINS x", "unexpected token 'x' at column 12; expected a string literal"),
        ("a CONTAINS 123", "unexpected token '123' at column 12; expected a string literal"),
        ("a NOT x", "unexpected token 'NOT' at column 3"),
        ("a > 'x'", "'x' cannot be compared with '>' at column 5; only numbers are ordered"),
        ("a < TRUE", "TRUE cannot be compared with '<' at column 5"),
        ("NULL >= a", "NULL cannot be compared with '>='"),
        ("(a = 1) > 2", "a boolean expression cannot be compared with '>' at column 4"),
        ("a = NULL", "NULL cannot be compared with '=' at column 5; use IS NULL"),
        ("NULL <> a", "NULL cannot be compared with '<>' at column 1; use IS NULL"),
        ("TRUE = 5", "TRUE cannot be compared with 5 at column 6"),
        ("5", "5 is not a boolean expression at column 1"),
        ("'abc'", "'abc' is not a boolean expression at column 1"),
        ("a = 1 AND 5", "5 is not a boolean expression at column 11"),
        ("NOT 1.5", "1.5 is not a boolean expression at column 5"),
        ("-a", "a negated value is not a boolean expression at column 1"),
        ("a = 99999999999999999999", "integer 99999999999999999999 is out of range at column 5"),
        ("a = 9223372036854775808", "integer 9223372036854775808 is out of range at column 5"),
        ("a > 1e400", "number 1e400 is out of range at column 5"),
        ("", "expression is empty"),
        ("  -- only a comment", "expression is empty"),
    ],
)
def test_invalid_expressions_say_what_and_where(expression: str, message: str) -> None:
    assert str(error_of(expression)).startswith(message)


def test_error_attributes() -> None:
    error = error_of("a > 5 AND AND b = 1")
    assert isinstance(error, ActorMQError)
    assert error.column == 11
    assert error.reason == "unexpected token 'AND'"
    assert error.hint is not None and error.hint.startswith("expected a value")


def test_column_counts_characters_across_lines() -> None:
    assert error_of("a = 1\nAND\nAND").column == 11


def test_long_tokens_are_clipped_in_messages() -> None:
    message = str(error_of("a = 1 " + "x" * 500))
    assert len(message) < 200


def test_length_cap() -> None:
    ok = "a = '" + "x" * (MAX_LENGTH - 6) + "'"
    assert len(ok) == MAX_LENGTH
    assert compile_expression(ok)({"a": "x" * (MAX_LENGTH - 6)}) is True
    error = error_of(ok + " ")
    assert str(error) == f"expression is longer than {MAX_LENGTH} characters"


def test_not_a_string() -> None:
    with pytest.raises(FilterError, match="expression must be a string, not bytes"):
        compile_expression(b"a = 1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda n: "(" * n + "a = 1" + ")" * n,
        lambda n: "NOT " * n + "a",
        lambda n: "- " * n + "a = 1",
        lambda n: "a" + " = a" * n,
        lambda n: "a" + " CONTAINS 'x'" * n,
        lambda n: "a IS NULL" + " IS NULL" * n,
    ],
)
def test_nesting_cap(build) -> None:  # type: ignore[no-untyped-def]
    deep = build(MAX_DEPTH + 1)
    assert "nested deeper than" in str(error_of(deep))
    shallow = build(MAX_DEPTH // 2 - 2)
    assert compile_expression(shallow)({"a": "1"}) in (True, False)


@pytest.mark.parametrize(
    "expression",
    ["(" * 3000 + "a", "NOT " * 1000 + "a", "(a = 1 AND " * 800 + "a = 1" + ")" * 800],
)
def test_very_deep_nesting_is_refused_without_recursion_error(expression: str) -> None:
    assert "nested deeper than" in str(error_of(expression[:MAX_LENGTH]))


def test_long_flat_chains_are_fine() -> None:
    # AND / OR chains are flattened, so their length is bounded only by MAX_LENGTH.
    expression = " AND ".join(f"a{i} = '1'" for i in range(500))[:MAX_LENGTH].rsplit(" AND ", 1)[0]
    predicate = compile_expression(expression)
    count = expression.count(" AND ") + 1
    assert predicate({f"a{i}": "1" for i in range(count)}) is True
    assert predicate({f"a{i}": "1" for i in range(count - 1)}) is False
    ors = " OR ".join(f"a > {i}" for i in range(400))[:MAX_LENGTH].rsplit(" OR ", 1)[0]
    assert compile_expression(ors)({"a": "0"}) is False
    assert compile_expression(ors)({"a": "1"}) is True
