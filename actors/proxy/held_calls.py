"""HeldCalls: the bound on calls that hold a gRPC worker for long (telemetry streams, waiting
receives), in all and per client.

Past ``max_held`` of them a new one is answered TOO_MANY_REQUESTS at once, so the workers left
serve every other call. A probe's one client opened 900 telemetry streams and took that whole
budget: every other consumer was refused. So one client id (``x-mq-client-id``) holds at most
``PER_CLIENT_STREAMS`` telemetry streams (a client needs one), and calls without a client id
at most ``PER_CONNECTION`` on one connection. Receives of a client id count only against
``max_held``: a push consumer waits on one per topic and broker, a SimpleConsumer may keep many
``receiveAsync`` calls out, and behind an HTTP/2-aware balancer (Envoy, a service mesh) every
client's calls share a few connections (a review found a per-connection bound of 256 capped
such a proxy at 50 - 100 clients).
"""

from __future__ import annotations

import threading

PER_CLIENT_STREAMS = 8
"""Telemetry streams of one client id (it needs one; a restart may overlap the old one)."""
PER_CONNECTION = 256
"""Held calls without a client id on one connection."""

Keys = tuple[str, str, bool]
"""(client id, connection, whether it is a telemetry stream) of a held call."""


class HeldCalls:
    def __init__(
        self,
        max_held: int,
        per_client_streams: int = PER_CLIENT_STREAMS,
        per_connection: int = PER_CONNECTION,
    ) -> None:
        self.max_held = max_held
        self.per_client_streams = per_client_streams
        self.per_connection = per_connection
        self.held = 0
        self._streams: dict[str, int] = {}
        self._anonymous: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, client: str, connection: str, stream: bool = False) -> str | None:
        """Take a place for a long call of ``client`` on ``connection`` (``stream``: a telemetry
        stream); None, or why not."""
        with self._lock:
            if self.held >= self.max_held:
                return f"{self.max_held} streams and waiting receives are open: try again later"
            if client and stream and self._streams.get(client, 0) >= self.per_client_streams:
                return (
                    f"client {client[:128]} holds {self.per_client_streams} telemetry streams: "
                    "end some first"
                )
            if not client and self._anonymous.get(connection, 0) >= self.per_connection:
                return (
                    f"this connection holds {self.per_connection} streams and waiting receives "
                    "without a client id: end some first"
                )
            self.held += 1
            self._count(client, connection, stream, 1)
            return None

    def release(self, client: str, connection: str, stream: bool = False) -> None:
        with self._lock:
            self.held -= 1
            self._count(client, connection, stream, -1)

    def _count(self, client: str, connection: str, stream: bool, n: int) -> None:
        if client and stream:
            _add(self._streams, client, n)
        elif not client:
            _add(self._anonymous, connection, n)


def _add(counts: dict[str, int], key: str, n: int) -> None:
    count = counts.get(key, 0) + n
    if count > 0:
        counts[key] = count
    else:
        counts.pop(key, None)
