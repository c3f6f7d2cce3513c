"""What a connection to the proxy's front begins with, read a piece at a time.

``FirstBytes`` owns one connection's opening: the bytes read so far and what they say. The
front's relay thread (``actors.proxy.openings``) reads a non-blocking socket as bytes come and
feeds them here, so a connection that is still opening costs no thread: it asks ``want()``
how many to read next, and ``feed()``s what came (b"": the stream ended). Once ``done``:

- ``source``: the client a PROXY protocol header named (``proxy_protocol`` only; None: none,
  or one naming no address: the connection's own is kept);
- ``message``: every byte after the header (the header's are not relayed: grpcio would not
  read them): the first message whole (the HTTP/2 preface's 24 bytes, or the first TLS record,
  at most ``TLS_RECORD_MAX`` of it), or what came before the stream ended (b"": it ended
  before a byte, a health check).

The rules are ``runtime.proxy_protocol.read_header``'s and the blocking ``first_message``'s
that did this in a thread per connection: the header is looked for only when its first byte
can begin one (``P`` of v1, ``\\r`` of v2's signature), bytes that stop matching a header are
the message's, and a malformed header, or a stream ending inside one, raises
``ProtocolError``: at once when the bytes so far can begin no header ``parse_v1`` or
``parse_v2`` would take (a v1 protocol field other than TCP4, TCP6 or UNKNOWN, a byte that is
not ASCII; a v2 command other than LOCAL or PROXY), not once the caps or the deadline are
reached. Likewise the opening is done at once when its bytes can begin no HTTP/2 preface nor
TLS record (the caller turns it away). The message phase reads no byte past its first
message; the header phase may read a few past the header (at most ``V1_MAX`` in all for v1),
which are the message's first. Nothing here touches a socket, a clock or gevent.
"""

from __future__ import annotations

import struct

from runtime import proxy_protocol
from runtime.errors import ProtocolError
from runtime.proxy_protocol import V1_MAX, V1_PREFIX, V2_FIXED, V2_MAX_LENGTH, V2_SIGNATURE
from runtime.tls import TLS_RECORD_HANDSHAKE

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The HTTP/2 client preface: a plain gRPC client's first message."""
TLS_RECORD_MAX = 16 * 1024 + 2048
"""The most of a first TLS record read before the connection is relayed."""
_TLS_HEADER = 5
_V1_PROTOCOLS = (b"TCP4", b"TCP6", b"UNKNOWN")
"""A v1 header's protocol field (``runtime.proxy_protocol.parse_v1``'s)."""
_V2_COMMAND = 12
_V2_COMMANDS = (0x20, 0x21)
"""A v2 header's version/command byte (its offset, LOCAL and PROXY: ``parse_v2``'s)."""


