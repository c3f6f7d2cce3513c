"""One producer's send machinery on the client's hub: its retry and selector settings, its
lanes of sends waiting for a route or a connection, the count of sends in flight; ``begin``
starts one ``SendOp`` (``actors.client.send``, which describes the send path and its retries).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gevent

from actors.client.instance import ClientInstance
from actors.client.latency_fault import LatencyFault
from actors.client.outgoing import Outgoing
from actors.client.selectors import RoundRobin, Selection
from actors.client.send import Done, SendOp
from actors.client.send_lanes import LaneKey


class Sender:
    """Hub-side send machinery of one producer."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        *,
        retries: int = 2,
        async_retries: int = 2,
        default_topic_queue_nums: int = 4,
        latency_fault: LatencyFault | None = None,
        retry_not_stored_ok: bool = False,
    ) -> None:
        self.instance = instance
        self.group = group
        self.retries = retries
        """RocketMQ's retryTimesWhenSendFailed: of sync sends."""
        self.async_retries = async_retries
        """RocketMQ's retryTimesWhenSendAsyncFailed: of async sends."""
        self.retry_not_stored_ok = retry_not_stored_ok
        """RocketMQ's retryAnotherBrokerWhenNotStoreOK (see the module docstring)."""
        self.latency_fault = latency_fault
        """Send latency fault tolerance, when on (None: off, RocketMQ's default)."""
        self.default_topic_queue_nums = str(default_topic_queue_nums)
        self.round_robin = RoundRobin()
        self.loop = gevent.get_hub().loop
        self.waiting: dict[LaneKey, deque[SendOp]] = {}
        """The lanes: the sends waiting for a route or a connection, first first; empty when
        nothing waits (what the fast path checks)."""
        self.in_flight = 0
        """Sends begun and not finished, of every kind (what a shutdown lets settle)."""
        self.stopped = False
        """The producer is stopping: a failed send ends at once, without retrying."""

    def begin(
        self,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        done: Done,
        *,
        oneway: bool = False,
        hooked: Any = None,
        asynchronous: bool = False,
    ) -> None:
        """Start a send (hub callback or greenlet). ``done(result, error)`` is called once.
        ``hooked``: a producer's send with hooks (``actors.client.send_hooks``), which reads the
        send's queue when it ends (``hooked.op``). ``asynchronous``: a ``send_async`` (retried
        ``async_retries`` times whatever its selection, after a failure with no answer only;
        never for a stored answer that is not SEND_OK)."""
        if oneway:
            retries = 0
        elif asynchronous:  # RocketMQ: a selector's or a queue's too, to the same queue
            retries = self.async_retries
        else:  # RocketMQ's sendSelectImpl and send(msg, mq) try a sync send once
            retries = self.retries if selection.default else 0
        op = SendOp(self, out, selection, timeout, 1 + retries, done, oneway)
        op.retry_not_ok = self.retry_not_stored_ok and not asynchronous
        op.asynchronous = asynchronous
        if hooked is not None:
            hooked.op = op
        self.in_flight += 1
        op.attempt()

    def fail_waiting(self, error: Exception) -> None:
        """The producer stopped (``stopped`` is set): every send waiting in a lane for a route
        or a connection fails now with ``error``, as the sends whose requests were out do. Its
        wait would end only with its timeout (the route table and the connections stopped
        without answering it), or never once the client's hub stops; the lane's greenlet
        passes over the sends that ended (``SendOp.proceed`` / ``write``)."""
        for lane in list(self.waiting.values()):
            for op in list(lane):
                op.fail(error)
