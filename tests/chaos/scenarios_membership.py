"""Replication membership scenario (RELIABILITY.md §4 B): R15, slaves added to and removed
from a group under load."""

from __future__ import annotations

from collections.abc import Callable

from tests.chaos.scenarios import Result, RunConfig

MEMBERSHIP_SCENARIOS: dict[str, Callable[[RunConfig], Result]] = {}
