"""GET_CONSUMER_STATUS_FROM_CLIENT (221) on the client side: a consumer tells its offsets.

A broker asks on behalf of ``mqadmin getConsumerStatus`` (INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
223) with the header ``topic`` and ``group``. The consumer answers SUCCESS with a
GetConsumerStatusBody whose ``messageQueueTable`` maps each queue of the topic it holds to the
offset it would commit (queue objects as keys, as fastjson writes them); a group this consumer
is not, or a topic it holds no queue of, answers an empty table, as RocketMQ's clients do.

``serve`` runs in the request's greenlet on the client's hub; it asks the rebalancer for the
held queues and the OffsetStore for each offset, every ask with a timeout.
"""

from __future__ import annotations

import pykka

from actors.client.instance import ClientInstance
from actors.client.offsets import ReadOffset
from runtime.actor import GeventFuture, new_future
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.queue_maps import encode_queue_map


def serve(
    instance: ClientInstance | None,
    group: str,
    request: RemotingCommand,
    *,
    rebalancer: str,
    offsets: str,
    timeout: float,
) -> RemotingCommand | None:
    """The answer to a GET_CONSUMER_STATUS_FROM_CLIENT ``request`` (None when oneway)."""
    table: list[tuple[MessageQueue, int]] = []
    asked_group = str(request.ext_fields.get("group") or "")
    topic = str(request.ext_fields.get("topic") or "")
    if instance is not None and asked_group == group:
        table = held_offsets(instance, topic, rebalancer, offsets, timeout)
    if request.is_oneway:
        return None
    body = encode_queue_map("messageQueueTable", table, consumerTable={})
    return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)


def held_offsets(
    instance: ClientInstance, topic: str, rebalancer: str, offsets: str, timeout: float
) -> list[tuple[MessageQueue, int]]:
    """(queue, offset) of each queue of ``topic`` this consumer holds and has an offset for."""
    ref = instance.directory.get(rebalancer)
    store = instance.directory.get(offsets)
    if ref is None or store is None:
        return []
    try:
        held = ref.proxy().pullers_by_queue().get(timeout=timeout)
    except pykka.ActorDeadError:
        return []
    table = []
    for mq in sorted(held):
        if mq.topic != topic:
            continue
        reply: GeventFuture[int] = new_future()
        try:
            store.tell(ReadOffset(mq, reply))
        except pykka.ActorDeadError:
            return table
        offset = reply.get(timeout=timeout)
        if offset >= 0:
            table.append((mq, offset))
    return table
