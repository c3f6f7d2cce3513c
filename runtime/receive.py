"""``receiver(sock, size)``: the ``recv`` of a read loop, waiting *before* reading after a
short read.

gevent's ``recv`` tries the socket first and waits after EAGAIN. A request/response peer has
nothing more to read once its last read was short, so that first try is a wasted system call and
a Python exception on every wake-up (half of all ``recv`` calls at one request in flight). After
a read that filled the buffer more is likely waiting, so the next read goes at once. Used by the
remoting sessions and both ends of HA replication; plain sockets (tests, no gevent) read as
usual. Timeouts and closes behave as gevent's ``recv``: ``socket.timeout`` after the socket's
timeout, an ``OSError`` when the socket is closed while waiting.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any


def raw_socket(sock: object) -> Any:
    """gevent's underlying non-blocking socket of ``sock``; None for a plain socket and for a
    TLS socket, whose bytes must go through its TLS layer (``runtime.tls``)."""
    if hasattr(sock, "_sslobj"):
        return None
    return getattr(sock, "_sock", None)


def receiver(sock: socket.socket, size: int) -> Callable[[], bytes]:
    """A function that returns the next bytes of ``sock`` (b"" at EOF), up to ``size``. A TLS
    socket reads through gevent's ``recv`` (it may hold decrypted bytes already)."""
    raw = raw_socket(sock)
    wait = getattr(sock, "_wait", None)
    event = getattr(sock, "_read_event", None)
    if raw is None or wait is None or event is None:
        return lambda: sock.recv(size)
    recv = raw.recv
    more = True

    def receive() -> bytes:
        nonlocal more
        if more:
            try:
                data = recv(size)
            except BlockingIOError:
                pass
            else:
                more = len(data) == size
                return data
        while True:
            wait(event)
            try:
                data = recv(size)
            except BlockingIOError:
                continue
            more = len(data) == size
            return data

    return receive
