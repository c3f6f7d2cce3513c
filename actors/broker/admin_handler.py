"""Offsets, lookups and administration requests of the broker.

QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31),
SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32), QUERY_MESSAGE (12),
VIEW_MESSAGE_BY_ID (33), UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215),
GET_ALL_TOPIC_CONFIG (21), GET_SYSTEM_TOPIC_LIST_FROM_BROKER (305),
UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), GET_BROKER_CONFIG (26), UPDATE_BROKER_CONFIG (25).
"""

from __future__ import annotations

from actors.broker import acl_gate
from actors.broker.context import BrokerContext, reply
from actors.broker.group_names import shown, unknown_group
from actors.broker.pull_gates import backlogged, unsettled
from actors.broker.queue_limits import queue_nums_problem
from config import ConfigError, dump_properties, with_overrides
from config.coerce import from_text
from config.fields import field_specs
from config.properties import PropertiesSyntaxError, parse_properties
from config.schema import BrokerConfig
from runtime.remoting.bodies import (
    SubscriptionGroupConfig,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicList,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import (
    CreateTopicRequestHeader,
    GetEarliestMsgStoretimeRequestHeader,
    GetMaxOffsetRequestHeader,
    GetMinOffsetRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryMessageRequestHeader,
    SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
)
from runtime.session import SessionHandle
from runtime.store.record import decode_record
from runtime.store.topic_attributes import apply_attributes
from runtime.store.topic_names import reserved_problem, topic_problem


def query_consumer_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(QueryConsumerOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    offset = ctx.store.query_offset(h.consumer_group, h.topic, h.queue_id)
    if offset is not None and offset >= 0:
        # (a client given a queue resumes here: the tail-loss guard lets it, as its own)
        guard = ctx.store.tail_guard
        guard.vouch(h.consumer_group, h.topic, h.queue_id, offset, session.remote_address)
        return reply(request, ext_fields={"offset": offset})
    # No offset stored for this group. RocketMQ's rule: a client that says setZeroIfNotFound=
    # false decides by its own consume-from policy; otherwise a queue that still starts at 0 is
    # read from 0 (the group sees everything).
    if h.set_zero_if_not_found is not False and ctx.store.min_offset(h.topic, h.queue_id) <= 0:
        return reply(request, ext_fields={"offset": 0})
    return reply(
        request,
        ResponseCode.QUERY_NOT_FOUND,
        remark="Not found, maybe this group consumer boot first",
    )


def update_consumer_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """UPDATE_CONSUMER_OFFSET (15). As RocketMQ 5: a group it finds no config for
    (``group_names.unknown_group``) is SUBSCRIPTION_GROUP_NOT_EXIST, a topic this broker does
    not have TOPIC_NOT_EXIST ("Topic <t> not exist!"); a queue id outside the topic's read
    queues is INVALID_PARAMETER (RocketMQ stores any: each one a new entry of the offset
    table). A negative offset is ignored; one past what the tail-loss guard allows the group
    (``runtime.store.tail_guard``) is stored as that."""
    h = decode_header(UpdateConsumerOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    group = h.consumer_group
    refused = unknown_group(ctx, request, group, ctx.store.subscription_group(group))
    if refused is not None:
        return refused
    config = ctx.store.topic(h.topic)
    if config is None:
        return reply(
            request, ResponseCode.TOPIC_NOT_EXIST, remark=f"Topic {shown(h.topic)} not exist!"
        )
    if not 0 <= h.queue_id < config.read_queue_nums:
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] topicConfig."
            f"readQueueNums:[{config.read_queue_nums}]",
        )
    if h.commit_offset >= 0:
        guard = ctx.store.tail_guard  # (past what a master vouched for after a lost tail: lowered)
        offset = guard.commit_value(
            group, h.topic, h.queue_id, h.commit_offset, session.remote_address
        )
        ctx.store.commit_offset(group, h.topic, h.queue_id, offset)
    return reply(request)


def max_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(GetMaxOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    return reply(request, ext_fields={"offset": ctx.store.max_offset(h.topic, h.queue_id)})


def min_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(GetMinOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    return reply(request, ext_fields={"offset": ctx.store.min_offset(h.topic, h.queue_id)})


def search_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(SearchOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    offset = ctx.store.offset_by_time(h.topic, h.queue_id, h.timestamp)
    return reply(request, ext_fields={"offset": offset})


def earliest_store_time(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        GetEarliestMsgStoretimeRequestHeader, request.ext_fields, opaque=request.opaque
    )
    ts = ctx.store.earliest_store_time(h.topic, h.queue_id)
    return reply(request, ext_fields={"timestamp": ts})


MAX_MSGS_NUM_BATCH = 64
"""Most messages one QUERY_MESSAGE answers (RocketMQ's MessageStoreConfig maxMsgsNumBatch: its
IndexService cuts every query's maxNum to it)."""
DEFAULT_QUERY_MAX_NUM = 32
"""A query by unique key (``_UNIQUE_KEY_QUERY=true``, a message id) answers at most this many
whatever its maxNum (RocketMQ's defaultQueryMaxNum)."""


def query_max_num(request: RemotingCommand, max_num: int) -> int:
    """How many messages a QUERY_MESSAGE may answer: its maxNum cut to 1..64, or 32 for a query
    by unique key, as RocketMQ's broker cuts it (a maxNum of 2^31 was taken as asked)."""
    if str(request.ext_fields.get("_UNIQUE_KEY_QUERY", "")).lower() == "true":
        return DEFAULT_QUERY_MAX_NUM
    return max(1, min(max_num, MAX_MSGS_NUM_BATCH))


def query_message(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(QueryMessageRequestHeader, request.ext_fields, opaque=request.opaque)
    refused = unsettled(ctx, request, ResponseCode.QUERY_NOT_FOUND) or backlogged(request, session)
    if refused is not None:
        return refused
    found = ctx.store.query_by_key(
        h.topic, h.key, query_max_num(request, h.max_num), h.begin_timestamp, h.end_timestamp
    )
    if not found:
        return reply(
            request,
            ResponseCode.QUERY_NOT_FOUND,
            remark=f"can not find message, topic: {h.topic} key: {h.key}",
        )
    ext = {"indexLastUpdateTimestamp": 0, "indexLastUpdatePhyoffset": 0}
    return reply(request, ext_fields=ext, body=b"".join(found))


def view_message(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand | None:
    h = decode_header(ViewMessageRequestHeader, request.ext_fields, opaque=request.opaque)
    refused = unsettled(ctx, request, ResponseCode.SYSTEM_ERROR) or backlogged(request, session)
    if refused is not None:
        return refused
    record = ctx.store.message_at(h.offset)
    if record is None:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"can not find message by the offset, {h.offset}",
        )
    if ctx.acl is not None:  # the header's topic is the client's word: the message's needs SUB
        denied = acl_gate.stored_refusal(ctx, session, request, decode_record(record).topic)
        if denied is not None:
            return denied.answer
    return reply(request, body=record)


def create_topic(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(CreateTopicRequestHeader, request.ext_fields, opaque=request.opaque)
    problem = topic_problem(h.topic) or reserved_problem(h.topic)
    if problem is not None:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=problem)
    if h.topic == ctx.cfg.broker_cluster_name:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"the topic[{h.topic}] is conflict with system reserved words",
        )
    problem = queue_nums_problem(
        h.read_queue_nums, h.write_queue_nums, ctx.cfg.max_topic_queue_nums
    )
    if problem is None and not 0 <= h.perm <= 7:
        problem = f"perm {h.perm} is not in 0..7"
    if problem is not None:
        return reply(request, ResponseCode.INVALID_PARAMETER, remark=problem)
    existing = ctx.store.topic(h.topic)
    attributes, problem = apply_attributes(
        dict(existing.attributes) if existing is not None else {}, h.attributes
    )
    if problem is not None:
        return reply(request, ResponseCode.INVALID_PARAMETER, remark=problem)
    ctx.store.create_topic(
        TopicConfig(
            topic_name=h.topic,
            read_queue_nums=h.read_queue_nums,
            write_queue_nums=h.write_queue_nums,
            perm=h.perm,
            topic_filter_type=h.topic_filter_type,
            topic_sys_flag=h.topic_sys_flag,
            order=h.order,
            attributes=attributes,
        )
    )
    ctx.register_now(h.topic)
    return reply(request)


def delete_topic(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """DELETE_TOPIC_IN_BROKER (215), header ``topic``: the topic's config, consume queues, files
    and every group's offsets of it go; the name server hears at once (re-registration). The
    records stay in the commit log until retention removes their segments, never readable
    through the topic again (docs/store.md, "Deleting a topic"). SUCCESS also when the topic
    did not exist, as RocketMQ answers."""
    topic = str(request.ext_fields.get("topic") or "")
    problem = topic_problem(topic) if topic else "The specified topic is blank."
    if problem is not None:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=problem)
    if ctx.store.is_system_topic(topic) or topic == ctx.cfg.broker_cluster_name:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"The topic[{topic}] is conflict with system topic.",
        )
    if ctx.store.read_only or (ctx.ha is not None and not ctx.ha.accepting_writes()):
        return reply(
            request,
            ResponseCode.SERVICE_NOT_AVAILABLE,
            remark=f"the broker[{ctx.cfg.broker_name}/{ctx.cfg.broker_id}] is not a writable "
            "master: delete topics on the master",
        )
    error = ctx.store.delete_topic(topic)
    if error is not None:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"delete topic {topic}: {error}")
    ctx.register_now()
    return reply(request)


def system_topic_list(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """GET_SYSTEM_TOPIC_LIST_FROM_BROKER (305): the broker's own topics as a TopicList (what
    RocketMQ's admin asks after the name server's 304, to tell system topics apart)."""
    return reply(request, body=encode_body(TopicList(topic_list=ctx.store.system_topics())))


def all_topic_config(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    wrapper = TopicConfigSerializeWrapper(topic_config_table=ctx.store.all_topics())
    return reply(request, body=encode_body(wrapper))


def topic_config(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """GET_TOPIC_CONFIG (351, RocketMQ 5's admin ``examineTopicConfig``), header ``topic``: the
    topic's config as JSON (RocketMQ's TopicConfigAndQueueMapping without a static-topic
    mapping); TOPIC_NOT_EXIST when this broker has none."""
    topic = str(request.ext_fields.get("topic") or "")
    config = ctx.store.topic(topic) if topic else None
    if config is None:
        return reply(
            request, ResponseCode.TOPIC_NOT_EXIST, remark=f"No topic in this broker. topic: {topic}"
        )
    return reply(request, body=encode_body(config))


def create_subscription_group(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    config = decode_body(SubscriptionGroupConfig, request.body, opaque=request.opaque)
    if not config.group_name:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark="groupName is required")
    limit = ctx.cfg.max_topic_queue_nums
    if not 0 <= config.retry_queue_nums <= limit:
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"retryQueueNums ({config.retry_queue_nums}) must be in 0..{limit} (the "
            "broker's maxTopicQueueNums)",
        )
    ctx.store.create_subscription_group(config)
    return reply(request)


def all_subscription_groups(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    return reply(request, body=encode_body(ctx.store.all_subscription_groups()))


def subscription_group(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """GET_SUBSCRIPTIONGROUP_CONFIG (352): one group's config, by header ``group``."""
    group = str(request.ext_fields.get("group") or "")
    config = ctx.store.subscription_group(group) if group else None
    if config is None:
        return reply(
            request,
            ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
            remark=f"subscription group [{group}] does not exist",
        )
    return reply(request, body=encode_body(config))


def delete_subscription_group(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """DELETE_SUBSCRIPTIONGROUP (207), header ``groupName``: the group's config goes; its
    consumer offsets stay (as RocketMQ 4 keeps them) unless header ``cleanOffset`` is true
    (RocketMQ 5: every offset the group committed here goes too)."""
    group = str(request.ext_fields.get("groupName") or "")
    if not group:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark="groupName is required")
    ctx.store.delete_subscription_group(group)
    if str(request.ext_fields.get("cleanOffset") or "").lower() == "true":
        ctx.store.remove_group_offsets(group)
    return reply(request)


RUNTIME_KEYS = frozenset({"brokerPermission"})
"""Broker config keys UPDATE_BROKER_CONFIG may change while the broker runs."""


def update_broker_config(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """UPDATE_BROKER_CONFIG (25; ``mqadmin updateBrokerConfig``), body ``key=value`` lines.
    ``brokerPermission`` takes effect at once: sends (without 2) or pulls (without 4) are
    refused, and the broker re-registers with its topics' perms cut to it, so producers leave
    a read-only broker (RocketMQ's way to drain one). Until a restart: the config file is not
    rewritten. Any other key: SYSTEM_ERROR naming it, nothing changed (the broker reads it at
    start)."""
    try:
        entries = parse_properties(request.body.decode())
    except (UnicodeDecodeError, PropertiesSyntaxError) as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"broker config body: {exc}")
    specs = field_specs(BrokerConfig)
    changes = {}
    for entry in entries:
        spec = specs.get(entry.key)
        if entry.key not in RUNTIME_KEYS or spec is None:
            return reply(
                request,
                ResponseCode.SYSTEM_ERROR,
                remark=f"{entry.key} cannot be changed while the broker runs (changeable: "
                f"{', '.join(sorted(RUNTIME_KEYS))}); set it in the broker's config file and "
                "restart",
            )
        try:
            changes[spec.attr] = from_text(spec, entry.value)
        except ValueError as exc:
            return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"{entry.key}: {exc}")
    try:
        ctx.cfg = with_overrides(ctx.cfg, **changes)
    except ConfigError as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=str(exc))
    ctx.register_now()
    return reply(request)


def broker_config(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    text = dump_properties(ctx.cfg, mask_secrets=True)
    return reply(request, ext_fields={"version": "0"}, body=text.encode())
