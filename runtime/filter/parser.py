"""Recursive-descent parser of RocketMQ's SQL92 filter language, with RocketMQ's checks.

Precedence, loosest first (as in RocketMQ's SelectorParser.jj)::

    or         := and (OR and)*
    and        := equality (AND equality)*
    equality   := comparison ('=' comparison | '<>' comparison | IS [NOT] NULL)*
    comparison := unary ('>' unary | '>=' unary | '<' unary | '<=' unary
                         | [NOT] BETWEEN unary AND unary
                         | [NOT] IN '(' string (',' string)* ')'
                         | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string)*
    unary      := '+' unary | '-' unary | NOT unary | primary
    primary    := string | integer | decimal | TRUE | FALSE | NULL | identifier | '(' or ')'

NOT binds tighter than comparisons: ``NOT a = 'x'`` means ``(NOT a) = 'x'``.
"""

from __future__ import annotations

from typing import Any

from runtime.filter.errors import FilterError
from runtime.filter.javanum import INT_MAX, LONG_MAX, comparator
from runtime.filter.lexer import DECIMAL, EOF, IDENT, INTEGER, STRING, Token, tokenize
from runtime.filter.nodes import (
    BOOL,
    DOUBLE,
    INT,
    LONG,
    NULL,
    NUMERIC,
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
    height,
    is_boolean,
    is_literal,
)

MAX_DEPTH = 48
"""Deepest nesting of parentheses and unary operators, and deepest syntax tree, accepted."""

_ORDER_OPS = frozenset({">", ">=", "<", "<="})
_MATCH_OPS = frozenset({"CONTAINS", "STARTSWITH", "ENDSWITH"})
_AFTER_NOT = frozenset({"BETWEEN", "IN"}) | _MATCH_OPS
_UNARY = frozenset({"+", "-", "NOT"})


def parse(text: str) -> Node:
    """Parse ``text`` into a boolean syntax tree; raise FilterError if it is not a valid
    RocketMQ SQL92 filter expression."""
    tokens = tokenize(text)
    if tokens[0].kind == EOF:
        raise FilterError("expression is empty")
    return _Parser(tokens).parse()


