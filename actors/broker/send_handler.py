"""SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).

Checks, in RocketMQ's order: broker write permission (and, in controller mode, the master
lease: without one the answer is SERVICE_NOT_AVAILABLE and nothing is stored), topic name,
a topic only the broker writes (RocketMQ's not-allowed-send set: SCHEDULE_TOPIC_XXXX, the
transaction half topics, ...; and the timer topic): NO_PERMISSION "Sending message to
topic[...] is forbidden.", as RocketMQ's ``msgCheck`` answers (the broker's own puts into them,
delay levels, timers, do not come through here), topic
(auto-created from the producer's default topic when autoCreateTopicEnable), topic write
permission, queue id (any below max(writeQueueNums, readQueueNums), as RocketMQ's msgCheck;
a negative one: a random write queue); then the store
validates sizes and answers MESSAGE_ILLEGAL before anything is written. A batch flag under any
send code means the body is a batch. The reply waits for the store's durability condition and
maps its status to RocketMQ's response codes (SUCCESS, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT,
SLAVE_NOT_AVAILABLE: all "stored"; anything else: not stored). Every stored message carries
the broker's CLUSTER (replacing the producer's), as RocketMQ's SendMessageProcessor puts it:
a request message of request-reply (it names REPLY_TO_CLIENT) gets its reply topic from it
(``actors.broker.reply_handler``), and its connection reaches the requester until the
requester's heartbeat does (``ProducerManager.sent_request``). Every answer and every stored
message carry the broker's region and trace switch (MSG_REGION, TRACE_ON:
``actors.broker.msg_region``). A single message sent without a UNIQ_KEY (or with an empty one)
is stored with one of the broker's making, which the answer's transactionId names, as RocketMQ
5's SendMessageProcessor does (a batch's messages keep theirs: RocketMQ's sendBatchMessage
gives none).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import itertools
import os
import random
import time

from actors.broker.context import BrokerContext, reply, send_queue_busy, topic_not_exist
from actors.broker.delay import TimerError, delay_level, schedule, to_schedule
from actors.broker.msg_region import stamp, with_response_fields
from actors.broker.queue_limits import capped
from config.schema import BrokerConfig
from runtime.errors import AddressError
from runtime.hostport import parse_address
from runtime.remoting.batch import split_batch
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_send_header
from runtime.remoting.headers import SendMessageRequestHeader
from runtime.remoting.properties import (
    MSG_TYPE,
    PROPERTY_SEPARATOR,
    REPLY_TO_CLIENT,
    UNIQ_KEY,
    decode_properties,
    encode_properties,
    message_kind,
)
from runtime.session import SessionHandle
from runtime.store.record import TRANSACTION_MASK, TRANSACTION_PREPARED_TYPE, PutRecord, host_bytes
from runtime.store.topic_names import (
    LMQ_PREFIX,
    reserved_problem,
    send_forbidden,
    split_lmq,
    topic_problem,
)

PERM_READ, PERM_WRITE, PERM_INHERIT = 4, 2, 1
TBW102 = "TBW102"

STATUS_CODES: dict[str, int] = {
    "PUT_OK": ResponseCode.SUCCESS,
    "FLUSH_DISK_TIMEOUT": ResponseCode.FLUSH_DISK_TIMEOUT,
    "FLUSH_SLAVE_TIMEOUT": ResponseCode.FLUSH_SLAVE_TIMEOUT,
    "SLAVE_NOT_AVAILABLE": ResponseCode.SLAVE_NOT_AVAILABLE,
    "MESSAGE_ILLEGAL": ResponseCode.MESSAGE_ILLEGAL,
    "PROPERTIES_SIZE_EXCEEDED": ResponseCode.MESSAGE_ILLEGAL,
    "SERVICE_NOT_AVAILABLE": ResponseCode.SERVICE_NOT_AVAILABLE,
    "OS_PAGE_CACHE_BUSY": ResponseCode.SYSTEM_BUSY,
    "CREATE_MAPPED_FILE_FAILED": ResponseCode.SYSTEM_ERROR,
    "UNKNOWN_ERROR": ResponseCode.SYSTEM_ERROR,
    "IN_SYNC_REPLICAS_NOT_ENOUGH": ResponseCode.SYSTEM_ERROR,
}
STORED_CODES = frozenset(
    {
        ResponseCode.SUCCESS,
        ResponseCode.FLUSH_DISK_TIMEOUT,
        ResponseCode.FLUSH_SLAVE_TIMEOUT,
        ResponseCode.SLAVE_NOT_AVAILABLE,
    }
)
"""Response codes that mean "stored" (the durability condition may not be met)."""
REPLY_MARK = f"{REPLY_TO_CLIENT}\x01"
UNIQ_MARK = f"{UNIQ_KEY}\x01"
REPLY_MESSAGE_FLAG = "reply"
"""MSG_TYPE of a reply (RocketMQ's MixAll.REPLY_MESSAGE_FLAG)."""


def send(ctx: BrokerContext, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
    h = decode_send_header(request.code, request.ext_fields, opaque=request.opaque)
    return with_response_fields(_send(ctx, session, request, h), ctx.cfg)


def _send(
    ctx: BrokerContext,
    session: SessionHandle,
    request: RemotingCommand,
    h: SendMessageRequestHeader,
) -> RemotingCommand:
    if not ctx.cfg.broker_permission & PERM_WRITE or not ctx.cfg.is_master:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the broker[{ctx.cfg.broker_name}/{ctx.cfg.broker_id}] sending message is "
            "forbidden",
        )
    if ctx.ha is not None and not ctx.ha.accepting_writes():
        why = (
            "is fetching what its slaves hold of its log after a power loss"
            if ctx.ha.reconciling
            else "holds no master lease from the controller (a failover may be under way)"
        )
        return reply(
            request,
            ResponseCode.SERVICE_NOT_AVAILABLE,
            remark=f"the broker[{ctx.cfg.broker_name}/{ctx.cfg.broker_id}] {why}: nothing was "
            "stored",
        )
    problem = topic_problem(h.topic)
    if problem is not None:
        return reply(request, ResponseCode.MESSAGE_ILLEGAL, remark=problem)
    refused = forbidden_topic(request, h.topic)
    if refused is not None:
        return refused
    config = ctx.store.topic(h.topic)
    if config is None:
        reserved = reserved_problem(h.topic)
        if reserved is not None:  # (the TopicConfig refuses to make it: it raised)
            return reply(request, ResponseCode.NO_PERMISSION, remark=reserved)
        config = _auto_create(ctx, h)
        if config is None:
            return topic_not_exist(request, h.topic)
    if not config.perm & PERM_WRITE:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the topic[{h.topic}] sending message is forbidden",
        )
    queue_id = send_queue(h, config)
    if queue_id is None:
        return illegal_queue(request, h, config)
    is_batch = h.batch or request.code == RequestCode.SEND_BATCH_MESSAGE
    props = decode_properties(h.properties)  # (once: the message kind, UNIQ_KEY, requester)
    properties = h.properties if is_batch else with_uniq_key(h.properties, props, cfg=ctx.cfg)
    records = records_of(
        session, request, h, queue_id, is_batch, ctx.cfg, clustered=True, properties=properties
    )
    requester = None
    if not is_batch and REPLY_MARK in h.properties:
        requester = requester_of(props)
    if not records:
        return reply(request, ResponseCode.MESSAGE_ILLEGAL, remark="the batch holds no message")
    if is_batch and h.topic.startswith(RETRY_PREFIX):  # (as RocketMQ's sendBatchMessage)
        return reply(
            request,
            ResponseCode.MESSAGE_ILLEGAL,
            remark=f"batch request does not support retry group {h.topic}",
        )
    if is_batch and any(r.sys_flag & TRANSACTION_MASK for r in records):
        return reply(
            request, ResponseCode.MESSAGE_ILLEGAL, remark="batched messages cannot be transactional"
        )
    levels = [delay_level(r) for r in records]
    if is_batch and any(levels):
        return reply(
            request,
            ResponseCode.MESSAGE_ILLEGAL,
            remark="TimeDelayLevel is not supported for batched messages",
        )
    if h.topic.startswith(RETRY_PREFIX) and not is_batch:
        records = [_retry_or_dlq(ctx, records[0], h)]
    elif not is_batch:
        try:
            records = [
                schedule(
                    records[0],
                    len(ctx.cfg.delay_levels_ms()),
                    _now_ms(),
                    timers=ctx.cfg.timer_wheel_enable,
                )
            ]
        except TimerError as exc:
            return reply(request, ResponseCode.MESSAGE_ILLEGAL, remark=str(exc))
    busy = send_queue_busy(ctx, request)  # after the connection's earlier sends, in time
    if busy is not None:
        return busy
    half = not is_batch and records[0].sys_flag & TRANSACTION_MASK == TRANSACTION_PREPARED_TYPE
    if half:
        from actors.broker.transaction_handler import register_half, stored_half
    # (a half message's put holds a TransactionManager token: the table's catch-up point stays
    # below its record until it is registered)
    with stored_half(ctx) if half else _NO_TOKEN as token:
        outcome = ctx.store.put(records)  # ends the turn once the records are queued
        code = STATUS_CODES.get(outcome.status, ResponseCode.SYSTEM_ERROR)
        if code not in STORED_CODES:
            return reply(request, code, remark=outcome.remark or outcome.status)
        if half:
            register_half(ctx, session, records[0], h.producer_group, outcome, token)
    if requester:
        ctx.proxy(ctx.producers).sent_request(requester, session)
    ext: dict[str, object] = {
        "msgId": ",".join(outcome.msg_ids),
        "queueId": queue_id,
        "queueOffset": outcome.queue_offset,
    }
    if not h.topic.startswith(RETRY_PREFIX) and not h.topic.startswith(DLQ_PREFIX):
        # (RocketMQ's: a send's records' average size as stored; retries and dead letters not)
        labels = (metrics_topic(h.topic), message_kind(props))
        ctx.message_size.observe(labels, outcome.wrote_bytes // len(records))
    if not is_batch:
        ext["transactionId"] = props[UNIQ_KEY]
    return reply(request, code, remark=outcome.remark, ext_fields=ext)


def with_uniq_key(properties: str, props: dict[str, str], cfg: BrokerConfig) -> str:
    """A message's properties as stored: with a UNIQ_KEY of the broker's making when the
    producer sent none or an empty one (RocketMQ 5's SendMessageProcessor.sendMessage gives
    every single message one, so its msgId and the answer's transactionId are always set; a
    batch's messages keep what they were sent with). ``props`` (``properties`` decoded) gets
    it too."""
    if props.get(UNIQ_KEY):
        return properties
    props[UNIQ_KEY] = new_uniq_key(cfg)
    if UNIQ_MARK in properties:  # (an empty one: replaced)
        return encode_properties(props)
    if properties and not properties.endswith(PROPERTY_SEPARATOR):
        properties += PROPERTY_SEPARATOR
    return f"{properties}{UNIQ_MARK}{props[UNIQ_KEY]}{PROPERTY_SEPARATOR}"


_UNIQ_RANDOM = os.urandom(4).hex().upper()
_uniq_counter = itertools.count()


def new_uniq_key(cfg: BrokerConfig) -> str:
    """A UNIQ_KEY of the broker's making, laid out as RocketMQ's MessageClientIDSetter (and
    ``actors.client.msgid``, which the broker does not import): the broker's IP, the process
    id (2 bytes), a per-process random number (4), milliseconds since the month began (4) and
    a counter (2), in upper-case hex (32 digits for IPv4)."""
    ip, _port = peer_host(cfg.broker_addr())
    now = _now_ms()
    since = (now - _month_start_ms(now // 1000 // 86_400)) & 0x7FFFFFFF
    count = next(_uniq_counter) & 0xFFFF
    return f"{ip.hex().upper()}{os.getpid() & 0xFFFF:04X}{_UNIQ_RANDOM}{since:08X}{count:04X}"


@functools.lru_cache(maxsize=4)
def _month_start_ms(day: int) -> int:
    """The local start of the month holding epoch day ``day``, in epoch milliseconds."""
    today = datetime.datetime.fromtimestamp(day * 86_400 + 43_200)
    start = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def forbidden_topic(request: RemotingCommand, topic: str) -> RemotingCommand | None:
    """NO_PERMISSION for a client's send to a topic only the broker writes (RocketMQ's
    ``TopicValidator.isNotAllowedSendTopic``): a message in SCHEDULE_TOPIC_XXXX without its
    REAL_TOPIC was put back into that topic every second, forever. None for any other."""
    remark = send_forbidden(topic)
    if remark is None:
        return None
    return reply(request, ResponseCode.NO_PERMISSION, remark=remark)


def send_queue(h: SendMessageRequestHeader, config: TopicConfig) -> int | None:
    """The queue a send stores into: the one it names when below max(writeQueueNums,
    readQueueNums), as RocketMQ's msgCheck takes it (a producer whose route predates a cut of
    the write queues still sends to the readable ones); a random write queue for a negative
    one; None beyond both counts (``illegal_queue``)."""
    if h.queue_id < 0:
        return random.randrange(config.write_queue_nums)
    if h.queue_id >= config.write_queue_nums and h.queue_id >= config.read_queue_nums:
        return None
    return h.queue_id


def illegal_queue(
    request: RemotingCommand, h: SendMessageRequestHeader, config: TopicConfig
) -> RemotingCommand:
    """SYSTEM_ERROR for a queue id beyond both queue counts (RocketMQ's msgCheck)."""
    return reply(
        request,
        ResponseCode.SYSTEM_ERROR,
        remark=f"request queueId[{h.queue_id}] is illegal, topic[{h.topic}] writeQueueNums: "
        f"{config.write_queue_nums}, readQueueNums: {config.read_queue_nums}",
    )


def metrics_topic(topic: str) -> str:
    """A topic as the metrics name it: a lite topic's queue (``%LMQ%$<parent>$<lite>``) as its
    parent, where RocketMQ stores lite messages (thousands of lite topics: not a series each)."""
    lite = split_lmq(topic)
    return topic if lite is None else lite[0]


def _now_ms() -> int:
    return int(time.time() * 1000)


_NO_TOKEN = contextlib.nullcontext(0)
"""A send that is no half message holds no TransactionManager token."""


def _retry_or_dlq(ctx: BrokerContext, record: PutRecord, h: SendMessageRequestHeader) -> PutRecord:
    """A message sent straight to a retry topic (a client whose send-back failed): past the
    group's max reconsume times it goes to the dead-letter queue instead (RocketMQ's rule)."""
    from actors.broker.retry_handler import dead_letter, message_max_times

    # the client's word, else the group's retryMaxTimes, else the message's (as a send-back)
    max_times = h.max_reconsume_times
    if max_times is None:
        group_config = ctx.store.subscription_group(h.topic[len(RETRY_PREFIX) :])
        if group_config is not None:
            max_times = group_config.retry_max_times
        else:
            max_times = message_max_times(decode_properties(record.properties))
    if record.reconsume_times > max_times:
        return dead_letter(ctx, record, h.topic[len(RETRY_PREFIX) :])
    level = delay_level(record)
    if level:
        return to_schedule(record, level, len(ctx.cfg.delay_levels_ms()))
    return record


def _auto_create(ctx: BrokerContext, h: SendMessageRequestHeader) -> TopicConfig | None:
    """Create ``h.topic`` from its default topic (TBW102) as RocketMQ brokers do, or None (a
    light message queue's ``%LMQ%`` topic is made with its one queue, never guessed; a default
    topic without the inherit permission, as RocketMQ refuses it: any existing topic named as
    the default would otherwise lend its queue count)."""
    retry = h.topic.startswith(RETRY_PREFIX)
    if not retry:
        if not ctx.cfg.auto_create_topic_enable or h.topic.startswith(LMQ_PREFIX):
            return None
        default = ctx.store.topic(h.default_topic or TBW102)
        if default is None or not default.perm & PERM_INHERIT:
            return None
        nums = min(h.default_topic_queue_nums, default.write_queue_nums)
    else:
        nums = 1
    nums = capped(nums, ctx.cfg.max_topic_queue_nums)
    config = TopicConfig(
        topic_name=h.topic,
        read_queue_nums=nums,
        write_queue_nums=nums,
        perm=PERM_READ | PERM_WRITE,
        topic_sys_flag=0,
    )
    made = ctx.store.ensure_topic(config)  # (a topic made since the lookup is kept as it is)
    ctx.register_now(h.topic)
    return made


def requester_of(props: dict[str, str]) -> str | None:
    """The REPLY_TO_CLIENT of a request message of request-reply (None for a reply sent as a
    plain message): its connection reaches the requester until the requester's heartbeat does
    (``ProducerManager.sent_request``)."""
    return None if props.get(MSG_TYPE) == REPLY_MESSAGE_FLAG else props.get(REPLY_TO_CLIENT)


@functools.lru_cache(maxsize=4096)
def peer_host(remote_address: str) -> tuple[bytes, int]:
    """A connection's ``host:port`` as a record's born host: 4 bytes for IPv4, 16 for IPv6 (the
    store then sets sysFlag BORNHOST_V6, as RocketMQ's CommitLog does for an Inet6Address).
    Cached: every send of a connection asks with the same address (parsing it costs ~3 µs)."""
    try:
        host, port = parse_address(remote_address)
        return host_bytes(host), port
    except AddressError:
        return b"\x7f\x00\x00\x01", 0


def records_of(
    session: SessionHandle,
    request: RemotingCommand,
    h: SendMessageRequestHeader,
    queue_id: int,
    is_batch: bool,
    cfg: BrokerConfig,
    *,
    clustered: bool = False,
    properties: str | None = None,
) -> list[PutRecord]:
    """The records a send stores, each with the broker's MSG_REGION and TRACE_ON, and with
    ``clustered`` (a producer's send, not a reply) its CLUSTER: RocketMQ's SendMessageProcessor
    puts the broker's cluster name into every message it stores (a request message's responder
    sends its reply to ``<CLUSTER>_REPLY_TOPIC``), replacing the producer's. ``properties``:
    a single message's, when not the header's as sent."""
    born_host, born_port = peer_host(session.remote_address)
    cluster = (cfg.broker_cluster_name or None) if clustered else None
    topic, sys_flag, born, times = h.topic, h.sys_flag, h.born_timestamp, h.reconsume_times
    entries = (
        split_batch(request.body, opaque=request.opaque)
        if is_batch
        else [(h.flag, request.body, h.properties if properties is None else properties)]
    )
    # positional: a batch of 100 builds 100 records (keywords cost 5x more)
    return [
        PutRecord(
            topic, queue_id, body, stamp(props, cfg, cluster), flag, sys_flag, born, born_host,
            born_port, times,
        )
        for flag, body, props in entries
    ]  # fmt: skip
