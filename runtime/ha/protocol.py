"""The HA port's wire protocol: brokers of one group talk to each other (not RocketMQ-compatible
on purpose; see docs/ha-design.md).

All integers big-endian. Slave -> master:

- once, ``HELLO``: magic ``AMQH``, int32 version 3, int64 node id, int64 commit-log segment
  size, int32 n, n x (int64 epoch, int64 start offset, int64 node id of the epoch's master),
  int64 max offset (the slave's commit-log write offset), int16 n, n bytes UTF-8: the slave's
  broker group (``brokerName``; version 1, sent by older slaves, ends at the max offset and
  names no group; version 2 is laid out as 3 but its slave takes no ``CONFIRM``);
- once, after a ``CHALLENGE``: ``PROOF``, 32 bytes: HMAC-SHA256(the inner account's secret
  key, ``PROOF_CONTEXT`` + the challenge's nonce);
- then ``REPORT`` frames: int64 max offset (after every append and every heartbeat interval);
- only in answer to a ``FETCH``, before any REPORT: ``TAIL`` frames, int64 -1 (a REPORT is
  never negative), int64 offset, int32 size, size bytes of the slave's raw commit log (whole
  records, at most one segment); size 0 ends the tail.

Master -> slave, every frame starts with an int8 type:

- 1 ``ACCEPT``: int64 start offset, int64 epoch, int32 n, n x (epoch, start, node) — the
  master's epoch entries, which the slave mirrors;
- 2 ``TRUNCATE``: int64 offset — cut the log there, restart the store, say HELLO again;
- 3 ``REFUSED``: int8 reason (1 fenced: not the master any more; 2 segment size differs; 3 the
  master no longer holds that offset; 4 not ready: no lease yet; 5 diverged: the slave's end is
  not a record boundary of the master's log, which epochs cannot explain; 6 unauthenticated;
  7 another group: the HELLO names another ``brokerName``), int16 n, n bytes UTF-8 text;
- 4 ``DATA``: int64 offset, int32 size, size bytes of raw commit log (whole records, at most
  one segment; size 0 is a heartbeat);
- 5 ``CHALLENGE``: 16 bytes of nonce, first of all, from a master with an inner account
  (``innerClientAuthenticationCredentials``): it answers the HELLO only after a matching
  ``PROOF`` (REFUSED 6 unauthenticated otherwise);
- 6 ``FETCH``: int64 offset — a classic master back from a power loss asks a slave that holds
  more of its term to send its log from there (``TAIL`` frames), before it serves writes;
- 7 ``CONFIRM``: int64 offset — how far the master's consumers may read its log (its reput
  offset: under SYNC_MASTER and in controller mode, what its in-sync slaves hold). Sent only
  to a version 3 slave: right after the ACCEPT, then whenever it grows. The slave shows its
  consumers no record past it (RocketMQ 5's confirm offset).

Decoders are incremental (bytes arrive in arbitrary TCP chunks), bound every length before
buffering (a declared size above the limit fails at once) and raise only ``ProtocolError``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct

import msgspec

from runtime.errors import ProtocolError

MAGIC = b"AMQH"
VERSION = 3
"""Sent; versions 1 (no group in the HELLO) and 2 (no ``CONFIRM`` frames) are still read."""
CONFIRMING = 3
"""The first HELLO version whose slave takes ``CONFIRM`` frames."""
MAX_GROUP = 255
"""Longest group name in a HELLO, in bytes (RocketMQ's names are shorter)."""
MAX_EPOCHS = 65_536
"""Epoch entries in one HELLO or ACCEPT (a group that failed over this often is broken)."""
MAX_DATA = 8 * 1024 * 1024
"""Largest DATA payload: one record may be up to the 4 MiB body limit plus its header."""
MAX_TEXT = 4096

_I8 = struct.Struct(">b")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_HELLO_HEAD = struct.Struct(">4siqqi")  # magic, version, node, segment size, n
_ENTRY = struct.Struct(">qqq")
_ACCEPT_HEAD = struct.Struct(">bqqi")
_DATA_HEAD = struct.Struct(">bqi")
_REFUSED_HEAD = struct.Struct(">bbh")
_TAIL_HEAD = struct.Struct(">qqi")  # -1, offset, size

DATA = 4
CHALLENGE = 5
FETCH = 6
CONFIRM = 7
TAIL_MARK = -1
NONCE_SIZE = 16
PROOF_SIZE = 32
PROOF_CONTEXT = b"actormq HA proof v1\0"


class RefuseReason(enum.IntEnum):
    FENCED = 1
    SEGMENT_SIZE = 2
    OFFSET_GONE = 3
    NOT_READY = 4
    DIVERGED = 5
    UNAUTHENTICATED = 6
    OTHER_GROUP = 7


class Epoch(msgspec.Struct, frozen=True, array_like=True):
    """One epoch entry: ``epoch`` began at commit-log offset ``start`` under master ``node``."""

    epoch: int
    start: int
    node: int = -1


class Hello(msgspec.Struct, frozen=True, tag=True):
    node: int
    segment_size: int
    epochs: tuple[Epoch, ...]
    max_offset: int
    group: str = ""
    """The slave's ``brokerName`` ("": a version 1 HELLO, which names none)."""
    version: int = VERSION
    """The HELLO's version (``CONFIRMING`` and later: the slave takes ``CONFIRM`` frames)."""


class Report(msgspec.Struct, frozen=True, tag=True):
    max_offset: int


class Accept(msgspec.Struct, frozen=True, tag=True):
    offset: int
    epoch: int
    epochs: tuple[Epoch, ...]


class Truncate(msgspec.Struct, frozen=True, tag=True):
    offset: int


class Refused(msgspec.Struct, frozen=True, tag=True):
    reason: RefuseReason
    text: str


class Data(msgspec.Struct, frozen=True, tag=True):
    offset: int
    data: bytes


class Challenge(msgspec.Struct, frozen=True, tag=True):
    nonce: bytes


class Proof(msgspec.Struct, frozen=True, tag=True):
    mac: bytes


class Fetch(msgspec.Struct, frozen=True, tag=True):
    offset: int


class Confirm(msgspec.Struct, frozen=True, tag=True):
    """How far the master's consumers may read its log: the slave shows no more."""

    offset: int


class Tail(msgspec.Struct, frozen=True, tag=True):
    """Part of a slave's log sent back to its master (empty ``data``: the tail ends)."""

    offset: int
    data: bytes


MasterFrame = Accept | Truncate | Refused | Data | Challenge | Fetch | Confirm
SlaveFrame = Hello | Proof | Report | Tail


def proof_of(secret_key: str, nonce: bytes) -> bytes:
    """The PROOF answering a CHALLENGE of ``nonce``: HMAC-SHA256 under ``secret_key``."""
    return hmac.new(secret_key.encode(), PROOF_CONTEXT + nonce, hashlib.sha256).digest()


def proof_matches(secret_key: str, nonce: bytes, mac: bytes) -> bool:
    """``mac`` is the PROOF for ``nonce`` (compared in constant time)."""
    return hmac.compare_digest(mac, proof_of(secret_key, nonce))


# -- encoding ------------------------------------------------------------------------------------


def _entries(epochs: tuple[Epoch, ...]) -> bytes:
    return b"".join(_ENTRY.pack(e.epoch, e.start, e.node) for e in epochs)


def encode_hello(h: Hello) -> bytes:
    if h.version not in (2, VERSION):
        raise ProtocolError(f"HELLO version {h.version} cannot be sent (2 or {VERSION})")
    head = _HELLO_HEAD.pack(MAGIC, h.version, h.node, h.segment_size, len(h.epochs))
    group = h.group.encode()
    if len(group) > MAX_GROUP:
        raise ProtocolError(f"group name of {len(group)} bytes (at most {MAX_GROUP})")
    tail = _I64.pack(h.max_offset) + _U16.pack(len(group)) + group
    return head + _entries(h.epochs) + tail


def encode_report(max_offset: int) -> bytes:
    return _I64.pack(max_offset)


def encode_accept(a: Accept) -> bytes:
    return _ACCEPT_HEAD.pack(1, a.offset, a.epoch, len(a.epochs)) + _entries(a.epochs)


def encode_truncate(offset: int) -> bytes:
    return _I8.pack(2) + _I64.pack(offset)


def encode_refused(reason: RefuseReason, text: str) -> bytes:
    raw = text.encode()[:MAX_TEXT]
    return _REFUSED_HEAD.pack(3, int(reason), len(raw)) + raw


def encode_challenge(nonce: bytes) -> bytes:
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"a nonce is {NONCE_SIZE} bytes")
    return _I8.pack(CHALLENGE) + nonce