def describe(node: Node) -> str:
    """A node as an error message names it."""
    if isinstance(node, Const) and node.literal:
        if node.type_ == STR:
            text = "'" + str(node.value).replace("'", "''") + "'"
            return text if len(text) <= 40 else text[:37] + "..."
        if node.type_ == BOOL:
            return "TRUE" if node.value else "FALSE"
        if node.type_ == NULL:
            return "NULL"
        return repr(node.value)
    if isinstance(node, Prop):
        return f"property {node.name}"
    if isinstance(node, Const | Neg):
        return "a negated value"
    return "a boolean expression"


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    # -- token helpers ---------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != EOF:
            self.index += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            raise self.unexpected(token, f"expected {what}")
        return self.advance()

    @staticmethod
    def unexpected(token: Token, hint: str | None = None) -> FilterError:
        return FilterError(f"unexpected {token.describe()}", token.pos + 1, hint)

    def enter(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise FilterError(f"expression nested deeper than {MAX_DEPTH} levels", token.pos + 1)

    @staticmethod
    def checked(node: Node) -> Node:
        if node.depth > MAX_DEPTH:
            raise FilterError(f"expression nested deeper than {MAX_DEPTH} levels", node.pos + 1)
        return node

    # -- grammar ---------------------------------------------------------------------------

    def parse(self) -> Node:
        node = self.parse_or()
        token = self.peek()
        if token.kind != EOF:
            raise self.unexpected(token, "expected AND, OR, a comparison or the end")
        return self.as_boolean(node)

    def parse_logic(self, op: str) -> Node:
        parse_operand = self.parse_and if op == "OR" else self.parse_equality
        left = parse_operand()
        if self.peek().kind != op:
            return left
        pos = self.peek().pos
        operands: list[Node] = []
        self.add_operand(operands, op, left)
        while self.peek().kind == op:
            self.advance()
            self.add_operand(operands, op, parse_operand())
        return self.checked(Logic(pos, op, tuple(operands), depth=height(*operands)))

    def add_operand(self, operands: list[Node], op: str, node: Node) -> None:
        node = self.as_boolean(node)
        if isinstance(node, Logic) and node.op == op:
            operands.extend(node.operands)  # (a AND b) AND c evaluates as a AND b AND c
        else:
            operands.append(node)

    def parse_or(self) -> Node:
        return self.parse_logic("OR")

    def parse_and(self) -> Node:
        return self.parse_logic("AND")

    def parse_equality(self) -> Node:
        left = self.parse_comparison()
        while True:
            token = self.peek()
            if token.kind in ("=", "<>"):
                self.advance()
                left = self.equal(token, left, self.parse_comparison())
            elif token.kind == "IS":
                self.advance()
                negated = self.peek().kind == "NOT"
                if negated:
                    self.advance()
                self.expect("NULL", "NULL" if negated else "NULL or NOT NULL")
                left = self.checked(IsNull(token.pos, left, depth=height(left)))
                if negated:
                    left = self.checked(Not(token.pos, left, depth=height(left)))
            else:
                return left

    def parse_comparison(self) -> Node:
        left = self.parse_unary()
        while True:
            token = self.peek()
            kind = token.kind
            negated = kind == "NOT" and self.peek(1).kind in _AFTER_NOT
            if negated:
                self.advance()
                kind = self.peek().kind
            if kind in _ORDER_OPS:
                self.advance()
                left = self.order(token, kind, left, self.parse_unary())
            elif kind == "BETWEEN":
                self.advance()
                low = self.parse_unary()
                self.expect("AND", "AND between the BETWEEN bounds")
                left = self.between(token, left, low, self.parse_unary(), negated)
            elif kind == "IN":
                self.advance()
                left = self.in_list(token, left, negated)
            elif kind in _MATCH_OPS:
                self.advance()
                search = self.expect(STRING, f"a string literal after {kind}").value
                node = Match(token.pos, kind, left, search, negated, depth=height(left))
                left = self.checked(node)
            else:
                return left

    def parse_unary(self) -> Node:
        token = self.peek()
        if token.kind not in _UNARY:
            return self.parse_primary()
        self.enter(token)
        self.advance()
        operand = self.parse_unary()
        self.nesting -= 1
        if token.kind == "+":
            return operand
        if token.kind == "-":
            return self.negate(token, operand)
        operand = self.as_boolean(operand)
        return self.checked(Not(token.pos, operand, depth=height(operand)))

    def parse_primary(self) -> Node:
        token = self.peek()
        kind = token.kind
        if kind == "(":
            self.enter(token)
            self.advance()
            node = self.parse_or()
            self.expect(")", "')'")
            self.nesting -= 1
            return node
        if kind == IDENT:
            self.advance()
            return Prop(token.pos, token.value)
        if kind == STRING:
            self.advance()
            return Const(token.pos, token.value, STR)
        if kind == INTEGER:
            self.advance()
            return self.integer(token)
        if kind == DECIMAL:
            self.advance()
            value = float(token.value)
            if value == float("inf"):
                raise FilterError(f"number {token.value[:40]} is out of range", token.pos + 1)
            return Const(token.pos, value, DOUBLE)
        if kind in ("TRUE", "FALSE"):
            self.advance()
            return Const(token.pos, kind == "TRUE", BOOL)
        if kind == "NULL":
            self.advance()
            return Const(token.pos, None, NULL)
        raise self.unexpected(token, "expected a value, a property name or '('")

    # -- node builders with RocketMQ's checks ----------------------------------------------

    @staticmethod
    def integer(token: Token) -> Const:
        digits = token.value.rstrip("lL")
        if len(digits) > 19 or int(digits) > LONG_MAX:
            raise FilterError(f"integer {digits[:40]} is out of range", token.pos + 1)
        value = int(digits)
        return Const(token.pos, value, INT if value <= INT_MAX else LONG)

    def as_boolean(self, node: Node) -> Node:
        if is_boolean(node):
            return node
        if isinstance(node, Prop):
            return Cast(node.pos, node, depth=2)
        raise FilterError(f"{describe(node)} is not a boolean expression", node.pos + 1)

    def negate(self, token: Token, operand: Node) -> Node:
        if isinstance(operand, Const):
            if operand.type_ in NUMERIC:
                value: Any = operand.value
                return Const(token.pos, -value, operand.type_, literal=False)
            return Const(token.pos, None, NULL, literal=False)
        if isinstance(operand, Prop):
            return Const(token.pos, None, NULL, literal=False)  # a string is not a Number
        if isinstance(operand, Neg):
            operand = operand.operand
        return self.checked(Neg(token.pos, operand, depth=height(operand)))

    def equal(self, token: Token, left: Node, right: Node) -> Node:
        for side in (left, right):
            if is_literal(side) and side.jtype == NULL:
                raise FilterError(
                    f"NULL cannot be compared with '{token.kind}'", side.pos + 1, "use IS NULL"
                )
        if (
            is_literal(left)
            and is_literal(right)
            and left.jtype == BOOL
            and right.jtype not in (BOOL, NULL)
        ):
            raise FilterError(
                f"{describe(left)} cannot be compared with {describe(right)}", token.pos + 1
            )
        node: Node = self.checked(Compare(token.pos, "=", left, right, depth=height(left, right)))
        if token.kind == "<>":
            node = self.checked(Not(token.pos, node, depth=height(node)))
        return node

    @staticmethod
    def check_orderable(op: str, operand: Node) -> None:
        if is_literal(operand) and operand.jtype not in NUMERIC:
            raise FilterError(
                f"{describe(operand)} cannot be compared with {op}",
                operand.pos + 1,
                "only numbers are ordered",
            )
        if is_boolean(operand):
            raise FilterError(f"a boolean expression cannot be compared with {op}", operand.pos + 1)

    def order(self, token: Token, op: str, left: Node, right: Node) -> Node:
        self.check_orderable(f"'{op}'", left)
        self.check_orderable(f"'{op}'", right)
        return self.checked(Compare(token.pos, op, left, right, depth=height(left, right)))

    def between(self, token: Token, value: Node, low: Node, high: Node, negated: bool) -> Node:
        if is_literal(low) and is_literal(high) and NULL in (low.jtype, high.jtype):
            raise FilterError("BETWEEN bounds cannot be NULL", token.pos + 1)
        for operand in (value, low, high):
            self.check_orderable("BETWEEN", operand)
        if isinstance(low, Const) and isinstance(high, Const) and low.literal and high.literal:
            lo, hi = low.value, high.value
            if comparator(high.jtype, low.jtype)(hi, lo) < 0:
                raise FilterError(
                    f"BETWEEN bounds are reversed: {lo!r} is above {hi!r}", token.pos + 1
                )
        if negated:
            parts = (
                Compare(token.pos, "<", value, low, depth=height(value, low)),
                Compare(token.pos, ">", value, high, depth=height(value, high)),
            )
        else:
            parts = (
                Compare(token.pos, ">=", value, low, depth=height(value, low)),
                Compare(token.pos, "<=", value, high, depth=height(value, high)),
            )
        op = "OR" if negated else "AND"
        return self.checked(Logic(token.pos, op, parts, depth=height(*parts)))

    def in_list(self, token: Token, left: Node, negated: bool) -> Node:
        if not isinstance(left, Prop):
            raise FilterError(
                f"IN needs a property on its left, not {describe(left)}", token.pos + 1
            )
        self.expect("(", "'(' after IN")
        values = [self.expect(STRING, "a string literal in the IN list").value]
        while self.peek().kind == ",":
            self.advance()
            values.append(self.expect(STRING, "a string literal in the IN list").value)
        self.expect(")", "',' or ')' in the IN list")
        return In(token.pos, left, frozenset(values), negated, depth=2)
