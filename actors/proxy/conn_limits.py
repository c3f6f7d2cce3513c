"""How many connections the proxy's front relays at once: per process and per client host.

A hostile-input probe held 4,096 connections (the front's whole budget) from one host, each
having sent one byte: every other client was turned away until they went. So besides the
process's bound (``MAX_CONNECTIONS``) one host (the connection's peer address; behind a load
balancer with the PROXY protocol that is the balancer, so the per-host bound is not applied
then) holds at most ``MAX_PER_HOST``; a connection past either is closed at once.

The front's threads are native threads that must not touch gevent or loguru (``front``):
they only count here, under an unpatched lock. ``Refusals.report()`` is called from the
proxy's own side (a greenlet under gevent, a thread otherwise) and logs one WARNING at most
every ``WARN_EVERY_S`` with what was refused since the last one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gevent.monkey
from loguru import logger

MAX_CONNECTIONS = 4096
"""Relayed connections at once in one proxy process."""
MAX_PER_HOST = 1024
"""Relayed connections at once from one client host (a quarter of the process's);
``ACTORMQ_PROXY_MAX_CONNECTIONS_PER_HOST`` sets another (0: no per-host bound), for clients
behind one source-NAT address (a NAT gateway, a Kubernetes Service without the PROXY
protocol), which all count as one host."""
PER_HOST_ENV = "ACTORMQ_PROXY_MAX_CONNECTIONS_PER_HOST"


def per_host_limit() -> int | None:
    """``MAX_PER_HOST``, or what ``ACTORMQ_PROXY_MAX_CONNECTIONS_PER_HOST`` says (0: None)."""
    forced = os.environ.get(PER_HOST_ENV, "").strip()
    if forced.isdigit():
        return int(forced) or None
    return MAX_PER_HOST


WARN_EVERY_S = 10.0

_new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")
_monotonic: Callable[[], float] = gevent.monkey.get_original("time", "monotonic")

FULL = "the proxy's connection limit"
HOST_FULL = "one host's connection limit"
SLOW_START = "no complete HTTP/2 preface or TLS hello in time"
TURNED_AWAY = "not gRPC, a malformed PROXY header, or a kind the port refuses"
GRPCIO_SLOW = "grpcio's loopback port not connected to in time"
"""(The client sent its first message in time; the front's own grpcio did not answer.)"""


class ConnectionLimits:
    """Counts held connections per process and per host; ``take`` / ``give`` from any thread."""

    def __init__(self, total: int = MAX_CONNECTIONS, per_host: int | None = MAX_PER_HOST) -> None:
        self.total = total
        self.per_host = per_host
        """None: no per-host bound (behind a load balancer)."""
        self.held = 0
        self._by_host: dict[str, int] = {}
        self._lock = _new_lock()

    def take(self, host: str) -> str | None:
        """Hold a place for a connection from ``host``; why not (``FULL``, ``HOST_FULL``)."""
        with self._lock:
            if self.held >= self.total:
                return FULL
            count = self._by_host.get(host, 0)
            if self.per_host is not None and count >= self.per_host:
                return HOST_FULL
            self.held += 1
            self._by_host[host] = count + 1
            return None

    def give(self, host: str) -> None:
        with self._lock:
            self.held -= 1
            count = self._by_host.get(host, 0) - 1
            if count > 0:
                self._by_host[host] = count
            else:
                self._by_host.pop(host, None)


class Refusals:
    """Connections closed by the front, by reason: counted from any thread, reported (logged)
    from the proxy's side only."""

    def __init__(self) -> None:
        self._lock = _new_lock()
        self._since: dict[str, int] = {}
        """Reason -> connections since the last warning."""
        self.total: dict[str, int] = {}
        self._warned_at = float("-inf")

    def note(self, reason: str) -> None:
        with self._lock:
            self._since[reason] = self._since.get(reason, 0) + 1
            self.total[reason] = self.total.get(reason, 0) + 1

    def count(self, reason: str) -> int:
        with self._lock:
            return self.total.get(reason, 0)

    def report(self) -> str | None:
        """Log what was refused since the last warning, at most every ``WARN_EVERY_S``; the
        text logged (None: nothing, or too soon)."""
        now = _monotonic()
        with self._lock:
            if not self._since or now - self._warned_at < WARN_EVERY_S:
                return None
            since, self._since = self._since, {}
            self._warned_at = now
        text = "; ".join(f"{n} for {reason}" for reason, n in sorted(since.items()))
        logger.warning("proxy: connections closed by the gRPC port: {}", text)
        return text
