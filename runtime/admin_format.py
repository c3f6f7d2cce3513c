"""The shared forms of ``python -m runtime admin``: its output (aligned tables, local times,
the error it stops with) and its argument types (mqadmin's true|false and its -s timestamps)."""

from __future__ import annotations

import argparse
import time

from actors.client import ClientError, ConnectError

PLAIN_REFUSED_HINT = (
    "hint: a name server or broker enforcing TLS closes a plain connection unanswered; "
    "if this one does, add --tls (or --tls-config FILE)"
)


def failure(exc: ClientError, over_tls: bool) -> str:
    """What the command prints when a request failed: the error, and for a plain connection
    closed unanswered the likeliest reason."""
    text = f"error: {exc}"
    if not over_tls and isinstance(exc, ConnectError) and "connection lost" in str(exc):
        text += "\n" + PLAIN_REFUSED_HINT
    return text


def table(rows: list[list[str]]) -> list[str]:
    """The rows as lines, each column as wide as its widest cell (two spaces between)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def time_text(ms: int) -> str:
    """Milliseconds since the epoch as local ``yyyy-MM-dd HH:mm:ss`` (N/A for none)."""
    if ms <= 0:
        return "N/A"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def boolean(text: str) -> bool:
    """mqadmin's true|false (any case)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def timestamp(text: str) -> int:
    """mqadmin's -s: milliseconds, ``yyyy-MM-dd#HH:mm:ss:SSS`` (local time) or ``now``."""
    if text == "now":
        return int(time.time() * 1000)
    if text.isdigit() or text == "-1":
        return int(text)
    try:
        day, _, clock = text.partition("#")
        hms, _, millis = clock.rpartition(":")
        parsed = time.strptime(f"{day} {hms}", "%Y-%m-%d %H:%M:%S")
        return int(time.mktime(parsed)) * 1000 + int(millis)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ms, yyyy-MM-dd#HH:mm:ss:SSS or now"
        ) from None
