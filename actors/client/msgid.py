"""Client message ids (the UNIQ_KEY property), laid out like RocketMQ's MessageClientIDSetter.

32 uppercase hex digits = 16 bytes: IPv4 (4) + process id (2) + a per-process random number (4,
where Java puts a class-loader hash) + milliseconds since the start of the current month (4) +
a counter (2). Unique per process across restarts (the random part changes) and sortable within
a month; nothing parses it, so only uniqueness matters.

On a host without an IPv4 address but with a global IPv6 one the ip part is its 16 bytes and the
id 56 hex digits, as RocketMQ 4.x's MessageClientIDSetter (ip.length + 12 bytes) with
UtilAll.getIP (an IPv4 address first, loopback never; else a non-link-local, non-loopback IPv6).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
import socket
import struct
import threading
import time

from runtime.hostport import ip_bytes


def _source_address(family: socket.AddressFamily, target: str) -> str | None:
    """The source address this host would use to reach ``target`` (None: no route)."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 1))  # no packet is sent for UDP connect
            return str(probe.getsockname()[0])
    except OSError:
        return None


def _usable_v6(ip: str | None) -> bool:
    """Not loopback, link-local, site-local or unspecified (RocketMQ's isInternalV6IP)."""
    if ip is None:
        return False
    addr = ipaddress.IPv6Address(ip.partition("%")[0])
    return not (addr.is_loopback or addr.is_link_local or addr.is_site_local or addr.is_unspecified)


def local_ip() -> str:
    """The IPv4 address this host would use to reach the outside; on an IPv6-only host its
    global IPv6 address; 127.0.0.1 if neither."""
    v4 = _source_address(socket.AF_INET, "10.255.255.255")
    if v4 is not None and not v4.startswith("127."):
        return v4
    v6 = _source_address(socket.AF_INET6, "2001:db8::1")  # documentation prefix: never reached
    if _usable_v6(v6):
        return str(v6).partition("%")[0]
    return v4 or "127.0.0.1"


def _month_start_ms(now_ms: int) -> int:
    now = datetime.datetime.fromtimestamp(now_ms / 1000)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


class MessageIdGenerator:
    """Thread-safe generator of UNIQ_KEY values."""

    def __init__(self, ip: str | None = None, pid: int | None = None) -> None:
        prefix = (
            ip_bytes(ip or local_ip())
            + struct.pack(">H", (pid or os.getpid()) & 0xFFFF)
            + os.urandom(4)
        )
        self._prefix = prefix.hex().upper()
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._start = 0
        self._next_start = 0

    def _time_part(self) -> str:
        now = int(time.time() * 1000)
        if now >= self._next_start:
            with self._lock:
                if now >= self._next_start:
                    self._start = _month_start_ms(now)
                    self._next_start = _month_start_ms(self._start + 32 * 86_400_000)
        return f"{self._prefix}{(now - self._start) & 0x7FFFFFFF:08X}"

    def next_id(self) -> str:
        return f"{self._time_part()}{next(self._counter) & 0xFFFF:04X}"

    def next_ids(self, n: int) -> list[str]:
        """``n`` ids at once (a batch): one clock read."""
        head = self._time_part()
        counter = self._counter
        return [f"{head}{next(counter) & 0xFFFF:04X}" for _ in range(n)]


_default: MessageIdGenerator | None = None


def _generator() -> MessageIdGenerator:
    global _default
    if _default is None:
        _default = MessageIdGenerator()
    return _default


def new_message_id() -> str:
    """A fresh UNIQ_KEY from the process-wide generator."""
    return _generator().next_id()


def new_message_ids(n: int) -> list[str]:
    """``n`` fresh UNIQ_KEYs (one clock read)."""
    return _generator().next_ids(n)
