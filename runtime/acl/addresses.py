"""``whiteRemoteAddress`` patterns of RocketMQ's plain ACL (IPv4 and IPv6).

- blank: matches nothing; ``*``, ``*.*.*.*`` or ``*:*:*:*:*:*:*:*``: every address;
- ``192.168.1.{1,2,7}`` / ``fe80::{1,2}``: those addresses; ``10.0.0.1,::1``: those addresses;
- ``192.168.*`` or ``192.168.1.1-100`` or ``10.*.*.*``: per dotted part, ``*`` (0-255), a range
  ``a-b`` or a number; missing trailing parts match anything;
- ``fe80:0:0:0:0:0:0:*`` or ``2001:db8::a-ff``: the same per colon group (hex, 0-ffff; ``::``
  stands for the zero groups a full address has there);
- ``10.0.0.1`` or ``2001:db8::1``: that address (IPv6 compared in full, any spelling).
A malformed pattern raises ``ValueError`` naming it. Hosts come from ``runtime.hostport.host_of``
(IPv4 clients of a dual-stack listener show as IPv4).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

Matcher = Callable[[str], bool]

_ALL = ("*", "*.*.*.*", "*:*:*:*:*:*:*:*")


def _part(text: str, pattern: str, v6: bool) -> tuple[int, int]:
    text = text.strip()
    top, base = (0xFFFF, 16) if v6 else (255, 10)
    if text == "*":
        return 0, top
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low, base), int(high, base)) if sep else (int(text, base),) * 2
    except ValueError:
        raise ValueError(f"bad address pattern {pattern!r}: {text!r} is no number") from None
    if not 0 <= bounds[0] <= bounds[1] <= top:
        raise ValueError(f"bad address pattern {pattern!r}: {text!r} is out of 0-{top:x}")
    return bounds


def _address(text: str, pattern: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(
            f"bad address pattern {pattern!r}: {text!r} is no IPv4 or IPv6 address"
        ) from None


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.partition("%")[0]))
    except ValueError:
        return host


def _v6_groups(host: str) -> list[int] | None:
    try:
        ip = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return None
    return [int(g, 16) for g in ip.exploded.split(":")]


def _v6_pattern_parts(text: str, pattern: str) -> list[str]:
    head, gap, tail = text.partition("::")
    left = head.split(":") if head else []
    right = tail.split(":") if tail else []
    if gap:
        missing = 8 - len(left) - len(right)
        if missing < 1:
            raise ValueError(f"bad address pattern {pattern!r}: '::' stands for no group")
        return left + ["0"] * missing + right
    return left


def _ranges(text: str, pattern: str) -> Matcher:
    v6 = ":" in text
    raw = _v6_pattern_parts(text, pattern) if v6 else text.split(".")
    parts = [_part(p, pattern, v6) for p in raw]
    if len(parts) > (8 if v6 else 4):
        raise ValueError(f"bad address pattern {pattern!r}: too many parts")

    def in_range(host: str) -> bool:
        if v6:
            values = _v6_groups(host)
            if values is None:
                return False
        else:
            octets = host.split(".")
            if len(octets) != 4 or not all(o.isdigit() for o in octets):
                return False
            values = [int(o) for o in octets]
        return all(lo <= v <= hi for v, (lo, hi) in zip(values, parts, strict=False))

    return in_range


def _among(hosts: frozenset[str]) -> Matcher:
    return lambda host: _canonical(host) in hosts


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate over a client's IP address (no port) for ``pattern``."""
    text = (pattern or "").strip()
    if not text:
        return lambda _host: False
    if text in _ALL:
        return lambda _host: True
    if text.endswith("}"):
        head, brace, tail = text.rpartition("{")
        if not brace or not head.endswith((".", ":")):
            raise ValueError(f"bad address pattern {pattern!r}: expected a.b.c.{{x,y}}")
        return _among(frozenset(_address(head + item, pattern) for item in tail[:-1].split(",")))
    if "," in text:
        return _among(frozenset(_address(item, pattern) for item in text.split(",")))
    if "*" in text or "-" in text:
        return _ranges(text, pattern)
    exact = _address(text, pattern)
    return lambda host: _canonical(host) == exact
