"""Turns a syntax tree into a tree of closures, evaluated once per message.

Each closure maps the message properties to True, False or None (unknown), following RocketMQ's
evaluator: comparisons with a null operand are unknown, AND / OR / NOT use three-valued logic, and
a conversion Java would fail raises ``Abort``, which makes the whole expression not match.
Comparisons of a property with a constant, the common case, get specialised closures.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from runtime.filter.javanum import (
    comparator,
    double_compare,
    java_bool,
    java_double,
    java_int,
    java_long,
    order_comparator,
)
from runtime.filter.nodes import (
    BOOL,
    DOUBLE,
    INT,
    LONG,
    STR,
    Cast,
    Compare,
    Const,
    In,
    IsNull,
    Logic,
    Match,
    Neg,
    Node,
    Not,
    Prop,
)

Properties = Mapping[str, str]
Closure = Callable[[Properties], object]

# Which results of a -1/0/1 comparison make each operator true.
_ACCEPT = {
    "=": frozenset({0}),
    ">": frozenset({1}),
    ">=": frozenset({0, 1}),
    "<": frozenset({-1}),
    "<=": frozenset({-1, 0}),
}
_INT_OPS = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_MIRROR = {"=": "=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


def build(node: Node) -> Closure:
    """A closure evaluating ``node`` against message properties."""
    if isinstance(node, Logic):
        return _logic(node)
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, Not):
        return _not(build(node.operand))
    if isinstance(node, IsNull):
        return _is_null(node)
    if isinstance(node, In):
        return _in(node)
    if isinstance(node, Match):
        return _match(node)
    if isinstance(node, Cast):
        return _cast(node.prop.name)
    if isinstance(node, Prop):
        return _prop(node.name)
    if isinstance(node, Neg):
        return _neg(build(node.operand))
    if isinstance(node, Const):
        return _const(node.value)
    raise TypeError(f"unknown node {node!r}")  # pragma: no cover - parser builds only the above


def _const(value: object) -> Closure:
    return lambda props: value


def _prop(name: str) -> Closure:
    return lambda props: props.get(name)


def _neg(operand: Closure) -> Closure:
    def negate(props: Properties) -> None:
        operand(props)  # evaluated for its failures only: a non-number negates to null

    return negate


def _cast(name: str) -> Closure:
    def cast(props: Properties) -> bool | None:
        return None if props.get(name) is None else False

    return cast


def _not(operand: Closure) -> Closure:
    def negation(props: Properties) -> bool | None:
        value = operand(props)
        return None if value is None else not value

    return negation


def _logic(node: Logic) -> Closure:
    operands = tuple(build(child) for child in node.operands)
    if node.op == "AND":

        def conjunction(props: Properties) -> bool | None:
            unknown = False
            for operand in operands:
                value = operand(props)
                if value is False:
                    return False
                if value is None:
                    unknown = True
            return None if unknown else True

        return conjunction

    def disjunction(props: Properties) -> bool | None:
        unknown = False
        for operand in operands:
            value = operand(props)
            if value is True:
                return True
            if value is None:
                unknown = True
        return None if unknown else False

    return disjunction


def _is_null(node: IsNull) -> Closure:
    if isinstance(node.operand, Prop):
        name = node.operand.name
        return lambda props: props.get(name) is None
    operand = build(node.operand)
    return lambda props: operand(props) is None


def _in(node: In) -> Closure:
    name, values, negated = node.prop.name, node.values, node.negated

    def member(props: Properties) -> bool | None:
        value = props.get(name)
        if value is None:
            return None
        return (value in values) is not negated

    return member


def _match(node: Match) -> Closure:
    search, negated = node.search, node.negated
    if not search:
        return lambda props: False  # RocketMQ: an empty search string never matches
    test = {"CONTAINS": str.__contains__, "STARTSWITH": str.startswith, "ENDSWITH": str.endswith}[
        node.op
    ]
    operand = build(node.operand)

    def match(props: Properties) -> bool:
        value = operand(props)
        if not isinstance(value, str):
            return False
        return test(value, search) is not negated

    return match


def _compare(node: Compare) -> Closure:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Prop) and isinstance(right, Const) and right.value is not None:
        return _property_vs_constant(op, left.name, right, mirrored=False)
    if (
        isinstance(right, Prop)
        and isinstance(left, Const)
        and left.value is not None
        and (op != "=" or left.jtype != BOOL)  # TRUE = a fails in Java: left to the generic path
    ):
        return _property_vs_constant(_MIRROR[op], right.name, left, mirrored=True)
    lf, rf = build(left), build(right)
    if op == "=":
        compare = comparator(left.jtype, right.jtype)

        def equal(props: Properties) -> bool | None:
            lv = lf(props)
            rv = rf(props)
            if lv is None:
                return True if rv is None else None
            if rv is None:
                return False
            return compare(lv, rv) == 0

        return equal

    compare = order_comparator(left.jtype, right.jtype)
    accept = _ACCEPT[op]

    def order(props: Properties) -> bool | None:
        lv = lf(props)
        if lv is None:
            return None
        rv = rf(props)
        if rv is None:
            return None
        return compare(lv, rv) in accept

    return order


def _property_vs_constant(op: str, name: str, const: Const, mirrored: bool) -> Closure:
    """``name op constant`` (``mirrored``: written ``constant op' name``, which differs only in
    null handling of ``=``: a missing property on the right gives false, on the left unknown)."""
    value: Any = const.value
    jtype = const.jtype
    missing = False if (mirrored and op == "=") else None
    if jtype == STR and op == "=":

        def equal_string(props: Properties) -> bool | None:
            text = props.get(name)
            if text is None:
                return missing
            return text == value

        return equal_string
    if jtype in (INT, LONG):
        convert = java_int if jtype == INT else java_long
        test = _INT_OPS[op]

        def integral(props: Properties) -> bool | None:
            text = props.get(name)
            if text is None:
                return missing
            return test(convert(text), value)

        return integral
    if jtype == DOUBLE:
        accept = _ACCEPT[op]

        def decimal(props: Properties) -> bool | None:
            text = props.get(name)
            if text is None:
                return missing
            return double_compare(java_double(text), value) in accept

        return decimal
    if jtype == BOOL and op == "=":

        def boolean(props: Properties) -> bool | None:
            text = props.get(name)
            if text is None:
                return missing
            return java_bool(text) == value

        return boolean
    # A string constant in an ordering is rejected by the parser; nothing else remains.
    raise TypeError(f"no comparison of a property with {jtype} by {op}")  # pragma: no cover
