"""The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer's header naming the client.

A TCP load balancer in front of a broker, a name server or a proxy makes every connection come
from its own address; with the PROXY protocol on, it first writes one header naming the client's
address. RocketMQ reads it on its remoting and gRPC ports (it then sees the client's address in
its ACL whitelists, connection lists and born hosts); actormq does where the listener is told to
(``enableProxyProtocol`` for a name server or a broker, ``--proxy-protocol`` for a proxy), since
trusting it lets any client that reaches the port directly claim any address.

``read_header(sock, timeout)`` reads the header off a just-accepted connection, if there is one,
and leaves the stream right after it. A connection without one is taken as it is (a health check
or a client inside the network). Specification: haproxy.org/download/2.9/doc/proxy-protocol.txt.

- v1, text: ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` (at most 107 bytes), or
  ``PROXY UNKNOWN ...\\r\\n`` (no address: the connection's own is kept);
- v2, binary: a 12-byte signature, version/command, family/transport, a 16-bit length, the
  addresses, then TLVs (ignored). ``LOCAL`` (the balancer's own health check) and the families
  without an IP address keep the connection's own.

A header that cannot be read raises ``ProtocolError`` (the caller closes the connection).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from typing import Any

from runtime.errors import ProtocolError

V1_PREFIX = b"PROXY "
V1_MAX = 107
"""The longest v1 header, its CRLF included."""
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16
V2_MAX_LENGTH = 4096
"""The most bytes of addresses and TLVs taken after the fixed part (the format allows 65,535;
balancers send tens: addresses and a few TLVs)."""

_V2_COMMAND_LOCAL = 0x20
_V2_COMMAND_PROXY = 0x21
_V2_INET = 0x1
_V2_INET6 = 0x2


class Absent:
    """No header: ``prefix`` holds the bytes read while looking (empty unless the stream
    began like one: the caller must treat them as the stream's first bytes)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes = b"") -> None:
        self.prefix = prefix


Source = tuple[str, int] | None
"""The client's address from a header; None when it names none (LOCAL, UNKNOWN, AF_UNIX)."""


def read_header(sock: Any, timeout: float) -> Source | Absent:
    """The header at the start of ``sock``'s stream: the client's address, None (a header
    naming none), or ``Absent`` (the stream does not begin with a header, or ended before a
    byte: a balancer's TCP health check). Reads only the header's own bytes (one at a time
    while telling it from other bytes: a connection's first bytes, once), all of them within
    ``timeout`` seconds. ``ProtocolError`` for a malformed header, ``OSError`` (a timeout
    included) when the stream ends or stalls within it."""
    reader = _Reader(sock, time.monotonic() + timeout)
    try:
        first = reader.recv(1, socket.MSG_PEEK)
        if not first:
            return Absent()  # (the caller reads the end of the stream itself)
        if first[0] == V1_PREFIX[0]:
            prefix = reader.while_matching(V1_PREFIX)
            if len(prefix) < len(V1_PREFIX):
                return Absent(prefix)
            return parse_v1(prefix + reader.line())
        if first[0] == V2_SIGNATURE[0]:
            prefix = reader.while_matching(V2_SIGNATURE)
            if len(prefix) < len(V2_SIGNATURE):
                return Absent(prefix)
            fixed = prefix + reader.exactly(V2_FIXED - len(V2_SIGNATURE))
            length = struct.unpack_from(">H", fixed, 14)[0]
            if length > V2_MAX_LENGTH:
                raise ProtocolError(f"PROXY v2 header of {length} bytes (> {V2_MAX_LENGTH})")
            return parse_v2(fixed, reader.exactly(length))
        return Absent()
    finally:
        sock.settimeout(None)


def parse_v1(line: bytes) -> Source:
    """The source of a whole v1 header, CRLF included."""
    if not line.startswith(V1_PREFIX) or not line.endswith(b"\r\n"):
        raise ProtocolError("PROXY v1 header not of the form 'PROXY ...\\r\\n'")
    try:
        fields = line[len(V1_PREFIX) : -2].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProtocolError("PROXY v1 header is not ASCII") from None
    if fields[0] == "UNKNOWN":
        return None
    if fields[0] not in ("TCP4", "TCP6") or len(fields) != 5:
        raise ProtocolError(f"PROXY v1 header {_shown(line)}: want TCP4|TCP6 and 4 fields")
    version = 4 if fields[0] == "TCP4" else 6
    host = _address(fields[1], version, line)
    _address(fields[2], version, line)
    return host, _port(fields[3], line)


def parse_v2(fixed: bytes, rest: bytes) -> Source:
    """The source of a v2 header: its 16 fixed bytes and the ``length`` bytes after them."""
    if len(fixed) != V2_FIXED or not fixed.startswith(V2_SIGNATURE):
        raise ProtocolError("PROXY v2 header without its signature")
    command, family = fixed[12], fixed[13] >> 4
    if command == _V2_COMMAND_LOCAL:
        return None
    if command != _V2_COMMAND_PROXY:
        raise ProtocolError(f"PROXY v2 version/command byte 0x{command:02x} (want 0x20 or 0x21)")
    if family == _V2_INET:
        if len(rest) < 12:
            raise ProtocolError(f"PROXY v2 IPv4 addresses in {len(rest)} bytes (want 12)")
        host = str(ipaddress.IPv4Address(rest[:4]))
        return host, struct.unpack_from(">H", rest, 8)[0]
    if family == _V2_INET6:
        if len(rest) < 36:
            raise ProtocolError(f"PROXY v2 IPv6 addresses in {len(rest)} bytes (want 36)")
        address = ipaddress.IPv6Address(rest[:16])
        mapped = address.ipv4_mapped
        host = str(mapped) if mapped is not None else str(address)
        return host, struct.unpack_from(">H", rest, 32)[0]
    return None  # AF_UNSPEC, AF_UNIX: no IP address to name


class _Reader:
    """A socket's bytes, each ``recv`` given what is left of one deadline (a client sending a
    byte now and then cannot hold the connection's reader past it)."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def recv(self, n: int, flags: int = 0) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no whole PROXY protocol header in time")
        self.sock.settimeout(left)
        return bytes(self.sock.recv(n, flags))

    def exactly(self, n: int) -> bytes:
        got = bytearray()
        while len(got) < n:
            chunk = self.recv(n - len(got))
            if not chunk:
                raise ProtocolError("connection closed inside a PROXY protocol header")
            got += chunk
        return bytes(got)

    def while_matching(self, expected: bytes) -> bytes:
        """Bytes read one at a time while they match ``expected`` (the first is known to);
        stops at the first that does not, which is kept in the result."""
        got = bytearray()
        while len(got) < len(expected):
            byte = self.exactly(1)
            got += byte
            if byte[0] != expected[len(got) - 1]:
                break
        return bytes(got)

    def line(self) -> bytes:
        """The rest of a v1 header, through its CRLF."""
        got = bytearray()
        while not got.endswith(b"\r\n"):
            if len(got) + len(V1_PREFIX) >= V1_MAX:
                raise ProtocolError(f"PROXY v1 header longer than {V1_MAX} bytes")
            got += self.exactly(1)
        return bytes(got)


def _address(text: str, version: int, line: bytes) -> str:
    """An address field of a v1 header (IPv4-mapped IPv6 as IPv4, as in v2)."""
    try:
        if "%" in text:  # (a scope id: no client address has one)
            raise ValueError(text)
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProtocolError(f"PROXY v1 header {_shown(line)}: bad address {text!r}") from None
    if address.version != version:
        raise ProtocolError(f"PROXY v1 header {_shown(line)}: {text!r} is not IPv{version}")
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(address)


def _port(text: str, line: bytes) -> int:
    if not text.isdigit() or int(text) > 65535 or (len(text) > 1 and text[0] == "0"):
        raise ProtocolError(f"PROXY v1 header {_shown(line)}: bad port {text!r}")
    return int(text)


def _shown(line: bytes) -> str:
    return repr(line[:V1_MAX].decode("ascii", "replace").rstrip("\r\n"))
