"""The store's status enums and replies (RocketMQ's names where RocketMQ has one).

``PutResult`` answers an append, ``GetResult`` a read by queue offset, ``QueryResult`` a lookup
by key; expected outcomes are statuses, not exceptions.
"""

from __future__ import annotations

import enum

import msgspec

from runtime.store.msg_id import offset_msg_id

# -- status enums ------------------------------------------------------------------------------


class PutStatus(enum.Enum):
    """RocketMQ's PutMessageStatus. ok: PUT_OK. info (stored, durability unknown):
    FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE, UNKNOWN_ERROR.
    fail (nothing was appended): everything else."""

    PUT_OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"
    CREATE_MAPPED_FILE_FAILED = "CREATE_MAPPED_FILE_FAILED"
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"
    OS_PAGE_CACHE_BUSY = "OS_PAGE_CACHE_BUSY"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    IN_SYNC_REPLICAS_NOT_ENOUGH = "IN_SYNC_REPLICAS_NOT_ENOUGH"

    @property
    def appended(self) -> bool | None:
        """True: stored and durable per the mode; None: stored, durability unknown (info);
        False: definitely not appended (fail)."""
        return _APPENDED[self]


_APPENDED: dict[PutStatus, bool | None] = {
    PutStatus.PUT_OK: True,
    PutStatus.FLUSH_DISK_TIMEOUT: None,
    PutStatus.FLUSH_SLAVE_TIMEOUT: None,
    PutStatus.SLAVE_NOT_AVAILABLE: None,
    PutStatus.UNKNOWN_ERROR: None,
    PutStatus.SERVICE_NOT_AVAILABLE: False,
    PutStatus.CREATE_MAPPED_FILE_FAILED: False,
    PutStatus.MESSAGE_ILLEGAL: False,
    PutStatus.PROPERTIES_SIZE_EXCEEDED: False,
    PutStatus.OS_PAGE_CACHE_BUSY: False,
    PutStatus.IN_SYNC_REPLICAS_NOT_ENOUGH: False,
}


class FlushStatus(enum.Enum):
    FLUSH_OK = "FLUSH_OK"
    FLUSH_TIMEOUT = "FLUSH_TIMEOUT"  # not fsynced within sync_flush_timeout
    FLUSH_FAILED = "FLUSH_FAILED"  # fsync failed: the store fail-stops


class GetStatus(enum.Enum):
    """RocketMQ's GetMessageStatus."""

    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    MESSAGE_WAS_REMOVING = "MESSAGE_WAS_REMOVING"
    OFFSET_FOUND_NULL = "OFFSET_FOUND_NULL"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"


# -- replies -----------------------------------------------------------------------------------


class PutResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one ``put`` (one batch). Per-record tuples are in the batch's order."""

    status: PutStatus
    queue_offsets: tuple[int, ...] = ()  # -1 for prepared/rolled-back transaction records
    physical_offsets: tuple[int, ...] = ()
    wrote_bytes: int = 0
    store_timestamp: int = 0
    store_host: bytes = b"\x7f\x00\x00\x01"
    store_port: int = 0
    reason: str | None = None  # why, for anything but PUT_OK

    @property
    def ok(self) -> bool:
        return self.status is PutStatus.PUT_OK

    @property
    def queue_offset(self) -> int:
        """The first record's queue offset (RocketMQ's logicsOffset), -1 when none."""
        return next((q for q in self.queue_offsets if q >= 0), -1)

    @property
    def physical_offset(self) -> int:
        """The first record's commit-log offset (RocketMQ's wroteOffset), -1 when none."""
        return self.physical_offsets[0] if self.physical_offsets else -1

    @property
    def msg_num(self) -> int:
        return len(self.physical_offsets)

    @property
    def msg_ids(self) -> list[str]:
        """Offset message ids, one per record."""
        return [offset_msg_id(self.store_host, self.store_port, p) for p in self.physical_offsets]

    @property
    def msg_id(self) -> str:
        """RocketMQ's AppendMessageResult.msgId: the ids joined by commas for a batch."""
        return ",".join(self.msg_ids)

    def with_status(self, status: PutStatus, reason: str | None = None) -> PutResult:
        return msgspec.structs.replace(self, status=status, reason=reason)


class GetResult(msgspec.Struct, frozen=True, kw_only=True):
    """A read by queue offset. ``messages`` are raw commit-log records (the PULL body is their
    concatenation, see ``body``); ``queue_offsets`` gives each one's queue offset."""

    status: GetStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: tuple[bytes, ...] = ()
    queue_offsets: tuple[int, ...] = ()
    suggest_pulling_from_slave: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.messages)

    @property
    def message_count(self) -> int:
        return len(self.messages)

    @property
    def total_size(self) -> int:
        return sum(len(m) for m in self.messages)


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    """A lookup by key: raw records, newest first, plus the index freshness RocketMQ reports."""

    messages: tuple[bytes, ...] = ()
    index_last_update_timestamp: int = 0
    index_last_update_phyoffset: int = 0
