"""Syntax tree of a SQL92 filter expression.

Every node carries ``pos`` (0-based offset of the token that made it, for error columns),
``depth`` (height of the subtree, capped by the parser) and a static ``jtype``: the Java class
RocketMQ's evaluator would see at run time. A value is always that type or null, so the compiler
picks every conversion before the first message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

# Static types, named after the Java classes RocketMQ evaluates with.
STR = "String"
INT = "Integer"
LONG = "Long"
DOUBLE = "Double"
BOOL = "Boolean"
NULL = "null"
NUMERIC = frozenset({INT, LONG, DOUBLE})


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes."""

    pos: int
    depth: int = field(default=1, kw_only=True)

    @property
    def jtype(self) -> str:
        return BOOL


@dataclass(frozen=True, slots=True)
class Const(Node):
    """A constant. ``literal`` is True when written as a literal (RocketMQ's ConstantExpression),
    False when folded from a negation (RocketMQ treats ``-5`` as an expression, not a constant)."""

    value: object
    type_: str
    literal: bool = True

    @property
    def jtype(self) -> str:
        return self.type_


@dataclass(frozen=True, slots=True)
class Prop(Node):
    """A message property; its value is a string or null (missing)."""

    name: str

    @property
    def jtype(self) -> str:
        return STR


@dataclass(frozen=True, slots=True)
class Neg(Node):
    """Arithmetic negation of a non-constant: RocketMQ evaluates the operand (which may fail) and
    yields null, since the operand is never a number."""

    operand: Node

    @property
    def jtype(self) -> str:
        return NULL


@dataclass(frozen=True, slots=True)
class Cast(Node):
    """A property used where a boolean is needed: null when missing, else false (a string is
    never a Boolean)."""

    prop: Prop


@dataclass(frozen=True, slots=True)
class Not(Node):
    """Logical NOT; null stays null."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Logic(Node):
    """AND / OR over two or more operands, evaluated left to right with short-circuit."""

    op: str  # "AND" or "OR"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``=``, ``>``, ``>=``, ``<``, ``<=`` (``<>`` is NOT over ``=``)."""

    OPS: ClassVar[frozenset[str]] = frozenset({"=", ">", ">=", "<", "<="})

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """``IS NULL``; ``IS NOT NULL`` is NOT over it."""

    operand: Node


@dataclass(frozen=True, slots=True)
class In(Node):
    """``[NOT] IN ('a', ...)`` on a property."""

    prop: Prop
    values: frozenset[str]
    negated: bool


@dataclass(frozen=True, slots=True)
class Match(Node):
    """``[NOT] CONTAINS | STARTSWITH | ENDSWITH 'text'``: false on null or a non-string."""

    op: str  # "CONTAINS", "STARTSWITH" or "ENDSWITH"
    operand: Node
    search: str
    negated: bool


_BOOLEAN_NODES = (Cast, Not, Logic, Compare, IsNull, In, Match)


def is_boolean(node: Node) -> bool:
    """True for what RocketMQ calls a BooleanExpression: predicates and the TRUE, FALSE and NULL
    literals."""
    if isinstance(node, _BOOLEAN_NODES):
        return True
    return isinstance(node, Const) and node.literal and node.type_ in (BOOL, NULL)


def is_literal(node: Node) -> bool:
    """True for what RocketMQ calls a ConstantExpression (a literal as written)."""
    return isinstance(node, Const) and node.literal


def height(*children: Node) -> int:
    """Depth of a new node over ``children``."""
    return 1 + max((child.depth for child in children), default=0)
