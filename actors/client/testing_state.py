"""The fake cluster's broker state: what each FakeBroker stores and records, and ``store_record``.

Touched only on the fake cluster's hub (``actors.client.testing``). Stored records are real
commit-log records (``runtime.store.record``), so pull bodies are what a broker would send.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import gevent.event

from runtime.hostport import parse_address
from runtime.remoting.bodies import CheckClientRequestBody, MessageQueue
from runtime.remoting.properties import tag_hash
from runtime.session import SessionHandle
from runtime.store.record import PutRecord, encode_record, host_bytes
from runtime.store.record_properties import parse_properties


@dataclass
class Stored:
    record: bytes
    tags_code: int
    store_timestamp: int


@dataclass
class FakeBroker:
    """One broker's state (touched only on the fake's hub)."""

    name: str
    address: str = ""
    queues: dict[tuple[str, int], list[Stored]] = field(default_factory=lambda: defaultdict(list))
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)
    consumers: dict[str, dict[str, SessionHandle]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    producers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    arrivals: dict[tuple[str, int], gevent.event.Event] = field(default_factory=dict)
    physical: int = 0
    fail_sends: list[int] = field(default_factory=list)
    """Response codes to answer the next sends with, first first."""
    silent_sends: int = 0
    """How many of the next sends get no answer at all."""
    dropped_sends: int = 0
    """How many of the next sends close their connection unanswered (nothing stored: the
    client sees the connection lost)."""
    send_delay: float = 0.0
    """Seconds every send's answer waits (the message is stored at once): sends in flight."""
    unregister_delay: float = 0.0
    """Seconds every UNREGISTER_CLIENT's answer waits: a broker slow to see a client go."""
    stored_codes: list[int] = field(default_factory=list)
    """Response codes to answer the next sends with once stored (FLUSH_DISK_TIMEOUT, ...)."""
    send_ext_fields: dict[str, str] = field(default_factory=dict)
    """Added to every send's answer (e.g. a broker's MSG_REGION and TRACE_ON)."""
    requests: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    pull_times: dict[tuple[str, int], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """(topic, queue id) -> ``time.monotonic()`` of each PULL_MESSAGE's arrival, first first
    (``FakeCluster.wait_pulls``)."""
    locks: dict[tuple[str, MessageQueue], str] = field(default_factory=dict)
    """(group, queue) -> the client id holding its lock (LOCK_BATCH_MQ; no expiry)."""
    accept_send_back: bool = False
    """CONSUMER_SEND_MSG_BACK answers SUCCESS (and is only recorded); else not supported."""
    accept_retry_sends: bool | None = None
    """Sends to a ``%RETRY%`` topic (a consumer's copy after a failed send-back) are stored;
    else SYSTEM_ERROR. None: as ``accept_send_back`` (a broker that takes no send-back takes no
    copy either, so the consumer retries locally)."""
    property_filter: bool = True
    """CHECK_CLIENT_CONFIG answers SUCCESS for SQL92 subscriptions (as ``enablePropertyFilter``);
    else SYSTEM_ERROR. TAG subscriptions always pass. (Pulls do not evaluate SQL92 here.)"""
    checks: list[CheckClientRequestBody] = field(default_factory=list)
    """Every CHECK_CLIENT_CONFIG body received, first first."""
    forget_heartbeats: bool = False
    """HEART_BEAT answers SUCCESS but registers no consumer (a restarted broker that has not
    heard from a client yet, held in that state)."""
    keep_consumers: bool = False
    """A pull past a queue's end is answered PULL_RETRY_IMMEDIATELY at the offset asked (a
    slave, which never moves a consumer) instead of PULL_OFFSET_MOVED."""
    commit_in_pulls: bool = True
    """A pull's COMMIT_OFFSET flag stores its commitOffset (a broker's way); False: only
    UPDATE_CONSUMER_OFFSET does, so a test sees a consumer's own commits."""
    zero_if_not_found: bool = False
    """QUERY_CONSUMER_OFFSET with no stored offset: 0 (RocketMQ, when the queue starts at 0)
    instead of QUERY_NOT_FOUND."""

    def codes(self) -> list[int]:
        return [code for code, _ in self.requests]


def store_record(broker: FakeBroker, rec: PutRecord, store_timestamp: int | None = None) -> int:
    """Append ``rec`` to its queue as a broker would (waking parked pulls); returns its queue
    offset."""
    items = broker.queues[(rec.topic, rec.queue_id)]
    now = store_timestamp if store_timestamp is not None else int(time.time() * 1000)
    host, port = parse_address(broker.address)
    data = encode_record(
        rec,
        queue_offset=len(items),
        physical_offset=broker.physical,
        store_timestamp=now,
        store_host=host_bytes(host),
        store_port=port,
    )
    broker.physical += len(data)
    tags = parse_properties(rec.properties).get("TAGS")
    items.append(Stored(data, tag_hash(tags) if tags else 0, now))
    event = broker.arrivals.pop((rec.topic, rec.queue_id), None)
    if event is not None:
        event.set()
    return len(items) - 1