def encode_fetch(offset: int) -> bytes:
    return _I8.pack(FETCH) + _I64.pack(offset)


def encode_confirm(offset: int) -> bytes:
    return _I8.pack(CONFIRM) + _I64.pack(offset)


def tail_header(offset: int, size: int) -> bytes:
    """The header of a TAIL frame; the payload follows (size 0: the tail ends)."""
    return _TAIL_HEAD.pack(TAIL_MARK, offset, size)


def encode_tail(offset: int, data: bytes) -> bytes:
    return tail_header(offset, len(data)) + data


def data_header(offset: int, size: int) -> bytes:
    """The header of a DATA frame; the payload follows (sent separately: no copy)."""
    return _DATA_HEAD.pack(DATA, offset, size)


def encode_data(offset: int, data: bytes) -> bytes:
    return data_header(offset, len(data)) + data


# -- decoding ------------------------------------------------------------------------------------


class _Buffer:
    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0

    def feed(self, data: bytes) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data

    def available(self) -> int:
        return len(self.buf) - self.pos


def _offset(value: int, what: str) -> int:
    if value < 0:
        raise ProtocolError(f"negative {what}: {value}")
    return value


def _parse_entries(buf: bytearray, pos: int, n: int) -> tuple[Epoch, ...]:
    out = []
    last = None
    for i in range(n):
        epoch, start, node = _ENTRY.unpack_from(buf, pos + i * _ENTRY.size)
        if epoch < 0 or start < 0:
            raise ProtocolError(f"epoch entry {i} has a negative field")
        if last is not None and (epoch <= last.epoch or start < last.start):
            raise ProtocolError(f"epoch entries out of order at {i}")
        last = Epoch(epoch, start, node)
        out.append(last)
    return tuple(out)


