"""The offset message id: where a stored message lives, as RocketMQ spells it.

Hex of the store host's IP (4 or 16 bytes), its port (int32) and the record's physical offset in
the commit log (int64), upper case: what a send reply carries as ``msgId`` and what
VIEW_MESSAGE_BY_ID and the admin tools take back (RocketMQ's MessageDecoder.createMessageId and
decodeMessageId).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from runtime.errors import AddressError
from runtime.hostport import ip_text

_PORT_OFFSET = struct.Struct(">iq")


def offset_msg_id(store_ip: bytes, store_port: int, physical_offset: int) -> str:
    """RocketMQ's offset message id (MessageDecoder.createMessageId): hex of store ip (4 or 16
    bytes) + port(int32) + physical offset(int64): 32 or 56 hex digits, upper case."""
    return (bytes(store_ip) + _PORT_OFFSET.pack(store_port, physical_offset)).hex().upper()


class OffsetMsgId(NamedTuple):
    ip: str
    port: int
    physical_offset: int


def decode_offset_msg_id(msg_id: str) -> OffsetMsgId:
    """Inverse of ``offset_msg_id`` (32 hex digits: IPv4 store host, 56: IPv6, as RocketMQ's
    MessageDecoder.decodeMessageId); ``AddressError`` for anything else."""
    if not isinstance(msg_id, str) or len(msg_id) not in (32, 56):
        size = len(msg_id) if isinstance(msg_id, str) else 0
        raise AddressError(str(msg_id), f"is no offset message id (32 or 56 hex digits: {size})")
    try:
        raw = bytes.fromhex(msg_id)
    except ValueError:
        raise AddressError(msg_id, "is no offset message id (not hex)") from None
    ip_len = len(raw) - 12
    port, offset = _PORT_OFFSET.unpack_from(raw, ip_len)
    return OffsetMsgId(ip_text(raw[:ip_len]), port, offset)
