"""Which groups consume what, and copying a group's progress (RocketMQ's AdminBrokerProcessor).

- QUERY_TOPIC_CONSUME_BY_WHO (300, header ``topic``): a ``GroupList`` of the groups online with
  a subscription to the topic and of those with a committed offset of it (``mqadmin
  consumerProgress`` without a group, the dashboard's topic page).
- QUERY_TOPICS_BY_CONSUMER (343, header ``group``): a ``TopicList`` (with this broker's
  address) of the topics the group committed offsets for.
- CLONE_GROUP_OFFSET (314, headers ``srcGroup``, ``destGroup``, ``topic`` (blank: every topic
  of the source group), ``offline``): the destination group gets the source group's committed
  offsets of each such topic this broker has. Unless ``offline``, a topic the source group is
  online without subscribing to is skipped, as RocketMQ does (``mqadmin cloneGroupOffset``).
  SUCCESS, but SUBSCRIPTION_GROUP_NOT_EXIST for an illegal destination group name
  (``group_names``); the offsets are persisted with the next offset persist, as any commit.
"""

from __future__ import annotations

from actors.broker.context import BrokerContext, reply
from actors.broker.group_names import group_problem, shown
from runtime.remoting.bodies import GroupList, TopicList, encode_body
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import Header
from runtime.session import SessionHandle


class QueryTopicConsumeByWhoRequestHeader(Header, kw_only=True):
    topic: str


class QueryTopicsByConsumerRequestHeader(Header, kw_only=True):
    group: str


class CloneGroupOffsetRequestHeader(Header, kw_only=True):
    src_group: str
    dest_group: str
    topic: str = ""
    offline: bool = False


def topic_consumed_by(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        QueryTopicConsumeByWhoRequestHeader, request.ext_fields, opaque=request.opaque
    )
    online = ctx.ask(ctx.proxy(ctx.consumers).groups_subscribing(h.topic))
    prefix = f"{h.topic}@"
    committed = [k[len(prefix) :] for k in ctx.store.all_offsets() if k.startswith(prefix)]
    body = GroupList(group_list=sorted(set(online) | set(committed)))
    return reply(request, body=encode_body(body))


def topics_of_consumer(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(QueryTopicsByConsumerRequestHeader, request.ext_fields, opaque=request.opaque)
    body = TopicList(
        topic_list=ctx.store.consumed_topics(h.group), broker_addr=ctx.cfg.broker_addr()
    )
    return reply(request, body=encode_body(body))


def clone_group_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(CloneGroupOffsetRequestHeader, request.ext_fields, opaque=request.opaque)
    problem = group_problem(h.dest_group)
    if problem is not None:  # (offsets committed for it would be offsets of no group)
        return reply(
            request,
            ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
            remark=f"subscription group not exist, {shown(h.dest_group)!r}: {problem}",
        )
    offsets = ctx.store.group_offsets(h.src_group)
    topics = [h.topic] if h.topic else sorted(offsets)
    consumers = ctx.proxy(ctx.consumers)
    online = ctx.ask(consumers.group(h.src_group)) is not None
    for topic in topics:
        if ctx.store.topic(topic) is None or topic not in offsets:
            continue
        if not h.offline and online and ctx.ask(consumers.subscription(h.src_group, topic)) is None:
            continue
        for queue_id, offset in offsets[topic].items():
            ctx.store.tail_guard.vouch(h.dest_group, topic, queue_id, offset)
            ctx.store.commit_offset(h.dest_group, topic, queue_id, offset)
    return reply(request, ResponseCode.SUCCESS)
