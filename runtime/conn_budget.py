"""How many accepted connections a process holds at once, and what happens past that.

Every accepted connection costs a descriptor. Consume queues take at most half of the soft
open-files limit (``runtime.store.fd_cache``); the other half is for sockets, the commit log,
index and config files. Without a cap a flood of connections took the last descriptors: the
store could no longer open a file and gevent printed a traceback for every refused ``accept``.

``ConnectionBudget`` is shared by every client-facing listener of the process (name servers and
brokers of a one-process cluster alike; a broker's HA port has a small budget of its own, so a
flood on the client port never keeps its slaves out): at most ``limit`` connections are held at
once, ``DEFAULT_RESERVE`` descriptors below half the soft limit (at least ``MIN_LIMIT``);
``ACTORMQ_MAX_CONNECTIONS`` overrides it. A connection past it is accepted and closed at once
(its client sees the connection reset and goes to another broker or retries), with a WARNING at
most every ``WARN_EVERY_S`` that counts them. Kafka's ``max.connections`` does the same.

    budget.take() -> bool      (True: hold one; False: past the limit, close the connection)
    budget.give()              (a held connection closed)
"""

from __future__ import annotations

import time

from loguru import logger

from runtime.fdlimit import env_count, soft_open_files

ENV = "ACTORMQ_MAX_CONNECTIONS"
DEFAULT_RESERVE = 256
"""Descriptors kept from connections, for the commit log, index and config files and the
process's own outbound connections."""
MIN_LIMIT = 64
WARN_EVERY_S = 10.0


def default_limit() -> int:
    """Half the soft open-files limit less ``DEFAULT_RESERVE`` (``RLIM_INFINITY``: 65,536), at
    least ``MIN_LIMIT``; ``ACTORMQ_MAX_CONNECTIONS`` overrides it."""
    return env_count(ENV) or max(MIN_LIMIT, soft_open_files() // 2 - DEFAULT_RESERVE)


class ConnectionBudget:
    """A count of held connections against ``limit`` (read when first needed: the process
    raises its open-files limit at start, after this module is imported)."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self.held = 0
        self.refused = 0
        """Connections closed for the limit since the last warning."""
        self._warned_at = float("-inf")

    @property
    def limit(self) -> int:
        if self._limit is None:
            self._limit = default_limit()
        return self._limit

    def take(self) -> bool:
        if self.held >= self.limit:
            self.refused += 1
            self._warn(f"{self.held} connections open, the limit ({ENV})")
            return False
        self.held += 1
        return True

    def give(self) -> None:
        self.held = max(0, self.held - 1)

    def out_of_descriptors(self, error: OSError) -> None:
        """``accept`` failed for want of descriptors (EMFILE / ENFILE): warn, at most every
        ``WARN_EVERY_S``."""
        self.refused += 1
        self._warn(f"out of file descriptors ({error.strerror}) with {self.held} connections open")

    def _warn(self, why: str) -> None:
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_S:
            return
        logger.warning(
            "refusing connections: {}; {} refused since the last warning", why, self.refused
        )
        self._warned_at = now
        self.refused = 0


PROCESS = ConnectionBudget()
"""The budget every listener of this process shares."""
