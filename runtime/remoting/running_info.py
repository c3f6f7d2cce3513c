"""GET_CONSUMER_RUNNING_INFO (307): a consumer's ``ConsumerRunningInfo`` body, as RocketMQ's
clients answer it (``mqadmin consumerStatus``, the dashboard's consumer detail).

The request (admin -> broker -> client) carries the header ``consumerGroup``, ``clientId`` and
``jstackEnable``; the client answers this body, which the broker relays unchanged:

- ``properties``: name -> string: the consumer's settings under RocketMQ's names
  (``consumerGroup``, ``messageModel``, ``pullBatchSize``, ...) and the ``PROP_*`` keys below;
- ``subscriptionSet``: the group's ``SubscriptionData`` (the retry topic included);
- ``mqTable``: queue -> ``ProcessQueueInfo`` for every queue the consumer holds, map keys
  written as queue objects the way fastjson writes them (``runtime.remoting.queue_maps``);
- ``statusTable``: topic -> ``ConsumeStatus`` (pull / consume RT and TPS);
- ``jstack``: the consumer's thread dump, when asked for (``jstackEnable``).

Decoding raises only ``ProtocolError(fatal=False)``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.bodies import Body, Int64, MessageQueue, SubscriptionData
from runtime.remoting.queue_maps import decode_queue_map, encode_queue_map

PROP_NAMESERVER_ADDR = "PROP_NAMESERVER_ADDR"
PROP_THREADPOOL_CORE_SIZE = "PROP_THREADPOOL_CORE_SIZE"
PROP_CONSUME_ORDERLY = "PROP_CONSUMEORDERLY"  # RocketMQ's spelling of the key
PROP_CONSUME_TYPE = "PROP_CONSUME_TYPE"
PROP_CLIENT_VERSION = "PROP_CLIENT_VERSION"
PROP_CONSUMER_START_TIMESTAMP = "PROP_CONSUMER_START_TIMESTAMP"


class ProcessQueueInfo(Body, kw_only=True):
    """One held queue: the offset the consumer would commit, what it has cached (pulled, not
    consumed yet), its lock (orderly consumers) and when it last pulled and consumed (ms)."""

    commit_offset: Int64 = 0
    cached_msg_min_offset: Int64 = 0
    cached_msg_max_offset: Int64 = 0
    cached_msg_count: int = 0
    cached_msg_size_in_mib: int = msgspec.field(default=0, name="cachedMsgSizeInMiB")
    transaction_msg_min_offset: Int64 = 0
    transaction_msg_max_offset: Int64 = 0
    transaction_msg_count: int = 0
    locked: bool = False
    try_unlock_times: Int64 = 0
    last_lock_timestamp: Int64 = 0
    droped: bool = False  # RocketMQ's spelling
    last_pull_timestamp: Int64 = 0
    last_consume_timestamp: Int64 = 0


class ConsumeStatus(Body, kw_only=True):
    """One topic's rates: pull and consume round trips (ms) and per-second rates, and the
    messages that failed in the last hour."""

    pull_rt: float = msgspec.field(default=0.0, name="pullRT")
    pull_tps: float = msgspec.field(default=0.0, name="pullTPS")
    consume_rt: float = msgspec.field(default=0.0, name="consumeRT")
    consume_ok_tps: float = msgspec.field(default=0.0, name="consumeOKTPS")
    consume_failed_tps: float = msgspec.field(default=0.0, name="consumeFailedTPS")
    consume_failed_msgs: Int64 = msgspec.field(default=0, name="consumeFailedMsgs")


class ConsumerRunningInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The whole body; ``mq_table`` keyed by queue (not JSON-encodable as such: use
    ``encode_running_info``)."""

    properties: dict[str, str] = {}
    subscription_set: list[SubscriptionData] = []
    mq_table: dict[MessageQueue, ProcessQueueInfo] = {}
    status_table: dict[str, ConsumeStatus] = {}
    jstack: str | None = None


def encode_running_info(info: ConsumerRunningInfo) -> bytes:
    """The body as RocketMQ's fastjson writes it (queue objects as ``mqTable`` keys)."""
    extra: dict[str, Any] = {
        "properties": info.properties,
        "statusTable": info.status_table,
        "subscriptionSet": info.subscription_set,
    }
    if info.jstack is not None:
        extra["jstack"] = info.jstack
    return encode_queue_map("mqTable", sorted(info.mq_table.items()), **extra)


def decode_running_info(data: bytes, *, opaque: int | None = None) -> ConsumerRunningInfo:
    """Read a ConsumerRunningInfo body (queue objects or plain JSON strings as map keys)."""
    pairs, doc = decode_queue_map(data, "mqTable", ProcessQueueInfo, opaque=opaque)
    try:
        properties = doc.get("properties") or {}
        jstack = doc.get("jstack")
        return ConsumerRunningInfo(
            properties={str(k): str(v) for k, v in dict(properties).items()},
            subscription_set=msgspec.convert(
                doc.get("subscriptionSet") or [], list[SubscriptionData], strict=False
            ),
            mq_table=dict(pairs),
            status_table=msgspec.convert(
                doc.get("statusTable") or {}, dict[str, ConsumeStatus], strict=False
            ),
            jstack=None if jstack is None else str(jstack),
        )
    except Exception as exc:  # msgspec errors, a field of the wrong shape
        raise ProtocolError(
            f"bad ConsumerRunningInfo body: {exc}", fatal=False, opaque=opaque
        ) from None