def _count(n: int) -> int:
    if n < 0 or n > MAX_EPOCHS:
        raise ProtocolError(f"epoch count {n} out of range [0, {MAX_EPOCHS}]")
    return n


class SlaveStreamDecoder:
    """The master's view of a slave's stream: one HELLO, then (``proof``: the master sent a
    CHALLENGE) one PROOF, then REPORTs (and TAILs, which only a FETCH asks for)."""

    def __init__(self, proof: bool = False, max_data: int = MAX_DATA) -> None:
        self._b = _Buffer()
        self._hello_seen = False
        self._proof_due = proof
        self.max_data = max_data

    def feed(self, data: bytes) -> list[SlaveFrame]:
        b = self._b
        b.feed(data)
        out: list[SlaveFrame] = []
        while True:
            if not self._hello_seen:
                hello = self._hello()
                if hello is None:
                    return out
                self._hello_seen = True
                out.append(hello)
                continue
            if self._proof_due:
                if b.available() < PROOF_SIZE:
                    return out
                out.append(Proof(bytes(b.buf[b.pos : b.pos + PROOF_SIZE])))
                b.pos += PROOF_SIZE
                self._proof_due = False
                continue
            if b.available() < 8:
                return out
            (offset,) = _I64.unpack_from(b.buf, b.pos)
            if offset == TAIL_MARK:
                tail = self._tail()
                if tail is None:
                    return out
                out.append(tail)
                continue
            b.pos += 8
            out.append(Report(_offset(offset, "reported offset")))

    def _tail(self) -> Tail | None:
        b = self._b
        if b.available() < _TAIL_HEAD.size:
            return None
        _mark, offset, size = _TAIL_HEAD.unpack_from(b.buf, b.pos)
        _offset(offset, "tail offset")
        if size < 0 or size > self.max_data:
            raise ProtocolError(f"tail frame of {size} bytes out of range [0, {self.max_data}]")
        total = _TAIL_HEAD.size + size
        if b.available() < total:
            return None
        data = bytes(b.buf[b.pos + _TAIL_HEAD.size : b.pos + total])
        b.pos += total
        return Tail(offset, data)

    def _hello(self) -> Hello | None:
        b = self._b
        if b.available() < _HELLO_HEAD.size:
            if b.available() >= 4 and bytes(b.buf[b.pos : b.pos + 4]) != MAGIC:
                raise ProtocolError("not an HA HELLO (bad magic)")
            return None
        magic, version, node, seg, n = _HELLO_HEAD.unpack_from(b.buf, b.pos)
        if magic != MAGIC:
            raise ProtocolError("not an HA HELLO (bad magic)")
        if version not in (1, 2, VERSION):
            raise ProtocolError(f"HA protocol version {version} is not supported (want {VERSION})")
        if seg <= 0:
            raise ProtocolError(f"segment size {seg} is not positive")
        n = _count(n)
        start = b.pos + _HELLO_HEAD.size
        end = start + n * _ENTRY.size + 8  # (the max offset's end)
        need = end if version == 1 else end + _U16.size
        if b.available() < need - b.pos:
            return None
        group = ""
        if version > 1:
            (size,) = _U16.unpack_from(b.buf, end)
            if not 0 <= size <= MAX_GROUP:
                raise ProtocolError(f"group name of {size} bytes (at most {MAX_GROUP})")
            need += size
            if b.available() < need - b.pos:
                return None
            try:
                group = bytes(b.buf[end + _U16.size : need]).decode()
            except UnicodeDecodeError:
                raise ProtocolError("group name is not UTF-8") from None
        epochs = _parse_entries(b.buf, start, n)
        (max_offset,) = _I64.unpack_from(b.buf, end - 8)
        b.pos = need
        return Hello(node, seg, epochs, _offset(max_offset, "max offset"), group, version)


