"""Tokenizer of RocketMQ's SQL92 filter language.

Token rules follow RocketMQ's SelectorParser grammar: ASCII identifiers
``[A-Za-z_$][A-Za-z0-9_$]*``, case-insensitive keywords, integer literals ``0 | [1-9][0-9]*[lL]?``,
decimal literals with an optional exponent, single-quoted strings where ``''`` is a quote,
``--`` line and ``/* */`` block comments.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from runtime.filter.errors import FilterError

KEYWORDS = frozenset(
    {
        "NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS",
        "CONTAINS", "STARTSWITH", "ENDSWITH",
    }
)  # fmt: skip

# Token kinds besides the keywords (which are their own kind, upper case).
IDENT = "IDENT"
STRING = "STRING"
INTEGER = "INTEGER"
DECIMAL = "DECIMAL"
EOF = "EOF"

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\n\r\f]+)
  | (?P<line_comment>--[^\n\r]*)
  | (?P<block_comment>/\*)
  | (?P<decimal>[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?
               |\.[0-9]+(?:[eE][+-]?[0-9]+)?
               |[0-9]+[eE][+-]?[0-9]+)
  | (?P<integer>0|[1-9][0-9]*[lL]?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op><>|<=|>=|[<>=(),+-])
    """,
    re.VERBOSE,
)


class Token(NamedTuple):
    """One token: ``kind`` (a keyword, an operator text, or IDENT/STRING/INTEGER/DECIMAL/EOF),
    ``value`` (decoded string, identifier name, literal text) and ``pos`` (0-based offset)."""

    kind: str
    value: str
    pos: int

    def describe(self) -> str:
        """The token as an error message shows it."""
        if self.kind == EOF:
            return "end of expression"
        if self.kind == STRING:
            text = "'" + self.value.replace("'", "''") + "'"
            return f"string {_clip(text)}"
        return f"token '{_clip(self.value)}'"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with an EOF token; raise FilterError on a bad character,
    an unterminated string or an unterminated comment."""
    tokens: list[Token] = []
    pos = 0
    end = len(text)
    match = _TOKEN.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            ch = text[pos]
            if ch == "'":
                raise FilterError("unterminated string literal", pos + 1)
            shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
            raise FilterError(f"unexpected character '{shown}'", pos + 1)
        group = m.lastgroup
        if group == "block_comment":
            close = text.find("*/", pos + 2)
            if close < 0:
                raise FilterError("unterminated comment", pos + 1)
            pos = close + 2
            continue
        if group == "string":
            tokens.append(Token(STRING, m.group()[1:-1].replace("''", "'"), pos))
        elif group == "ident":
            word = m.group()
            upper = word.upper()
            tokens.append(Token(upper if upper in KEYWORDS else IDENT, word, pos))
        elif group == "integer":
            tokens.append(Token(INTEGER, m.group(), pos))
        elif group == "decimal":
            tokens.append(Token(DECIMAL, m.group(), pos))
        elif group == "op":
            tokens.append(Token(m.group(), m.group(), pos))
        pos = m.end()
    tokens.append(Token(EOF, "", end))
    return tokens
