"""Message traces, as RocketMQ's client sends them (``enable_msg_trace=True``).

A ``Producer`` (``TransactionProducer`` too: its END_TRANSACTIONs as well), ``PushConsumer``
or ``PullConsumer`` made with ``enable_msg_trace=True`` (and optionally ``trace_topic``,
RocketMQ's customizedTraceTopic) starts, with itself, a trace dispatcher
(``actors.client.trace_dispatcher``: a bounded queue, a worker thread, an internal producer)
and registers a trace hook (``actors.client.trace_hooks``) on itself; its shutdown then
flushes the dispatcher. The records are RocketMQ's (``actors.client.trace_data``), so
RocketMQ's ``mqadmin queryMsgTraceById`` and Dashboard read them, and
``Admin.query_msg_trace`` / ``python -m runtime admin queryMsgTraceById`` read
RocketMQ's. Without ``enable_msg_trace`` nothing of this exists: no hook, no thread.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from actors.client.config import ClientConfig
from actors.client.hub import ClientHub
from actors.client.trace_dispatcher import MAX_MSG_SIZE, SEND_TIMEOUT, TraceDispatcher

PRODUCE = "PRODUCE"
CONSUME = "CONSUME"
"""The dispatcher kinds (RocketMQ's TraceDispatcher.Type), part of the trace producer's group."""


def start_dispatcher(
    group: str,
    kind: str,
    trace_topic: str | None,
    config: ClientConfig,
    hub: ClientHub | None,
) -> TraceDispatcher | None:
    """A started dispatcher for the client of ``group`` (its name servers and ACL keys; ``hub``:
    the client's own hub when it was given one, else None for the shared one), or None when it
    could not start (logged: the client then runs untraced, as RocketMQ's does)."""

    def trace_producer(producer_group: str) -> Any:
        from actors.client.producer import Producer  # producer.py imports this module

        return Producer(
            producer_group,
            list(config.namesrv),
            send_timeout=SEND_TIMEOUT,
            max_message_size=MAX_MSG_SIZE,
            credentials=config.credentials,
            hub=hub,
        )

    dispatcher = TraceDispatcher(
        group, kind, producer_factory=trace_producer, trace_topic=trace_topic
    )
    try:
        return dispatcher.start()
    except Exception as exc:
        logger.opt(exception=exc).warning(
            "client: {}: the trace dispatcher did not start; no message traces", group
        )
        return None
