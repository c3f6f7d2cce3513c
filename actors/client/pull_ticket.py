"""One pull in flight: where it goes, the PULL_MESSAGE itself, and how the puller drops it.

``pull_once`` runs in a pull greenlet of a ``QueuePuller`` (``actors.client.puller``): it picks
the broker to read from (RocketMQ's pullFromWhichNodeTable: the broker id the last response
suggested, a slave when the consumer is far behind; else the master, else any slave), sends
one PULL_MESSAGE (SUSPEND: the broker may hold it ``suspend_ms``) and decodes the answer.

``PullTicket`` is the puller's handle on that pull. The greenlet is reused and never killed:
``cancel`` (stop, seek, quiesce) marks the pull dropped, so its outcome is never told, and
wakes its wait for the broker's answer at once with ``PullCancelled`` (a long poll may be held
15 s), forgetting the request on its session. A pull cancelled before its request is written
(while its route or connection comes) is never written: its commit offset is stale by then.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from actors.client.errors import BrokerError, NoRouteError
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue, PullStatus
from actors.client.pull import PullResult, TagFilter, decode_pull_response, pull_header
from actors.client.puller_messages import PullOptions
from actors.client.remoting import forget, make_request
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand


class PullCancelled(Exception):
    """The puller dropped this pull (stop, seek, quiesce) while it waited for the broker."""


class PullTicket:
    """One pull in flight, as the puller sees it (see the module docstring)."""

    __slots__ = ("_waiting", "cancelled")

    def __init__(self) -> None:
        self.cancelled = False
        self._waiting: tuple[Any, int, Any] | None = None  # (session, opaque, future)

    def sent(self, handle: Any, opaque: int, future: Any) -> None:
        self._waiting = (handle, opaque, future)

    def cancel(self) -> None:
        self.cancelled = True
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            handle, opaque, future = waiting
            forget(handle, opaque)
            if not future.done():
                future.set_exception((PullCancelled, PullCancelled(), None))


def pull_once(
    instance: ClientInstance,
    group: str,
    mq: MessageQueue,
    *,
    offset: int,
    commit: int,
    tag_filter: TagFilter,
    options: PullOptions,
    suggested: int,
    ticket: PullTicket,
) -> PullResult:
    """One PULL_MESSAGE of ``mq`` from ``offset`` (``commit``: the committable offset it
    carries, -1 for none). Blocks this greenlet. Raises ``PullCancelled`` once ``ticket`` is
    cancelled, a ``ClientError`` (BrokerError on a refusal) or a ``ProtocolError``."""
    route = instance.route(mq.topic)
    address = (
        route.brokers.get(mq.broker_name, {}).get(suggested)
        or route.master(mq.broker_name)
        or route.any_address(mq.broker_name)
    )
    if address is None:
        raise NoRouteError(mq.topic, f"no address for {mq.broker_name}")
    ext = pull_header(
        group,
        mq,
        offset,
        max_nums=options.batch_size,
        expression=tag_filter.expression,
        expression_type=tag_filter.expression_type,
        commit_offset=commit,
        suspend_ms=options.suspend_ms,
        lite=options.lite,
    )
    cmd = make_request(RequestCode.PULL_MESSAGE, ext)
    timeout = options.suspend_ms / 1000 + 15.0

    def unless_cancelled() -> RemotingCommand:
        # checked right before the write (after the route and the connection came): a pull
        # dropped meanwhile is never written, since its commit offset is stale by then (the
        # puller's last offset was persisted as it stopped, and the queue may have moved on)
        if ticket.cancelled:
            raise PullCancelled
        return cmd

    response = instance.remoting.invoke(address, unless_cancelled, timeout, "pull", ticket.sent)
    result = decode_pull_response(response, mq, offset, tag_filter)
    if result is None:
        raise BrokerError(response.code, response.remark, address, "pull")
    if result.status is PullStatus.OFFSET_ILLEGAL:  # which broker moved it, and why
        logger.warning(
            "client: {} says offset {} of {} is illegal ({}); moving to {}",
            address,
            offset,
            mq,
            response.remark,
            result.next_begin_offset,
        )
    return result