class MasterStreamDecoder:
    """The slave's view of its master's stream: ACCEPT / TRUNCATE / REFUSED / FETCH, then
    DATA and CONFIRM."""

    def __init__(self, max_data: int = MAX_DATA) -> None:
        self._b = _Buffer()
        self.max_data = max_data

    def feed(self, data: bytes) -> list[MasterFrame]:
        b = self._b
        b.feed(data)
        out: list[MasterFrame] = []
        while b.available():
            frame = self._frame(b.buf, b.pos, b.available())
            if frame is None:
                break
            msg, size = frame
            b.pos += size
            out.append(msg)
        return out

    def _frame(self, buf: bytearray, pos: int, avail: int) -> tuple[MasterFrame, int] | None:
        kind = buf[pos]
        if kind == DATA:
            if avail < _DATA_HEAD.size:
                return None
            _k, offset, size = _DATA_HEAD.unpack_from(buf, pos)
            _offset(offset, "data offset")
            if size < 0 or size > self.max_data:
                raise ProtocolError(f"data frame of {size} bytes out of range [0, {self.max_data}]")
            total = _DATA_HEAD.size + size
            if avail < total:
                return None
            return Data(offset, bytes(buf[pos + _DATA_HEAD.size : pos + total])), total
        if kind == 1:
            if avail < _ACCEPT_HEAD.size:
                return None
            _k, offset, epoch, n = _ACCEPT_HEAD.unpack_from(buf, pos)
            n = _count(n)
            total = _ACCEPT_HEAD.size + n * _ENTRY.size
            if avail < total:
                return None
            epochs = _parse_entries(buf, pos + _ACCEPT_HEAD.size, n)
            return Accept(_offset(offset, "accept offset"), _offset(epoch, "epoch"), epochs), total
        if kind == FETCH:
            if avail < 9:
                return None
            (offset,) = _I64.unpack_from(buf, pos + 1)
            return Fetch(_offset(offset, "fetch offset")), 9
        if kind == CONFIRM:
            if avail < 9:
                return None
            (offset,) = _I64.unpack_from(buf, pos + 1)
            return Confirm(_offset(offset, "confirm offset")), 9
        if kind == CHALLENGE:
            if avail < 1 + NONCE_SIZE:
                return None
            return Challenge(bytes(buf[pos + 1 : pos + 1 + NONCE_SIZE])), 1 + NONCE_SIZE
        if kind == 2:
            if avail < 9:
                return None
            (offset,) = _I64.unpack_from(buf, pos + 1)
            return Truncate(_offset(offset, "truncate offset")), 9
        if kind == 3:
            if avail < _REFUSED_HEAD.size:
                return None
            _k, reason, n = _REFUSED_HEAD.unpack_from(buf, pos)
            try:
                why = RefuseReason(reason)
            except ValueError:
                raise ProtocolError(f"unknown refusal reason {reason}") from None
            if n < 0 or n > MAX_TEXT:
                raise ProtocolError(f"refusal text of {n} bytes out of range")
            total = _REFUSED_HEAD.size + n
            if avail < total:
                return None
            raw = bytes(buf[pos + _REFUSED_HEAD.size : pos + total])
            return Refused(why, raw.decode("utf-8", errors="replace")), total
        raise ProtocolError(f"unknown HA frame type {kind}")
