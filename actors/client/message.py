"""What users send and receive: ``Message``, ``MessageExt``, ``SendResult`` and the status enums.

``Message`` is what a producer sends: topic, body, tags, keys, user properties, delay level.
``MessageExt`` is what a consumer receives: the stored record decoded (see ``actors.client.pull``)
with its queue, offsets, timestamps and ids; properties are parsed on first use.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from runtime.hostport import format_address, ip_text
from runtime.remoting import properties as P
from runtime.remoting.bodies import MessageQueue

__all__ = [
    "SYSTEM_PROPERTIES",
    "ConsumeOrderlyStatus",
    "ConsumeResult",
    "LocalTransactionState",
    "Message",
    "MessageExt",
    "MessageQueue",
    "PullStatus",
    "SendResult",
    "SendStatus",
]


def _system_properties() -> frozenset[str]:
    names = set()
    for name, value in vars(P).items():
        if (
            name.isupper()
            and isinstance(value, str)
            and name not in {"NAME_VALUE_SEPARATOR", "PROPERTY_SEPARATOR", "KEY_SEPARATOR"}
            and name != "DELAY_LEVELS"
        ):
            names.add(value)
    return frozenset(names)


SYSTEM_PROPERTIES: frozenset[str] = _system_properties()
"""Property names RocketMQ reserves (MessageConst); user properties may not use them."""


class SendStatus(enum.Enum):
    """Outcome of a send that the broker stored (RocketMQ's SendStatus). Anything else raises."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


class ConsumeResult(enum.Enum):
    """What a push listener returns (RocketMQ's ConsumeConcurrentlyStatus)."""

    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class ConsumeOrderlyStatus(enum.Enum):
    """What an orderly listener may return (RocketMQ's ConsumeOrderlyStatus). SUCCESS is
    CONSUME_SUCCESS; SUSPEND_CURRENT_QUEUE_A_MOMENT is RECONSUME_LATER: the queue stops, the
    message is consumed again after ``suspend_delay``. Either enum works in either mode."""

    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


class LocalTransactionState(enum.Enum):
    """A transaction producer's decision about a half message (RocketMQ's
    LocalTransactionState; UNKNOW is RocketMQ's spelling): COMMIT_MESSAGE makes it visible,
    ROLLBACK_MESSAGE discards it, UNKNOW leaves it to the broker's check-back."""

    COMMIT_MESSAGE = "COMMIT_MESSAGE"
    ROLLBACK_MESSAGE = "ROLLBACK_MESSAGE"
    UNKNOW = "UNKNOW"


class PullStatus(enum.Enum):
    """Outcome of one pull (RocketMQ's PullStatus)."""

    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


class Message(msgspec.Struct, kw_only=False):
    """A message to send. ``body`` may be ``bytes`` or ``str`` (sent as UTF-8); ``keys`` a list
    or one string; ``properties`` user properties (names RocketMQ reserves are refused at send);
    ``delay_level`` 1..18 delays delivery (0: none); ``wait_store_ok`` False lets the broker
    answer before the flush/replication condition is met.

    Arbitrary delays (RocketMQ 5 timer messages): ``deliver_at_ms`` delivers at that time (ms
    since the epoch, property TIMER_DELIVER_MS), ``delay_ms`` that many ms after the broker
    stored it (TIMER_DELAY_MS). At most one of ``delay_level``, ``deliver_at_ms`` and
    ``delay_ms``; the broker refuses due times more than 3 days ahead (MESSAGE_ILLEGAL)."""

    topic: str
    body: bytes | str
    tags: str | None = msgspec.field(default=None)
    keys: Sequence[str] | str | None = None
    properties: Mapping[str, str] = msgspec.field(default_factory=dict)
    delay_level: int = 0
    flag: int = 0
    wait_store_ok: bool = True
    deliver_at_ms: int | None = None
    delay_ms: int | None = None

    def body_bytes(self) -> bytes:
        body = self.body
        if isinstance(body, str):
            return body.encode()
        return bytes(body) if body.__class__ is not bytes else body

    def keys_list(self) -> list[str]:
        keys = self.keys
        if not keys:
            return []
        if isinstance(keys, str):
            return [k for k in keys.split(P.KEY_SEPARATOR) if k]
        return [str(k) for k in keys]


DEFAULT_REGION = "DefaultRegion"
"""The region of a broker that names none (RocketMQ's MixAll.DEFAULT_TRACE_REGION_ID)."""


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """A stored send: ``msg_id`` is the client's UNIQ_KEY (comma-joined for a batch),
    ``offset_msg_id`` the broker's store-host + commit-log-offset id, ``queue`` and
    ``queue_offset`` where the (first) message landed. ``region_id`` and ``trace_on``: what
    the broker's answer said of its region and trace switch (MSG_REGION, TRACE_ON; a broker
    that names no region: ``DefaultRegion``, no switch: on), as RocketMQ's SendResult."""

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    transaction_id: str | None = None
    region_id: str = DEFAULT_REGION
    trace_on: bool = True


_PORT_OFFSET = struct.Struct(">iq")


class MessageExt(msgspec.Struct, gc=False, kw_only=False):
    """A received message (RocketMQ's MessageExt). Cheap to build (a C-level struct): hosts,
    properties, tags, keys and the ids are derived from the stored record on first use."""

    topic: str
    body: bytes
    properties_string: str
    broker_name: str = ""
    queue_id: int = 0
    queue_offset: int = 0
    commit_log_offset: int = 0
    sys_flag: int = 0
    flag: int = 0
    born_timestamp: int = 0
    born_ip: bytes = b"\0\0\0\0"
    born_port: int = 0
    store_timestamp: int = 0
    store_ip: bytes = b"\0\0\0\0"
    store_port: int = 0
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0
    _props: dict[str, str] | None = None
    consume_start_ms: int = 0
    """When a push consumer's listener call holding it began (ms; 0: not yet), RocketMQ's
    CONSUME_START_TIME: what ``consume_timeout`` measures."""

    @property
    def born_host(self) -> str:
        """``ip:port`` (an IPv6 ip unbracketed, as RocketMQ writes addresses)."""
        return format_address(ip_text(self.born_ip), self.born_port)

    @property
    def store_host(self) -> str:
        return format_address(ip_text(self.store_ip), self.store_port)

    @property
    def all_properties(self) -> dict[str, str]:
        """Every property, system ones (TAGS, KEYS, UNIQ_KEY...) included."""
        props = self._props
        if props is None:
            props = self._props = P.decode_properties(self.properties_string)
        return props

    @property
    def properties(self) -> dict[str, str]:
        """The user properties (what the producer put in ``Message.properties``)."""
        return {k: v for k, v in self.all_properties.items() if k not in SYSTEM_PROPERTIES}

    @property
    def tags(self) -> str | None:
        return self.all_properties.get(P.TAGS)

    @property
    def keys(self) -> list[str]:
        text = self.all_properties.get(P.KEYS)
        return [k for k in text.split(P.KEY_SEPARATOR) if k] if text else []

    @property
    def msg_id(self) -> str:
        """The client message id (UNIQ_KEY) when the producer set one, else the offset id."""
        return self.all_properties.get(P.UNIQ_KEY) or self.offset_msg_id

    @property
    def offset_msg_id(self) -> str:
        """RocketMQ's offset message id: store ip (4 bytes, 16 for IPv6) + port + commit-log
        offset, upper-case hex (32 or 56 digits)."""
        try:
            raw = _PORT_OFFSET.pack(self.store_port, self.commit_log_offset)
        except struct.error:
            return ""
        return (bytes(self.store_ip) + raw).hex().upper()

    @property
    def queue(self) -> MessageQueue:
        return MessageQueue(topic=self.topic, broker_name=self.broker_name, queue_id=self.queue_id)

    @property
    def transaction_id(self) -> str | None:
        """A transactional message's id (its UNIQ_KEY, as RocketMQ's clients set it)."""
        return self.all_properties.get(P.UNIQ_KEY)

    @property
    def delay_level(self) -> int:
        try:
            return int(self.all_properties.get(P.DELAY, "0"))
        except ValueError:
            return 0

    def __repr__(self) -> str:
        return (
            f"MessageExt(topic={self.topic!r}, queue={self.broker_name}/{self.queue_id}, "
            f"offset={self.queue_offset}, tags={self.tags!r}, body={self.body[:32]!r})"
        )

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, MessageExt):
            return NotImplemented
        return (
            self.topic == other.topic
            and self.broker_name == other.broker_name
            and self.queue_id == other.queue_id
            and self.queue_offset == other.queue_offset
            and self.commit_log_offset == other.commit_log_offset
        )

    def __hash__(self) -> int:
        return hash((self.topic, self.broker_name, self.queue_id, self.queue_offset))
