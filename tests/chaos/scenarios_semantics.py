"""Message-semantics scenarios (RELIABILITY.md §4 C): R18 ordered messages and R19 retry,
delay and dead-letter topics, each on one broker under a nemesis."""

from __future__ import annotations

from collections.abc import Callable

from tests.chaos.scenarios import Result, RunConfig

SEMANTIC_SCENARIOS: dict[str, Callable[[RunConfig], Result]] = {}
