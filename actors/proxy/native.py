"""Native threads' primitives for the front (``actors.proxy.front``) and its relay: the
socket module's own socket class, thread start, lock, sleep and clock, and the unpatched
poller (epoll; poll off Linux), whatever gevent's monkey-patching replaced: the front's
accepting thread and the relay's thread are native threads that touch nothing of gevent's.
Also the socket helpers they share: ``tune`` (TCP_NODELAY; keepalive and ``TCP_USER_TIMEOUT``
for a client's socket), ``shutdown`` (from any thread) and ``close``.

Owns no thread, socket nor state.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable
from typing import Any

import gevent.monkey

# the unpatched socket class, thread start and lock (gevent's monkey-patching replaces them)
Socket: Any = gevent.monkey.get_original("socket", "socket")
start_thread: Callable[..., Any] = gevent.monkey.get_original("_thread", "start_new_thread")
new_lock: Callable[[], Any] = gevent.monkey.get_original("_thread", "allocate_lock")
sleep: Callable[[float], None] = gevent.monkey.get_original("time", "sleep")
monotonic: Callable[[], float] = gevent.monkey.get_original("time", "monotonic")
# the unpatched poller: gevent's ``select`` has no epoll, and its ``poll`` (and ``selectors``'
# DefaultSelector) wait on the hub, of no use in a native thread
try:
    new_poller: Callable[[], Any] = gevent.monkey.get_original("select", "epoll")
    POLL_UNIT = 1.0
    """What one second is in the poller's timeout (epoll: seconds; poll: milliseconds)."""
except AttributeError:  # (not Linux)
    new_poller = gevent.monkey.get_original("select", "poll")
    POLL_UNIT = 1000.0
READ, WRITE = select.POLLIN, select.POLLOUT
BROKEN = select.POLLERR | select.POLLHUP


def tune(sock: socket.socket, keepalive: bool) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    # a client gone without a word is noticed within minutes (grpcio's pings reach only the
    # relay), and data it never acknowledges fails the sends after TCP_USER_TIMEOUT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", 60),
        ("TCP_KEEPINTVL", 10),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 60_000),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Wake whatever waits on ``sock`` (from any thread; it stays open)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def close(sock: socket.socket) -> None:
    shutdown(sock)
    with contextlib.suppress(OSError):
        sock.close()
