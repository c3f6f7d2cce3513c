"""Bodies of the broker's consume-queue and consumer-progress admin requests, as RocketMQ 4.x
writes them (fastjson: fields sorted by name, getters serialized as fields too).

- QUERY_CONSUME_QUEUE (321, ``mqadmin queryCq``): ``QueryConsumeQueueResponseBody`` with one
  ``ConsumeQueueData`` per consume-queue entry.
- QUERY_CONSUME_TIME_SPAN (303): ``QueryConsumeTimeSpanBody``, one ``QueueTimeSpan`` per queue;
  RocketMQ's QueueTimeSpan also has getters ``minTimeStampStr`` / ``maxTimeStampStr`` /
  ``consumeTimeStampStr`` (``yyyy-MM-dd#HH:mm:ss:SSS``, the broker's local time) that fastjson
  writes beside the numbers, so they are written here too.
- INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223): ``GetConsumerStatusBody`` whose ``consumerTable``
  maps each client id to a map with MessageQueue keys (``encode_consumer_status``); each client
  answers GET_CONSUMER_STATUS_FROM_CLIENT (221) with its own ``messageQueueTable``.
- QUERY_SUBSCRIPTION_BY_CONSUMER (345): ``QuerySubscriptionResponseBody``.
"""

from __future__ import annotations

import json
import time

import msgspec

from runtime.remoting.bodies import Body, Int32, Int64, MessageQueue, SubscriptionData

_ENCODER = msgspec.json.Encoder()


class ConsumeQueueData(Body, kw_only=True):
    """One consume-queue entry: where its record is in the commit log, its size and tags code.
    ``extendDataJson`` and ``bitMap`` come from RocketMQ's consume-queue extension (bitmap
    filters), which this store does not have: they stay null."""

    physic_offset: Int64
    physic_size: Int32
    tags_code: Int64
    extend_data_json: str | None = None
    bit_map: str | None = None
    eval: bool = False
    msg: str | None = None


class QueryConsumeQueueResponseBody(Body, kw_only=True):
    """QUERY_CONSUME_QUEUE (321) response body."""

    subscription_data: SubscriptionData | None = None
    filter_data: str | None = None
    queue_data: list[ConsumeQueueData] | None = None
    max_queue_index: Int64 = 0
    min_queue_index: Int64 = 0


def format_timestamp(ms: int) -> str:
    """RocketMQ's ``UtilAll.formatDate(date, "yyyy-MM-dd#HH:mm:ss:SSS")`` in local time."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%d#%H:%M:%S", time.localtime(seconds)) + f":{millis:03d}"


class QueueTimeSpan(Body, kw_only=True):
    """One queue of QUERY_CONSUME_TIME_SPAN: store times of its first and last message and of
    the group's consume position; ``delayTime`` is how long the next unconsumed message has
    waited (0 when the group is caught up)."""

    consume_time_stamp: Int64 = 0
    consume_time_stamp_str: str = ""
    delay_time: Int64 = 0
    max_time_stamp: Int64 = 0
    max_time_stamp_str: str = ""
    message_queue: MessageQueue
    min_time_stamp: Int64 = 0
    min_time_stamp_str: str = ""

    @classmethod
    def of(
        cls, mq: MessageQueue, *, min_ms: int, max_ms: int, consume_ms: int, delay_ms: int
    ) -> QueueTimeSpan:
        return cls(
            message_queue=mq,
            min_time_stamp=min_ms,
            min_time_stamp_str=format_timestamp(min_ms),
            max_time_stamp=max_ms,
            max_time_stamp_str=format_timestamp(max_ms),
            consume_time_stamp=consume_ms,
            consume_time_stamp_str=format_timestamp(consume_ms),
            delay_time=delay_ms,
        )


class QueryConsumeTimeSpanBody(Body, kw_only=True):
    """QUERY_CONSUME_TIME_SPAN (303) response body."""

    consume_time_span_set: list[QueueTimeSpan] = []


class QuerySubscriptionResponseBody(Body, kw_only=True):
    """QUERY_SUBSCRIPTION_BY_CONSUMER (345) response body (``subscriptionData`` null when the
    group has no online member subscribed to the topic)."""

    group: str
    subscription_data: SubscriptionData | None = None
    topic: str


def encode_consumer_status(table: dict[str, list[tuple[MessageQueue, int]]]) -> bytes:
    """A ``GetConsumerStatusBody``: ``{"consumerTable":{"<clientId>":{<queue>:<offset>,...}},
    "messageQueueTable":{}}`` with each queue key written as an object, as fastjson does."""
    enc = _ENCODER.encode
    clients = []
    for client_id, offsets in sorted(table.items()):
        queues = b",".join(enc(mq) + b":" + enc(offset) for mq, offset in sorted(offsets))
        clients.append(json.dumps(client_id).encode() + b":{" + queues + b"}")
    return b'{"consumerTable":{' + b",".join(clients) + b'},"messageQueueTable":{}}'
