"""Java ``.properties`` text (RocketMQ's broker.conf format): parse with line numbers, format.

Follows java.util.Properties.load: ``key=value``, ``key: value`` or ``key value``; ``#``/``!``
comment lines; a line ending in an odd number of backslashes continues on the next line (whose
leading whitespace is dropped); escapes ``\\t \\n \\r \\f \\uXXXX`` and ``\\<char>``. Unlike Java,
trailing unescaped whitespace of a value is trimmed and the text is read as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WHITESPACE = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_FORMAT_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Entry:
    """One ``key=value`` pair and the line it starts on (1-based)."""

    key: str
    value: str
    line: int


class PropertiesSyntaxError(ValueError):
    """Text that is not valid properties syntax; ``line`` is 1-based."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    lines = _NEWLINE.split(text.removeprefix("\ufeff"))
    i = 0
    while i < len(lines):
        start = i
        line = lines[i].lstrip(_WHITESPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while _continues(line) and i < len(lines):
            parts.append(line[:-1])
            line = lines[i].lstrip(_WHITESPACE)
            i += 1
        if _continues(line):
            line = line[:-1]
        parts.append(line)
        yield start + 1, "".join(parts)


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _unescape(raw: str, line: int) -> str:
    """Decode escapes and drop trailing unescaped whitespace."""
    out: list[str] = []
    significant = 0
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u":
                digits = raw[i + 2 : i + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise PropertiesSyntaxError(line, f"malformed \\u escape {raw[i : i + 6]!r}")
                out.append(chr(int(digits, 16)))
                i += 6
            else:
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
            significant = len(out)
            continue
        out.append(char)
        if char not in _WHITESPACE:
            significant = len(out)
        i += 1
    text = "".join(out[:significant])
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise PropertiesSyntaxError(line, "unpaired UTF-16 surrogate in \\u escapes") from None


def _split(logical: str) -> tuple[str, str]:
    i = 0
    while i < len(logical):
        char = logical[i]
        if char == "\\":
            i += 2
            continue
        if char in "=:" or char in _WHITESPACE:
            break
        i += 1
    key, rest = logical[:i], logical[i:]
    rest = rest.lstrip(_WHITESPACE)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_WHITESPACE)
    return key, rest


def parse_properties(text: str) -> list[Entry]:
    """All entries of ``text`` in file order (duplicates kept; the caller decides)."""
    entries = []
    for line, logical in _logical_lines(text):
        raw_key, raw_value = _split(logical)
        key = _unescape(raw_key, line)
        if not key:
            raise PropertiesSyntaxError(line, f"no key before the separator in {logical!r}")
        entries.append(Entry(key, _unescape(raw_value, line), line))
    return entries


def _escape(text: str, *, is_key: bool) -> str:
    trailing = 0 if is_key else len(text) - len(text.rstrip(" "))
    out = []
    for i, char in enumerate(text[: len(text) - trailing]):
        if char in _FORMAT_ESCAPES:
            out.append(_FORMAT_ESCAPES[char])
        elif (char == " " and (is_key or i == 0)) or (is_key and char in "=:#!"):
            out.append("\\" + char)
        elif not char.isprintable() and ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04X}")
        elif not char.isprintable():
            pair = char.encode("utf-16-be")
            out.append(f"\\u{pair[0:2].hex().upper()}\\u{pair[2:4].hex().upper()}")
        else:
            out.append(char)
    return "".join(out) + "\\ " * trailing


def format_properties(items: Iterable[tuple[str, str]], header: str | None = None) -> str:
    """``key=value`` lines (escaped so parse_properties reads them back exactly)."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    lines += [f"{_escape(k, is_key=True)}={_escape(v, is_key=False)}" for k, v in items]
    return "".join(line + "\n" for line in lines)
