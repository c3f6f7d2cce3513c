"""Pipe: one relayed connection's state in the relay's loop (``actors.proxy.relay``): the
client's socket and grpcio's, and what each direction holds of the other's bytes (at most
``relay.CHUNK``; ``flush`` writes it). Owns no thread; only the relay's thread touches it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


class Pipe:
    """One relayed connection in the relay's loop: the client's socket and grpcio's, and
    what each direction holds of the other's bytes (at most ``CHUNK``)."""

    __slots__ = ("client", "host", "local_port", "masks", "to_client", "to_up", "upstream")

    def __init__(
        self, client: socket.socket, upstream: socket.socket, host: str, local_port: int
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.host = host
        self.local_port = local_port
        self.to_up = Direction()
        """The client's bytes to grpcio."""
        self.to_client = Direction()
        """grpcio's bytes to the client."""
        self.masks = [0, 0]
        """The poller's interest in the client's socket, grpcio's (0: not registered)."""


class Direction:
    __slots__ = ("ended", "pending")

    def __init__(self) -> None:
        self.pending: memoryview | None = None
        """Bytes read and not yet taken by the other side (its reading waits meanwhile)."""
        self.ended = False
        """Its source ended (what is pending is still written)."""


Side = tuple[Pipe, int, Callable[[memoryview], int], Callable[[memoryview], int], Direction]


def flush(direction: Direction, target: socket.socket) -> bool:
    """Write what ``direction`` holds to ``target``; True once all of it is written and its
    source has ended (OSError: ``target`` broke)."""
    pending = direction.pending
    if pending is not None:
        try:
            sent = target.send(pending)
        except BlockingIOError:
            return False
        direction.pending = pending[sent:] if sent < len(pending) else None
        if direction.pending is not None:
            return False
    return direction.ended