class FirstBytes:
    """One connection's opening: a PROXY header first (``proxy_protocol``), then the first
    message. ``want()`` / ``feed()`` until ``done``; then ``source`` and ``message``."""

    __slots__ = ("_header", "data", "done", "ended", "message", "source")

    def __init__(self, proxy_protocol: bool) -> None:
        self._header = proxy_protocol
        """Still looking for (or reading) a PROXY header."""
        self.data = bytearray()
        """The bytes of the current phase (the header's, then the message's)."""
        self.done = False
        self.ended = False
        """The stream ended before the message was whole."""
        self.source: proxy_protocol.Source = None
        self.message = b""

    def want(self) -> int:
        """How many bytes to read next (at least 1 while not ``done``)."""
        return max(1, self._header_want() if self._header else self._message_want())

    def feed(self, chunk: bytes) -> bool:
        """Take the bytes read (b"": the stream ended); True once ``done``. ``ProtocolError``:
        a malformed PROXY header, or the stream ended inside one."""
        if self.done:
            raise ValueError("the opening is done")
        if not chunk:
            return self._end()
        self.data += chunk
        if self._header:
            self._read_header()
        if not self._header and self._message_want() <= 0:
            self._finish()
        return self.done

    def is_preface(self) -> bool:
        """The message is (begins with) the HTTP/2 preface."""
        return self.message[: len(PREFACE)] == PREFACE and len(self.message) >= len(PREFACE)

    def begins_tls(self) -> bool | None:
        """Whether the first message begins (or will) like a TLS handshake record, once its
        first byte is in (None: not yet, or still in a PROXY header)."""
        message = self.message if self.done else b"" if self._header else self.data
        return message[0] == TLS_RECORD_HANDSHAKE if message else None

    def is_tls(self) -> bool:
        """The message begins like a TLS handshake record."""
        return bool(self.message) and self.message[0] == TLS_RECORD_HANDSHAKE

    def _end(self) -> bool:
        if self._header and self.data:
            raise ProtocolError("connection closed inside a PROXY protocol header")
        self.ended = True
        self._finish()
        return True

    def _finish(self) -> None:
        self.message = bytes(self.data)
        self.data = bytearray()
        self.done = True

    def _header_want(self) -> int:
        data = self.data
        if not data:
            return len(V1_PREFIX)  # (every first message and header is at least that long)
        if data[0] == V1_PREFIX[0]:
            return V1_MAX - len(data)
        return V2_FIXED + self._v2_length() - len(data)

    def _v2_length(self) -> int:
        if len(self.data) < V2_FIXED:
            return 0
        return int(struct.unpack_from(">H", self.data, 14)[0])

    def _read_header(self) -> None:
        """A whole header parsed (the bytes after it the message's), no header (all bytes the
        message's), or more wanted."""
        data = self.data
        if data[0] == V1_PREFIX[0]:
            expected = V1_PREFIX
        elif data[0] == V2_SIGNATURE[0]:
            expected = V2_SIGNATURE
        else:
            self._header = False  # (no header: the message's first bytes)
            return
        seen = bytes(data[: len(expected)])
        if not expected.startswith(seen):
            self._header = False  # (began like one, and then not)
            return
        if len(seen) < len(expected):
            return
        if expected is V1_PREFIX:
            self._read_v1()
        else:
            self._read_v2()

    def _read_v1(self) -> None:
        end = self.data.find(b"\r\n", len(V1_PREFIX))
        line = bytes(self.data[: end if end >= 0 else len(self.data)])
        # (what can begin no header is refused at once, not once V1_MAX bytes or the deadline
        # came: a protocol field other than parse_v1's, or a byte that is not ASCII)
        protocol = line[len(V1_PREFIX) :].split(b" ", 1)[0].split(b"\r", 1)[0]
        if not any(known.startswith(protocol) for known in _V1_PROTOCOLS):
            raise ProtocolError(f"PROXY v1 header of protocol {protocol[:8]!r}")
        if not line.isascii():
            raise ProtocolError("PROXY v1 header is not ASCII")
        if end < 0 or end + 2 > V1_MAX:
            if len(self.data) >= V1_MAX:
                raise ProtocolError(f"PROXY v1 header longer than {V1_MAX} bytes")
            return
        self._header_read(end + 2, proxy_protocol.parse_v1(bytes(self.data[: end + 2])))

    def _read_v2(self) -> None:
        if len(self.data) > _V2_COMMAND and self.data[_V2_COMMAND] not in _V2_COMMANDS:
            raise ProtocolError(  # (at once: no need to wait for a length and addresses)
                f"PROXY v2 version/command byte 0x{self.data[_V2_COMMAND]:02x} (want 0x20 or 0x21)"
            )
        if len(self.data) < V2_FIXED:
            return
        length = self._v2_length()
        if length > V2_MAX_LENGTH:
            raise ProtocolError(f"PROXY v2 header of {length} bytes (> {V2_MAX_LENGTH})")
        if len(self.data) < V2_FIXED + length:
            return
        fixed = bytes(self.data[:V2_FIXED])
        rest = bytes(self.data[V2_FIXED : V2_FIXED + length])
        self._header_read(V2_FIXED + length, proxy_protocol.parse_v2(fixed, rest))

    def _header_read(self, size: int, source: proxy_protocol.Source) -> None:
        self.source = source
        del self.data[:size]
        self._header = False

    def _message_want(self) -> int:
        """Bytes the first message still lacks (0 or less: whole)."""
        data = self.data
        if not data:
            return 1
        if data[0] != TLS_RECORD_HANDSHAKE:
            if not PREFACE.startswith(bytes(data[: len(PREFACE)])):
                return 0  # (it can be no preface: refused at once, not at the deadline)
            return len(PREFACE) - len(data)
        if len(data) < _TLS_HEADER:
            return _TLS_HEADER - len(data)
        length = int.from_bytes(data[3:5], "big")
        return _TLS_HEADER + min(length, TLS_RECORD_MAX) - len(data)
