"""``whiteRemoteAddress`` patterns of RocketMQ's plain ACL (IPv4).

- blank: matches nothing; ``*`` or ``*.*.*.*``: every address;
- ``192.168.1.{1,2,7}``: those addresses; ``10.0.0.1,10.0.0.2``: those addresses;
- ``192.168.*`` or ``192.168.1.1-100`` or ``10.*.*.*``: per dotted part, ``*`` (0-255), a range
  ``a-b`` or a number; missing trailing parts match anything;
- ``10.0.0.1``: that address.
A malformed pattern raises ``ValueError`` naming it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

Matcher = Callable[[str], bool]


def host_of(remote_address: str) -> str:
    """The host of a connection's ``host:port`` (the address itself when it has no port)."""
    return remote_address.rpartition(":")[0] or remote_address


def _part(text: str, pattern: str) -> tuple[int, int]:
    text = text.strip()
    if text == "*":
        return 0, 255
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low), int(high)) if sep else (int(text), int(text))
    except ValueError:
        raise ValueError(f"bad address pattern {pattern!r}: {text!r} is no number") from None
    if not 0 <= bounds[0] <= bounds[1] <= 255:
        raise ValueError(f"bad address pattern {pattern!r}: {text!r} is out of 0-255")
    return bounds


def _address(text: str, pattern: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValueError(f"bad address pattern {pattern!r}: {text!r} is no IPv4 address") from None


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate over a client's IPv4 address (no port) for ``pattern``."""
    text = (pattern or "").strip()
    if not text:
        return lambda _host: False
    if text in ("*", "*.*.*.*"):
        return lambda _host: True
    if text.endswith("}"):
        head, brace, tail = text.rpartition("{")
        if not brace or not head.endswith("."):
            raise ValueError(f"bad address pattern {pattern!r}: expected a.b.c.{{x,y}}")
        hosts = frozenset(_address(head + item, pattern) for item in tail[:-1].split(","))
        return hosts.__contains__
    if "," in text:
        hosts = frozenset(_address(item, pattern) for item in text.split(","))
        return hosts.__contains__
    if "*" in text or "-" in text:
        parts = [_part(p, pattern) for p in text.split(".")]
        if len(parts) > 4:
            raise ValueError(f"bad address pattern {pattern!r}: more than four parts")

        def in_range(host: str) -> bool:
            octets = host.split(".")
            if len(octets) != 4 or not all(o.isdigit() for o in octets):
                return False
            return all(lo <= int(o) <= hi for o, (lo, hi) in zip(octets, parts, strict=False))

        return in_range
    exact = _address(text, pattern)
    return lambda host: host == exact
