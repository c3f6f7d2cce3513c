"""HeldCalls: the bound on calls that hold a gRPC worker for long (telemetry streams, waiting
receives), in all and per client.

Past ``max_held`` of them a new one is answered TOO_MANY_REQUESTS at once, so the workers left
serve every other call. A probe's one client opened 900 telemetry streams and took that whole
budget: every other consumer was refused. So one client id (``x-mq-client-id``) holds at most
``PER_CLIENT`` and one connection at most ``PER_CONNECTION`` (more: several clients of one
process may share a connection, as grpcio's Python channels do).
"""

from __future__ import annotations

import threading

PER_CLIENT = 128
"""Held calls of one client id: its telemetry stream and a receive per topic and broker."""
PER_CONNECTION = 256

Keys = tuple[str, str]
"""(client id, connection) of a held call."""


class HeldCalls:
    def __init__(
        self, max_held: int, per_client: int = PER_CLIENT, per_connection: int = PER_CONNECTION
    ) -> None:
        self.max_held = max_held
        self.per_client = per_client
        self.per_connection = per_connection
        self.held = 0
        self._clients: dict[str, int] = {}
        self._connections: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, client: str, connection: str) -> str | None:
        """Take a place for a long call of ``client`` on ``connection``; None, or why not."""
        with self._lock:
            if self.held >= self.max_held:
                return f"{self.max_held} streams and waiting receives are open: try again later"
            if client and self._clients.get(client, 0) >= self.per_client:
                return (
                    f"client {client[:128]} holds {self.per_client} streams and waiting "
                    "receives: end some first"
                )
            if connection and self._connections.get(connection, 0) >= self.per_connection:
                return (
                    f"this connection holds {self.per_connection} streams and waiting "
                    "receives: end some first"
                )
            self.held += 1
            _add(self._clients, client, 1)
            _add(self._connections, connection, 1)
            return None

    def release(self, client: str, connection: str) -> None:
        with self._lock:
            self.held -= 1
            _add(self._clients, client, -1)
            _add(self._connections, connection, -1)


def _add(counts: dict[str, int], key: str, n: int) -> None:
    if not key:
        return
    count = counts.get(key, 0) + n
    if count > 0:
        counts[key] = count
    else:
        counts.pop(key, None)
