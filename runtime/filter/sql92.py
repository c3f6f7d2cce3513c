"""RocketMQ's SQL92 message filter: compile an expression once, evaluate it per message.

``compile_expression(text)`` returns a predicate over a message's properties (user properties
plus system ones such as TAGS, all strings); it is True only when RocketMQ's evaluator would
answer TRUE. Invalid text raises FilterError, and nothing else. ``compile_cached`` memoises both
outcomes for the pull path, where the same subscription arrives with every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from runtime.filter.errors import FilterError
from runtime.filter.evaluator import build
from runtime.filter.javanum import Abort
from runtime.filter.parser import MAX_DEPTH, parse

Predicate = Callable[[Mapping[str, str]], bool]
"""A compiled filter: properties in, match or not out. Never raises for string values."""

MAX_LENGTH = 4096
"""Longest expression accepted, in characters."""

CACHE_SIZE = 512
"""Compiled expressions (valid or not) kept by ``compile_cached``."""

__all__ = [
    "CACHE_SIZE",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "FilterError",
    "Predicate",
    "compile_cached",
    "compile_expression",
]


def compile_expression(text: str) -> Predicate:
    """Compile a SQL92 filter expression; raise FilterError saying what is wrong and where."""
    if not isinstance(text, str):
        raise FilterError(f"expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        root = build(parse(text))
    except RecursionError:
        raise FilterError("expression nested too deeply") from None

    def predicate(properties: Mapping[str, str]) -> bool:
        try:
            return root(properties) is True
        except Abort:
            return False

    predicate.__doc__ = f"SQL92 filter: {text[:200]}"
    return predicate


@lru_cache(maxsize=CACHE_SIZE)
def _compile_outcome(text: str) -> Predicate | tuple[str, int | None, str | None]:
    try:
        return compile_expression(text)
    except FilterError as error:
        return (error.reason, error.column, error.hint)


def compile_cached(text: str) -> Predicate:
    """``compile_expression`` through an LRU cache of ``CACHE_SIZE`` texts; an invalid text raises
    a fresh FilterError each time without being parsed again."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return compile_expression(text)  # raises; not worth a cache slot
    outcome = _compile_outcome(text)
    if isinstance(outcome, tuple):
        raise FilterError(*outcome)
    return outcome


def cache_clear() -> None:
    """Forget every cached compilation (for tests)."""
    _compile_outcome.cache_clear()
