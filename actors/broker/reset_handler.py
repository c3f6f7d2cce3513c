"""INVOKE_BROKER_TO_RESET_OFFSET (222): move a consumer group's offsets to a time, as RocketMQ 4.x
(``mqadmin resetOffsetByTime``) does.

Header ``topic``, ``group``, ``timestamp`` (ms; -1: the end of each queue), ``isForce``. For
each write queue of the topic on this broker the new offset is the first message stored at or
after the time, or the group's committed offset when ``isForce`` is false and that one is lower
(without force offsets only move back; a queue the group has no offset of gets the time's).
The broker does not write them itself: it pushes
RESET_CONSUMER_CLIENT_OFFSET (220, oneway, the same header and a ``ResetOffsetBody``) to every
online member of the group, which seek and commit; the reply carries the same body. Members
whose heartbeats say language CPP get RocketMQ's ``ResetOffsetBodyForC`` instead (a list of
``{topic, brokerName, queueId, offset}``: the C++ clients do not read queue objects as map
keys).
SYSTEM_ERROR for an unknown topic; CONSUMER_NOT_ONLINE when no member is online (the admin tool
then commits the offsets itself). Unlike RocketMQ, a group without committed offsets here is not
an error: its online members are told all the same.
"""

from __future__ import annotations

import json

from actors.broker.context import BrokerContext, reply
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.queue_maps import encode_queue_map
from runtime.session import SessionHandle


def reset_offset(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    ext = request.ext_fields
    topic, group = str(ext.get("topic") or ""), str(ext.get("group") or "")
    try:
        timestamp = int(ext.get("timestamp", -1))
    except ValueError:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark="timestamp is not a number")
    force = str(ext.get("isForce", "true")).lower() != "false"
    config = ctx.store.topic(topic) if topic else None
    if config is None:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"[reset-offset] reset offset failed, no topic in this broker. topic={topic}",
        )
    table = []
    for queue_id in range(config.write_queue_nums):
        current = ctx.store.query_offset(group, topic, queue_id)
        if timestamp == -1:
            target = ctx.store.max_offset(topic, queue_id)
        else:
            target = ctx.store.offset_by_time(topic, queue_id, timestamp)
        target = max(target, 0)
        keep = not force and current is not None and current <= target
        mq = MessageQueue(topic=topic, broker_name=ctx.cfg.broker_name, queue_id=queue_id)
        offset = current if keep and current is not None else target
        table.append((mq, offset))
        ctx.store.tail_guard.vouch(group, topic, queue_id, offset)  # (the members pull it)
    body = encode_queue_map("offsetTable", table)
    header = {"topic": topic, "group": group, "timestamp": timestamp, "isForce": force}
    code = RequestCode.RESET_CONSUMER_CLIENT_OFFSET
    push = RemotingCommand.request(code, header, body, oneway=True)
    for_c = [
        {"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": o}
        for mq, o in table
    ]
    push_c = RemotingCommand.request(
        code, header, json.dumps({"offsetTable": for_c}).encode(), oneway=True
    )
    told = ctx.ask(ctx.proxy(ctx.consumers).tell_members(group, push, push_c))
    if not told:
        return reply(
            request,
            ResponseCode.CONSUMER_NOT_ONLINE,
            remark=f"Consumer not online, so can not reset offset, Group: {group} "
            f"Topic: {topic} Timestamp: {timestamp}",
        )
    return reply(request, body=body)
