"""How much a server lets its clients have in flight: requests read off a socket and not yet
answered, counted per connection (requests and body bytes) and per process (body bytes).

A session asks ``InFlight.admit`` for each request it reads; a refused request is answered
SYSTEM_BUSY at once and never served, so a client that pipelines faster than the server stores
(an async producer with thousands of 4 MiB sends in flight, many such connections at once) costs
the server at most these bounds in memory, and the client hears "busy" instead of timing out.
A connection's first request in flight is always within its connection's bounds (a lone 16 MiB
frame is served); the process-wide bound refuses only large requests, never while nothing else is
in flight, so heartbeats, pulls and offset commits keep flowing while big sends fill it (Kafka's
``queued.max.request.bytes``; RocketMQ bounds its send queue by count).
"""

from __future__ import annotations

MAX_IN_FLIGHT = 4096
"""Requests one connection may have in flight."""
MAX_IN_FLIGHT_BYTES = 64 << 20
"""Body bytes one connection may have in flight (16 sends of the 4 MiB maximum)."""
MAX_PROCESS_IN_FLIGHT_BYTES = 512 << 20
"""Body bytes every connection of the process together may have in flight."""
SMALL_REQUEST = 64 << 10
"""A request whose body is at most this many bytes is never refused for the process-wide bound."""

_process_bytes = 0
"""Body bytes in flight across this process's connections (one hub: no lock needed)."""


def process_bytes() -> int:
    """Body bytes in flight across this process's connections."""
    return _process_bytes


class InFlight:
    """One connection's requests in flight."""

    __slots__ = ("bytes", "count", "max_bytes", "max_count")

    def __init__(
        self, max_count: int = MAX_IN_FLIGHT, max_bytes: int = MAX_IN_FLIGHT_BYTES
    ) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.count = 0
        self.bytes = 0

    def admit(self, size: int) -> str | None:
        """Count a request with a ``size``-byte body in flight, or say why it may not be."""
        global _process_bytes
        if self.count:
            if self.count >= self.max_count:
                return f"too many requests in flight (> {self.max_count})"
            if self.bytes + size > self.max_bytes:
                return f"too many bytes in flight on this connection (> {_mib(self.max_bytes)})"
        if (
            size > SMALL_REQUEST
            and _process_bytes
            and _process_bytes + size > MAX_PROCESS_IN_FLIGHT_BYTES
        ):
            return (
                f"too many bytes in flight on this server (> {_mib(MAX_PROCESS_IN_FLIGHT_BYTES)})"
            )
        self.count += 1
        self.bytes += size
        _process_bytes += size
        return None

    def release(self, size: int) -> None:
        """A request admitted with ``size`` is answered (or dropped)."""
        global _process_bytes
        self.count -= 1
        self.bytes -= size
        _process_bytes -= size


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"
