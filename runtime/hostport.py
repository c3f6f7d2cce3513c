"""Network addresses as RocketMQ writes them: ``host:port`` where host may be IPv6.

RocketMQ writes an IPv6 address WITHOUT brackets (``fe80::1:10911``) and splits ``host:port``
at the LAST ``:`` (RemotingHelper.string2SocketAddress); ``[::1]:9876`` is accepted too.
IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``, what a dual-stack ``::`` socket reports for an
IPv4 peer) read as the IPv4 address, as Java's ``InetAddress`` does.

- ``parse_address``: ``host:port`` -> (host, port), ``AddressError`` for anything else;
- ``format_address``: (host, port) -> ``host:port`` the RocketMQ way;
- ``host_of``: the host of a ``host:port`` (brackets and mapping removed);
- ``ip_bytes`` / ``ip_text``: an IP literal <-> its 4 (IPv4) or 16 (IPv6) bytes;
- ``family_of``: the socket family for a host (AF_INET6 for an IPv6 literal).

Every caller turns ``AddressError`` into its own error type: ``ConfigError`` for configuration,
``ClientError`` for client arguments, ``ProtocolError`` for bytes from the wire.
"""

from __future__ import annotations

import ipaddress
import socket

from runtime.errors import AddressError

IPV4_LEN = 4
IPV6_LEN = 16


def unmapped(host: str) -> str:
    """``host`` with an IPv4-mapped IPv6 literal (``::ffff:a.b.c.d``) turned into ``a.b.c.d``
    and a zone id kept; anything else unchanged."""
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    mapped = ip.ipv4_mapped
    return str(mapped) if mapped is not None else host


def parse_address(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``v6:port`` (split at the last ``:``) -> (host, port).

    The port must be 1..65535 and the host non-empty without spaces; a bracketed host must be
    an IPv6 literal. Raises ``AddressError`` naming the text."""
    if not isinstance(text, str):
        raise AddressError(repr(text), "is not text")
    stripped = text.strip()
    if stripped.startswith("["):
        close = stripped.find("]")
        if close < 0 or stripped[close + 1 : close + 2] != ":":
            raise AddressError(text, "expected [ipv6]:port")
        host, port_text = stripped[1:close], stripped[close + 2 :]
        if not _is_ipv6(host):
            raise AddressError(text, f"{host!r} in brackets is not an IPv6 address")
    else:
        host, sep, port_text = stripped.rpartition(":")
        if not sep:
            raise AddressError(text, "expected host:port")
    if not host or any(c.isspace() for c in host):
        raise AddressError(text, "has no valid host")
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise AddressError(text, "has no valid port (1..65535)")
    return unmapped(host), int(port_text)


def format_address(host: str, port: int) -> str:
    """RocketMQ's ``host:port``: no brackets around an IPv6 host (``::1:9876``)."""
    return f"{unmapped(host)}:{port}"


def host_of(address: str) -> str:
    """The host of ``host:port`` (``[v6]:port`` too); the text itself when it has no ``:``."""
    text = address.strip()
    if text.startswith("[") and "]" in text:
        return unmapped(text[1 : text.index("]")])
    host, sep, _port = text.rpartition(":")
    return unmapped(host) if sep and host else text


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal (``::``, ``::1``, ``fe80::1%eth0``), else AF_INET."""
    return socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET


def ip_bytes(host: str) -> bytes:
    """An IP literal as 4 (IPv4 or IPv4-mapped) or 16 (IPv6) bytes; ``AddressError`` for a
    host name or anything else."""
    try:
        ip = ipaddress.ip_address(host.strip().partition("%")[0])
    except ValueError:
        raise AddressError(host, "is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.packed


def resolve_ip(host: str) -> str:
    """An IP literal as it is (brackets and an IPv4 mapping removed); a host name to its first
    address, IPv4 preferred, as Java's ``InetSocketAddress`` resolves ``brokerIP1``.
    ``AddressError`` when it does not resolve."""
    host = host.strip().strip("[]")
    try:
        return unmapped(str(ipaddress.ip_address(host.partition("%")[0])))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except OSError as exc:
        raise AddressError(host, f"does not resolve: {exc}") from None
    v4 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET]
    v6 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET6]
    if not v4 and not v6:
        raise AddressError(host, "does not resolve")
    return (v4 or v6)[0]


def ip_text(raw: bytes) -> str:
    """4 or 16 address bytes as text (``10.0.0.1``, ``::1``); other lengths as hex."""
    if len(raw) == IPV4_LEN:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == IPV6_LEN:
        return unmapped(socket.inet_ntop(socket.AF_INET6, raw))
    return bytes(raw).hex()
