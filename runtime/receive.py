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


def is_tls(sock: object) -> bool:
    """Whether ``sock`` is a TLS socket (``runtime.tls``): its bytes must go through its TLS
    layer, never through the socket underneath."""
    return hasattr(sock, "_sslobj")


def raw_socket(sock: object) -> Any:
    """gevent's underlying non-blocking socket of ``sock``; None for a plain socket and for a
    TLS socket."""
    if is_tls(sock):
        return None
    return getattr(sock, "_sock", None)


def receiver(sock: socket.socket, size: int) -> Callable[[], bytes]:
    """A function that returns the next bytes of ``sock`` (b"" at EOF), up to ``size``. A TLS
    socket reads through gevent's ``recv`` (it may hold decrypted bytes already)."""
    if is_tls(sock):
        return _tls_receiver(sock, size)
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


def _tls_receiver(sock: socket.socket, size: int) -> Callable[[], bytes]:
    """gevent's TLS ``recv``, whose "socket closed" is a ValueError ("Read on closed or
    unwrapped SSL socket"): raised here as the ``OSError`` a plain socket raises."""

    def receive() -> bytes:
        try:
            return sock.recv(size)
        except ValueError as exc:
            raise ConnectionAbortedError(str(exc)) from None

    return receive
