"""Property and fuzz tests of the SQL92 filter.

Invariants: compiling any string either returns a predicate or raises FilterError; a predicate
returns a bool for any string properties and never raises; the specialised closures agree with the
generic comparison path; algebraic identities of RocketMQ's grammar hold.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runtime.filter import FilterError, compile_expression
from runtime.filter.evaluator import build
from runtime.filter.javanum import Abort
from runtime.filter.nodes import BOOL, DOUBLE, INT, LONG, STR, Compare, Const, Prop

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["a", "b", "c", "TAGS"]
INTERESTING = [
    "", "0", "1", "-1", "5", "+5", "5.0", "5.5", "-0", "0.0", "1e3", "abc", "true", "TRUE",
    "false", "NaN", "Infinity", "-Infinity", " 5", "5 ", "2147483648", "9223372036854775808",
    "\u0663", "0x1p3", "5f", "x'y", "TagA",
]  # fmt: skip
VALUES = st.one_of(st.sampled_from(INTERESTING), st.text(max_size=8))
PROPERTIES = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=len(NAMES))


def compiled_or_none(text: str):  # type: ignore[no-untyped-def]
    try:
        return compile_expression(text)
    except FilterError:
        return None


# -- robustness -----------------------------------------------------------------------------


@MANY
@given(st.text(max_size=200), PROPERTIES)
def test_random_text_raises_only_filter_error(text: str, properties: dict[str, str]) -> None:
    predicate = compiled_or_none(text)
    if predicate is not None:
        assert type(predicate(properties)) is bool


TOKENS = st.sampled_from(
    [
        "a", "b", "TAGS", "$x", "_y", "(", ")", ",", "=", "<>", ">", ">=", "<", "<=", "+", "-",
        "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE", "CONTAINS",
        "STARTSWITH", "ENDSWITH", "and", "not", "0", "5", "-5", "2147483648", "5L", "1.5", ".5",
        "5.", "1e3", "0.0", "'x'", "''", "'it''s'", "'5'", "--c\n", "/* c */", "'", "!", "==",
        "9999999999999999999999", "1e999",
    ]
)  # fmt: skip


@MANY
@given(st.lists(TOKENS, max_size=25), st.sampled_from([" ", "", "\n"]), PROPERTIES)
def test_random_token_sequences(tokens: list[str], sep: str, properties: dict[str, str]) -> None:
    predicate = compiled_or_none(sep.join(tokens))
    if predicate is not None:
        assert type(predicate(properties)) is bool


# Mostly valid expressions, to reach the evaluator with every kind of operand.
LITERALS = st.sampled_from(
    ["5", "-5", "0", "2147483648", "-9223372036854775807", "1.5", "-0.0", "1e3", "'x'", "'5'",
     "'true'", "TRUE", "FALSE", "NULL"]
)  # fmt: skip
OPERANDS = st.one_of(st.sampled_from(NAMES), LITERALS)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["=", "<>", ">", ">=", "<", "<=", "AND", "OR"])
    return st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", children, binary, children),
        st.builds(lambda a: f"NOT ({a})", children),
        st.builds(lambda a: f"-({a})", children),
        st.builds(lambda a, n: f"({a} IS {n}NULL)", children, st.sampled_from(["", "NOT "])),
        st.builds(
            lambda a, n, lo, hi: f"({a} {n}BETWEEN {lo} AND {hi})",
            children, st.sampled_from(["", "NOT "]), OPERANDS, OPERANDS,
        ),
        st.builds(
            lambda p, n, vs: f"({p} {n}IN ({', '.join(vs)}))",
            st.sampled_from(NAMES), st.sampled_from(["", "NOT "]),
            st.lists(st.sampled_from(["'x'", "'5'", "''", "'TagA'"]), min_size=1, max_size=3),
        ),
        st.builds(
            lambda a, n, op, s: f"({a} {n}{op} {s})",
            children, st.sampled_from(["", "NOT "]),
            st.sampled_from(["CONTAINS", "STARTSWITH", "ENDSWITH"]),
            st.sampled_from(["'x'", "''", "'a'"]),
        ),
    )  # fmt: skip


EXPRESSIONS = st.recursive(OPERANDS, _combine, max_leaves=12)


@MANY
@given(EXPRESSIONS, PROPERTIES)
def test_generated_expressions_evaluate_to_bool(text: str, properties: dict[str, str]) -> None:
    predicate = compiled_or_none(text)
    if predicate is not None:
        assert type(predicate(properties)) is bool


@FAST
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["(", "NOT ", "- ", "+ "]))
def test_deep_prefixes_never_overflow_the_stack(depth: int, prefix: str) -> None:
    text = (prefix * depth + "a = 1")[:4096]
    predicate = compiled_or_none(text)
    if predicate is not None:
        assert type(predicate({"a": "1"})) is bool


# -- specialised closures agree with the generic comparison path ----------------------------

LITERAL_CONSTS = st.one_of(
    st.builds(lambda v: Const(0, v, INT), st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda v: Const(0, v, LONG), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: Const(0, v, DOUBLE), st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(lambda v: Const(0, v, STR), st.sampled_from(INTERESTING)),
    st.builds(lambda v: Const(0, v, BOOL), st.booleans()),
)


def _outcome(closure, properties):  # type: ignore[no-untyped-def]
    try:
        return closure(properties)
    except Abort:
        return "abort"


@MANY
@given(LITERAL_CONSTS, st.sampled_from(["=", ">", ">=", "<", "<="]), VALUES, st.booleans())
def test_property_closures_match_generic_path(
    const: Const, op: str, value: str, mirrored: bool
) -> None:
    assume(op == "=" or const.jtype in (INT, LONG, DOUBLE))
    prop = Prop(0, "a")
    text = Const(0, value, STR)  # the same string, but as a constant: the generic path
    if mirrored:
        special = build(Compare(0, op, const, prop))
        generic = build(Compare(0, op, const, text))
    else:
        special = build(Compare(0, op, prop, const))
        generic = build(Compare(0, op, text, const))
    assert _outcome(special, {"a": value}) == _outcome(generic, {})


# -- identities -----------------------------------------------------------------------------

NUMBERS = st.sampled_from(["5", "-5", "0", "1.5", "-2.5", "2147483648", "1e3"])


@FAST
@given(NUMBERS, st.sampled_from([">", ">=", "<", "<=", "="]), PROPERTIES)
def test_mirrored_comparisons_agree(number: str, op: str, properties: dict[str, str]) -> None:
    mirror = {"=": "=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}[op]
    left = compile_expression(f"a {op} {number}")(properties)
    right = compile_expression(f"{number} {mirror} a")(properties)
    if "a" in properties:
        assert left == right
    else:
        assert left is right is False


@FAST
@given(NUMBERS, NUMBERS, PROPERTIES)
def test_between_is_two_comparisons(low: str, high: str, properties: dict[str, str]) -> None:
    inside = compiled_or_none(f"a BETWEEN {low} AND {high}")
    assume(inside is not None)
    outside = compile_expression(f"a NOT BETWEEN {low} AND {high}")
    assert inside(properties) == compile_expression(f"a >= {low} AND a <= {high}")(properties)
    assert outside(properties) == compile_expression(f"a < {low} OR a > {high}")(properties)


@FAST
@given(st.sampled_from(["'x'", "5", "1.5", "TRUE", "b"]), PROPERTIES)
def test_not_equal_is_not_of_equal(value: str, properties: dict[str, str]) -> None:
    assert compile_expression(f"a <> {value}")(properties) == compile_expression(
        f"NOT (a = {value})"
    )(properties)


CLAUSES = st.sampled_from(
    ["a > 5", "b = 'x'", "c IS NULL", "a IN ('1', '5')", "TAGS <> 'TagA'", "b", "NULL", "TRUE"]
)


@FAST
@given(CLAUSES, CLAUSES, CLAUSES, st.sampled_from(["AND", "OR"]), PROPERTIES)
def test_logic_is_associative(p: str, q: str, r: str, op: str, properties: dict[str, str]) -> None:
    left = compile_expression(f"({p} {op} {q}) {op} {r}")(properties)
    right = compile_expression(f"{p} {op} ({q} {op} {r})")(properties)
    flat = compile_expression(f"{p} {op} {q} {op} {r}")(properties)
    # All three evaluate p, q, r in the same order with the same short-circuits, so even a failed
    # conversion (a > 5 with a non-numeric a) is reached alike.
    assert left == flat
    assert right == flat


@FAST
@given(CLAUSES, CLAUSES, PROPERTIES)
def test_de_morgan_holds_in_three_valued_logic(p: str, q: str, properties: dict[str, str]) -> None:
    # Compare the truth of NOT (p AND q) with NOT p OR NOT q, including unknown: "IS NULL"
    # exposes unknown without collapsing it to false.
    for form in ("({x}) IS NULL", "{x}"):
        left = compile_expression(form.format(x=f"NOT ({p} AND {q})"))(properties)
        right = compile_expression(form.format(x=f"NOT ({p}) OR NOT ({q})"))(properties)
        assert left == right
