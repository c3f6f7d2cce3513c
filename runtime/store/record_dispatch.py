"""What a stored record contributes to its consume queue and the key index.

The store reads five properties of each record (TAGS, KEYS, UNIQ_KEY, DELAY, WAIT) in one regex
pass (``scan_properties``; ``_PROP_RE`` is also what the writer's encoders match): the tag code
(``tags_code_of``: the TAGS hash, or the delivery time of a scheduled message), the index keys
(``index_keys``) and whether the producer waits for the flush. ``DispatchEntry`` is one record's
contribution, ``dispatch_entry_at`` reads it back from a record's bytes (reput from disk).
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from runtime.remoting import properties as P
from runtime.store.record import (
    TRANSACTION_MASK,
    TRANSACTION_PREPARED_TYPE,
    TRANSACTION_ROLLBACK_TYPE,
    java_hash,
    layout,
)
from runtime.store.record_properties import (
    DEFAULT_DELAY_LEVELS,
    KEY_SEPARATOR,
    PROPERTY_DELAY,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
)
from runtime.store.topic_names import SCHEDULE_TOPIC

_H = struct.Struct(">h")


class DispatchEntry(NamedTuple):
    """What one stored record contributes to its consume queue and the key index."""

    topic: str
    queue_id: int
    queue_offset: int
    physical_offset: int
    size: int
    tags_code: int
    store_timestamp: int
    sys_flag: int
    keys: tuple[str, ...]  # index keys: UNIQ_KEY then each of KEYS (without the topic prefix)

    @property
    def takes_queue_offset(self) -> bool:
        return takes_queue_offset(self.sys_flag)


def takes_queue_offset(sys_flag: int) -> bool:
    """Prepared and rolled-back transaction records get no queue offset and no queue entry."""
    tran = sys_flag & TRANSACTION_MASK
    return tran != TRANSACTION_PREPARED_TYPE and tran != TRANSACTION_ROLLBACK_TYPE


_PROP_RE = re.compile(
    "(?:^|\x02)(" + "|".join((P.TAGS, P.KEYS, P.UNIQ_KEY, P.DELAY, P.WAIT)) + ")\x01([^\x02]*)"
)


def scan_properties(properties: str) -> tuple[str | None, str | None, str | None, str | None, bool]:
    """(TAGS, KEYS, UNIQ_KEY, DELAY, wait-store-ok) from a property string, in one regex pass."""
    tags = keys = uniq = delay = None
    wait = True
    if properties:
        for name, value in _PROP_RE.findall(properties):
            if name == PROPERTY_TAGS:
                tags = value
            elif name == PROPERTY_UNIQ_KEY:
                uniq = value
            elif name == PROPERTY_KEYS:
                keys = value
            elif name == PROPERTY_DELAY:
                delay = value
            else:
                wait = value != "false"
    return tags, keys, uniq, delay, wait


def index_keys(sys_flag: int, keys: str | None, uniq: str | None) -> tuple[str, ...]:
    """The keys a record is indexed under: UNIQ_KEY, then each of KEYS (none for rollbacks)."""
    if (sys_flag & TRANSACTION_MASK) == TRANSACTION_ROLLBACK_TYPE:
        return ()
    out: tuple[str, ...] = (uniq,) if uniq else ()
    if keys:
        out += tuple(k for k in keys.split(KEY_SEPARATOR) if k)
    return out


def tags_code_of(
    topic: str, tags: str | None, delay: str | None, store_timestamp: int, levels: tuple[int, ...]
) -> int:
    """The consume-queue tag code: the TAGS hash, or the delivery time for scheduled messages."""
    if delay is not None and topic == SCHEDULE_TOPIC and levels:
        try:
            level = min(int(delay), len(levels))
        except ValueError:
            level = 0
        if level > 0:
            return store_timestamp + levels[level - 1]
    return java_hash(tags) if tags else 0


def dispatch_fields(
    topic: str,
    properties: str,
    sys_flag: int,
    store_timestamp: int,
    delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
) -> tuple[int, tuple[str, ...], bool]:
    """(tags code, index keys, wait-store-ok) read from a property string."""
    tags, keys, uniq, delay, wait = scan_properties(properties)
    code = tags_code_of(topic, tags, delay, store_timestamp, delay_levels)
    return code, index_keys(sys_flag, keys, uniq), wait


# queueId, queueOffset, physicalOffset, sysFlag
_DISPATCH_HEAD = struct.Struct(">12xi4xqqi")
assert _DISPATCH_HEAD.size == 40
_Q = struct.Struct(">q")
_I = struct.Struct(">i")


def dispatch_entry_at(
    buf: bytes | memoryview,
    pos: int,
    size: int,
    delay_levels: tuple[int, ...] = DEFAULT_DELAY_LEVELS,
) -> DispatchEntry:
    """The dispatch entry of the valid record at ``buf[pos:pos+size]`` (reput from disk)."""
    queue_id, queue_offset, physical_offset, sys_flag = _DISPATCH_HEAD.unpack_from(buf, pos)
    lay = layout(sys_flag)
    (store_ts,) = _Q.unpack_from(buf, pos + lay.store_timestamp_at)
    (blen,) = _I.unpack_from(buf, pos + lay.body_len_at)
    p = pos + lay.header_size + blen
    tlen = buf[p]
    topic = bytes(buf[p + 1 : p + 1 + tlen]).decode("utf-8", "replace")  # (as LogDispatchReader)
    p += 1 + tlen
    (plen,) = _H.unpack_from(buf, p)
    props = bytes(buf[p + 2 : p + 2 + plen]).decode("utf-8", "replace") if plen else ""
    code, keys, _wait = dispatch_fields(topic, props, sys_flag, store_ts, delay_levels)
    return DispatchEntry(
        topic, queue_id, queue_offset, physical_offset, size, code, store_ts, sys_flag, keys
    )
