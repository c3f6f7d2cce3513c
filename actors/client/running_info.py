"""GET_CONSUMER_RUNNING_INFO (307) on the client side: a consumer describes itself.

A broker forwards the request from an admin tool (``mqadmin consumerStatus``, the dashboard)
with the header ``consumerGroup``, ``clientId``, ``jstackEnable``. The consumer answers
SUCCESS with a ``ConsumerRunningInfo`` body (``runtime.remoting.running_info``): its settings
and ``PROP_*`` properties, its subscriptions, one ``ProcessQueueInfo`` per queue it holds (the
offset it would commit, what it has cached, its lock, when it last pulled and consumed) and,
when asked, a dump of its threads' stacks. A group this consumer is not answers SYSTEM_ERROR
"The Consumer Group <group> not exist in this consumer", as RocketMQ's clients do.

Not measured: ``statusTable`` holds each subscribed topic with zero rates (RocketMQ's pull and
consume RT / TPS), and the orderly ``transactionMsg*`` fields are 0.

``collect`` runs in a greenlet on the client's hub (the request's own); it asks the rebalancer
for the pullers, each puller for its queue, and the OffsetStore for each queue's offset, every
ask with a timeout.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

import msgspec
import pykka

from actors.client.instance import ClientInstance
from actors.client.offsets import ReadOffset
from runtime.actor import GeventFuture, new_future
from runtime.remoting.bodies import MessageQueue, SubscriptionData
from runtime.remoting.running_info import ConsumerRunningInfo, ConsumeStatus, ProcessQueueInfo


def not_this_group(group: str) -> str:
    return f"The Consumer Group <{group}> not exist in this consumer"


def collect(
    instance: ClientInstance,
    *,
    rebalancer: str,
    offsets: str,
    properties: dict[str, str],
    subscriptions: list[SubscriptionData],
    jstack: bool,
    timeout: float,
) -> ConsumerRunningInfo:
    """The consumer's running info (blocks this greenlet; each ask up to ``timeout`` s)."""
    ref = instance.directory.get(rebalancer)
    pullers: dict[MessageQueue, Any] = {}
    if ref is not None:
        pullers = ref.proxy().pullers_by_queue().get(timeout=timeout)
    table: dict[MessageQueue, ProcessQueueInfo] = {}
    for mq, puller in sorted(pullers.items()):
        try:
            info: ProcessQueueInfo = puller.proxy().queue_info().get(timeout=timeout)
        except pykka.ActorDeadError:
            continue  # the queue went away meanwhile (rebalance)
        table[mq] = msgspec.structs.replace(
            info, commit_offset=_offset(instance, offsets, mq, timeout)
        )
    return ConsumerRunningInfo(
        properties=properties,
        subscription_set=subscriptions,
        mq_table=table,
        status_table={s.topic: ConsumeStatus() for s in subscriptions},
        jstack=thread_dump() if jstack else None,
    )


def _offset(instance: ClientInstance, offsets: str, mq: MessageQueue, timeout: float) -> int:
    ref = instance.directory.get(offsets)
    if ref is None:
        return -1
    reply: GeventFuture[int] = new_future()
    try:
        ref.tell(ReadOffset(mq, reply))
    except pykka.ActorDeadError:
        return -1
    return reply.get(timeout=timeout)


def thread_dump() -> str:
    """Every Python thread's stack (what ``jstack`` is to a Java consumer)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sorted(sys._current_frames().items()):
        stack = "".join(traceback.format_stack(frame))
        parts.append(f'"{names.get(ident, ident)}" ident={ident}\n{stack}')
    return "\n".join(parts)
