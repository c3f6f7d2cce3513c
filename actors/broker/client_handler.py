"""Client bookkeeping requests: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
GET_CONSUMER_CONNECTION_LIST (CONSUMER_NOT_ONLINE when the group has no member),
GET_PRODUCER_CONNECTION_LIST (SYSTEM_ERROR "not exist" without one, as RocketMQ answers),
GET_ALL_PRODUCER_INFO (328, ``mqadmin producer``: every group's producers, ``{"data": {}}`` when
none),
CHECK_CLIENT_CONFIG (46: Java push consumers with a SQL92 subscription ask it at start).

Heartbeats register producer and consumer groups with their channel; a consumer group's
``%RETRY%<group>`` topic is created on its first heartbeat (clustering only), as RocketMQ does.
A group whose subscription-group config has ``notifyConsumerIdsChangedEnable=false`` is not
told NOTIFY_CONSUMER_IDS_CHANGED when a member joins or unregisters (RocketMQ's rule).
"""

from __future__ import annotations

from actors.broker.consumer_manager import ConsumerHeartbeat
from actors.broker.context import BrokerContext, reply
from actors.broker.pull_handler import FilterRefused, subscription_filter
from actors.broker.retry_handler import ensure_retry_topic
from runtime.remoting.bodies import (
    CheckClientRequestBody,
    ConsumerListBody,
    HeartbeatData,
    ProducerConnection,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import RETRY_PREFIX, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import (
    GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
)
from runtime.remoting.producer_bodies import ProducerTableInfo
from runtime.session import SessionHandle
from runtime.store.topic_names import topic_problem


def heartbeat(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    data = decode_body(HeartbeatData, request.body, opaque=request.opaque)
    for consumer in data.consumer_data_set:
        problem = topic_problem(RETRY_PREFIX + consumer.group_name)
        if consumer.message_model == "CLUSTERING" and problem is not None:
            # (its retry topic could not be made: refused whole, before anything is registered)
            remark = f"consumer group {consumer.group_name[:200]!r}: retry topic: {problem[:300]}"
            return reply(request, ResponseCode.INVALID_PARAMETER, remark=remark)
    session.state["client_id"] = data.client_id
    producers = ctx.proxy(ctx.producers)
    for producer in data.producer_data_set:
        producers.register(
            producer.group_name, data.client_id, session, str(request.language), request.version
        )
    consumers = ctx.proxy(ctx.consumers)
    for consumer in data.consumer_data_set:
        if consumer.message_model == "CLUSTERING":
            ensure_retry_topic(ctx, consumer.group_name)
        ctx.ask(
            consumers.register(
                ConsumerHeartbeat(
                    group=consumer.group_name,
                    client_id=data.client_id,
                    session=session,
                    consume_type=str(consumer.consume_type),
                    message_model=str(consumer.message_model),
                    consume_from_where=str(consumer.consume_from_where),
                    subscriptions=tuple(consumer.subscription_data_set),
                    notify=_notify_enabled(ctx, consumer.group_name),
                    language=str(request.language),
                    version=request.version,
                )
            )
        )
    return reply(request)


def unregister_client(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(UnregisterClientRequestHeader, request.ext_fields, opaque=request.opaque)
    if h.producer_group:
        ctx.ask(ctx.proxy(ctx.producers).unregister(h.producer_group, h.client_id))
    if h.consumer_group:
        notify = _notify_enabled(ctx, h.consumer_group)
        consumers = ctx.proxy(ctx.consumers)
        ctx.ask(consumers.unregister(h.consumer_group, h.client_id, notify, session.session_id))
    return reply(request)


def _notify_enabled(ctx: BrokerContext, group: str) -> bool:
    """The group's notifyConsumerIdsChangedEnable (true without a config)."""
    config = ctx.store.subscription_group(group)
    return config is None or config.notify_consumer_ids_changed_enable


def consumer_list(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        GetConsumerListByGroupRequestHeader, request.ext_fields, opaque=request.opaque
    )
    topic = str(request.ext_fields.get("topic") or "") or None
    ids = ctx.ask(ctx.proxy(ctx.consumers).consumer_ids(h.consumer_group, topic))
    if (
        topic is not None
        and not ids
        and ctx.ask(ctx.proxy(ctx.consumers).consumer_ids(h.consumer_group))
    ):
        return reply(request, body=encode_body(ConsumerListBody(consumer_id_list=[])))
    if not ids:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"no consumer for this group, {h.consumer_group}",
        )
    return reply(request, body=encode_body(ConsumerListBody(consumer_id_list=ids)))


def consumer_connections(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    h = decode_header(
        GetConsumerListByGroupRequestHeader, request.ext_fields, opaque=request.opaque
    )
    found = ctx.ask(ctx.proxy(ctx.consumers).connections(h.consumer_group))
    if found is None:
        return reply(
            request,
            ResponseCode.CONSUMER_NOT_ONLINE,
            remark=f"the consumer group[{h.consumer_group}] not online",
        )
    return reply(request, body=encode_body(found))


def producer_connections(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    group = str(request.ext_fields.get("producerGroup") or "")
    found = ctx.ask(ctx.proxy(ctx.producers).connections(group))
    if not found:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"the producer group[{group}] not exist"
        )
    return reply(request, body=encode_body(ProducerConnection(connection_set=found)))


def all_producer_info(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """GET_ALL_PRODUCER_INFO (328): every producer group this broker has heartbeats of, and
    each of its producers (RocketMQ 5's ProducerManager.getProducerTable)."""
    table = ctx.ask(ctx.proxy(ctx.producers).producer_table())
    return reply(request, body=encode_body(ProducerTableInfo(data=table)))


def check_client_config(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """CHECK_CLIENT_CONFIG (46): SUCCESS when this broker can filter by the subscription in the
    body (a TAG expression always; SQL92 with ``enablePropertyFilter`` and an expression that
    compiles), else the code and remark a pull with it would get (SYSTEM_ERROR,
    SUBSCRIPTION_PARSE_FAILED), as RocketMQ's ClientManageProcessor answers."""
    body = decode_body(CheckClientRequestBody, request.body, opaque=request.opaque)
    sub = body.subscription_data
    if sub is not None:
        chosen = subscription_filter(ctx, sub.expression_type, sub.sub_string)
        if isinstance(chosen, FilterRefused):
            return reply(request, chosen.code, remark=chosen.remark)
    return reply(request)


def channel_closed(ctx: BrokerContext, session: SessionHandle) -> None:
    for name in (ctx.consumers, ctx.producers):
        ref = ctx.directory.get(name)
        if ref is not None:
            ref.proxy().channel_closed(session.session_id)
