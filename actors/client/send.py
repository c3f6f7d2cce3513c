"""The send path: one ``SendOp`` per send, driven by callbacks on the client's hub.

A send does not cost a greenlet or an actor message of its own when the route and the session
are already known: ``SendOp.begin`` runs as a hub callback, picks a queue, writes the request
through the session actor and links the response future; the response (or a libev timer)
completes it.

A send that must wait for a route or a connection joins a lane (``actors.client.send_lanes``),
which keeps one producer's sends in invoke order.

Retries, as RocketMQ's (``DefaultMQProducerImpl.sendDefaultImpl`` for sync sends,
``MQClientAPIImpl.onExceptionImpl`` for async ones), all within the send's one overall timeout;
never of oneway sends:

- a sync send with the default selector: up to ``retries`` (retryTimesWhenSendFailed) more
  attempts after a connection error, a timeout with time left, a missing route, or one of the
  response codes RocketMQ retries (TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE, SYSTEM_ERROR,
  SYSTEM_BUSY, NO_PERMISSION, ...); a sync send with a selector or an explicit queue is tried
  once;
- an async send (any selection): up to ``async_retries`` (retryTimesWhenSendAsyncFailed) more
  attempts after a connection error, a timeout with time left or a missing route only; a
  broker's refusal (any error code) is its outcome at once. With a selector or an explicit queue
  the retry goes to the same queue (RocketMQ resends the same request to the same broker).

A default-selector retry goes to a queue of a broker other than the one that failed when there
is one. After a missing route or a failed connect a retry first waits 0.2 s times the attempt
number (a cluster still starting, a broker restarting). Every failure also refreshes the
topic's route.

What a failed send raises: its one error when it was tried once; the error itself when it is
not retryable (a broker's refusal such as MESSAGE_ILLEGAL, as RocketMQ throws its
MQBrokerException), with the earlier attempts' failures as its ``__cause__`` (a
``SendFailedError``); ``SendFailedError`` with every attempt's error when retries ran out.

With ``retry_another_broker_when_not_store_ok`` (RocketMQ's retryAnotherBrokerWhenNotStoreOK,
off by default), a stored sync send (never an async one, as in RocketMQ) answered
FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE is sent again to another broker
while attempts and time are left; when no later attempt is SEND_OK, the last such result is
returned (a copy is stored on every broker that answered one).

With send latency fault tolerance on (``Producer(send_latency_fault_enable=True)``, RocketMQ's
``sendLatencyFaultEnable``), each attempt's latency or failure is noted for its broker
(``actors.client.latency_fault``) and the default selector prefers brokers not at fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loguru import logger

from actors.client.config import LANGUAGE
from actors.client.errors import (
    BrokerError,
    ClientError,
    ClientStateError,
    ConnectError,
    MessageInvalidError,
    NoRouteError,
    RequestTimeoutError,
    SendFailedError,
)
from actors.client.message import Message, MessageQueue, SendResult, SendStatus
from actors.client.outgoing import Outgoing
from actors.client.routes import TopicRoute
from actors.client.selectors import Selection, check_selected
from actors.client.send_answer import RETRY_CODES, STATUS_BY_CODE, send_result
from actors.client.send_lanes import ROUTE, SESSION, TIMER_SLACK, open_lane
from runtime.actor import GeventFuture
from runtime.errors import ProtocolError
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand, next_opaque
from runtime.remoting.headers import DEFAULT_TOPIC

if TYPE_CHECKING:
    from actors.client.sender import Sender

Done = Callable[[Any, "BaseException | None"], None]

ROUTE_RETRY_DELAY = 0.2
"""Seconds before retrying a send that found no route or no connection (times the attempt)."""


class SendOp:
    """One send in flight. See the module docstring."""

    __slots__ = (
        "_address",
        "_finished",
        "_future",
        "_opaque",
        "_session",
        "_started",
        "_timer",
        "asynchronous",
        "attempts_left",
        "deadline",
        "done",
        "errors",
        "last_broker",
        "mq",
        "not_ok",
        "oneway",
        "out",
        "retry_not_ok",
        "selection",
        "sender",
        "timeout",
    )

    def __init__(
        self,
        sender: Sender,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        attempts: int,
        done: Done,
        oneway: bool,
    ) -> None:
        self.sender = sender
        self.out = out
        self.selection = selection
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.attempts_left = attempts
        self.done = done
        self.oneway = oneway
        self.errors: tuple[ClientError, ...] = ()
        self.last_broker: str | None = None
        self.mq: MessageQueue | None = None
        self._finished = False
        self._timer: Any = None
        self._session: Any = None
        self._opaque = 0
        self._address = ""
        self._future: GeventFuture[RemotingCommand] | None = None
        self._started = 0.0
        self.not_ok: SendResult | None = None
        """The last result that was stored but not SEND_OK (retried elsewhere when allowed)."""
        self.retry_not_ok = False
        """A stored answer that is not SEND_OK is retried on another broker (a sync send of a
        producer with retryAnotherBrokerWhenNotStoreOK)."""
        self.asynchronous = False
        """A ``send_async``'s (or a request's): a broker's refusal is never retried."""

    # -- steps --------------------------------------------------------------------------

    def attempt(self) -> None:
        try:
            self.attempts_left -= 1
            sender = self.sender
            topic = self.out.topic
            if sender.waiting:
                lane = sender.waiting.get((ROUTE, topic))
                if lane is not None:  # earlier sends wait for this route: behind them
                    lane.append(self)
                    return
            route = sender.instance.routes.get(topic)
            if route is None:
                open_lane(sender, (ROUTE, topic), self)
                return
            self._send_on(route)
        except Exception as exc:
            self.fail(exc)

    def proceed(self, route: TopicRoute) -> None:
        """Go on once the route is known (a route lane)."""
        if self._finished:  # failed while it waited (the producer stopped)
            return
        try:
            self._send_on(route)
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, ClientError):
            self._failed(exc)
        else:  # a bug: never leave the caller waiting
            logger.opt(exception=exc).error("client: send failed unexpectedly")
            self._finish(None, exc)

    def _select(self, route: TopicRoute) -> MessageQueue:
        sel = self.selection
        if self.mq is not None and not sel.default:
            return self.mq  # an async send's retry: the queue chosen first, as RocketMQ's
        if sel.queue is not None:  # sent there whatever the route says, as RocketMQ's
            mq = sel.queue
            if mq.topic != self.out.topic:
                raise MessageInvalidError("queue", f"queue of topic {mq.topic!r}")
            return mq
        queues = route.publish
        if not queues:
            raise NoRouteError(self.out.topic, "no writable queue on any master")
        if sel.selector is not None:
            msg = sel.message if sel.message is not None else Message(self.out.topic, b"")
            return check_selected(sel.selector(queues, msg), queues)
        fault = self.sender.latency_fault
        available = None if fault is None else fault.available
        return self.sender.round_robin.select(queues, self.last_broker, available)

    def _send_on(self, route: TopicRoute) -> None:
        mq = self._select(route)
        self.mq = mq
        address = route.master(mq.broker_name)
        if address is None:
            raise NoRouteError(self.out.topic, f"broker {mq.broker_name} has no master")
        sender = self.sender
        if sender.waiting:
            lane = sender.waiting.get((SESSION, address))
            if lane is not None:  # earlier sends wait for this connection: behind them
                lane.append(self)
                return
        session = sender.instance.remoting.cached(address)
        if session is None:
            open_lane(sender, (SESSION, address), self)
            return
        self._write(session, address, mq)

    def write(self, session: Any, address: str) -> None:
        """Write once the session is there (a session lane)."""
        if self._finished:  # failed while it waited (the producer stopped)
            return
        try:
            assert self.mq is not None
            self._write(session, address, self.mq)
        except Exception as exc:
            self.fail(exc)

    def _write(self, session: Any, address: str, mq: MessageQueue) -> None:
        out = self.out
        sender = self.sender
        ext = {
            "a": sender.group,
            "b": out.topic,
            "c": DEFAULT_TOPIC,
            "d": sender.default_topic_queue_nums,
            "e": str(mq.queue_id),
            "f": str(out.sys_flag),
            "g": str(int(time.time() * 1000)),
            "h": str(out.flag),
            "i": out.properties,
            "j": str(out.reconsume_times),
            "k": "false",
            "m": "true" if out.batch else "false",
            "n": mq.broker_name,
        }
        if out.max_reconsume_times is not None:
            ext["l"] = str(out.max_reconsume_times)
        if out.batch:
            code = RequestCode.SEND_BATCH_MESSAGE
        elif out.reply:
            code = RequestCode.SEND_REPLY_MESSAGE_V2
        else:
            code = RequestCode.SEND_MESSAGE_V2
        cmd = RemotingCommand(
            code=int(code),
            language=LANGUAGE,
            opaque=next_opaque(),
            flag=2 if self.oneway else 0,
            ext_fields=ext,
            body=out.body,
        )
        if self.oneway:
            if session.send_oneway(cmd):
                self._finish(None, None)
            else:
                self._failed(ConnectError(address, "connection closed"))
            return
        remaining = self.remaining()
        if remaining <= 0:
            self._failed(RequestTimeoutError("send", self.timeout, address))
            return
        self._session = session
        self._opaque = cmd.opaque
        self._address = address
        if sender.latency_fault is not None:
            self._started = time.monotonic()
        future = self._future = session.request(cmd)
        timer = self._timer = sender.loop.timer(remaining)
        timer.start(self._timed_out, address)
        future.add_done_callback(self._answered)

    def _answered(self, future: GeventFuture[RemotingCommand]) -> None:
        """The answer to the attempt in flight (its queue ``mq``, its broker ``_address``). An
        earlier attempt's answer, set in the loop turn its timeout fired in, is dropped: that
        attempt already failed and the next one is in flight."""
        if future is not self._future:
            return
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._finished:
            return
        address, mq = self._address, self.mq
        assert mq is not None
        result = future._result
        if not result.successful():
            exc = result.exception
            if isinstance(exc, ProtocolError):  # not sent: its header passes the limit
                self._failed(MessageInvalidError("header", exc.reason))
            else:
                self._failed(ConnectError(address, f"connection lost: {exc}"))
            return
        response: RemotingCommand = result.value
        status = STATUS_BY_CODE.get(response.code)  # type: ignore[call-overload]
        fault = self.sender.latency_fault
        if fault is not None and status is not None:
            fault.update(mq.broker_name, (time.monotonic() - self._started) * 1000)
        if status is None:
            self._failed(BrokerError(response.code, response.remark, address, "send"))
            return
        result = send_result(status, self.out.msg_id, mq, response.ext_fields)
        if (
            status is not SendStatus.SEND_OK
            and self.retry_not_ok
            and self.attempts_left > 0
            and self.remaining() > TIMER_SLACK
        ):
            self.not_ok = result
            self.last_broker = mq.broker_name
            logger.debug("client: send to {} answered {}; retrying", self.out.topic, status)
            self.attempt()
            return
        self._finish(result, None)

    def _retry_later(self, timer: Any) -> None:
        timer.close()
        if not self._finished:
            self.attempt()

    def _timed_out(self, address: str) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._finished:
            return
        if self._session is not None:
            self._session._pending.pop(self._opaque, None)
        self._failed(RequestTimeoutError("send", self.timeout, address))

    # -- outcomes ---------------------------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000 if self._started else 0.0

    def _failed(self, error: ClientError) -> None:
        if self._finished:
            return
        self.errors = (*self.errors, error)
        if self.sender.stopped:  # its connections are closing: nothing to retry on
            self._finish(None, ClientStateError(f"send to {self.out.topic!r}", "stopping"))
            return
        instance = self.sender.instance
        if not isinstance(error, MessageInvalidError):
            instance.refresh_route(self.out.topic, allow_default=True)
        if self.mq is not None:
            self.last_broker = self.mq.broker_name
            fault = self.sender.latency_fault
            if fault is not None and not isinstance(error, MessageInvalidError):
                fault.update(self.mq.broker_name, self._elapsed_ms(), isolation=True)
        retryable = self._retryable(error)
        # A timeout spent the budget (its timer may fire a little early: the loop's clock is
        # cached); a retry with only that slack left would only send the message again.
        if retryable and self.attempts_left > 0 and self.remaining() > TIMER_SLACK:
            logger.debug("client: send to {} failed ({}); retrying", self.out.topic, error)
            if isinstance(error, NoRouteError | ConnectError):
                # Nothing to gain from asking again at once (a cluster still starting, a broker
                # restarting): back off a little, within the send's time budget.
                delay = min(ROUTE_RETRY_DELAY * len(self.errors), self.remaining() / 2)
                timer = self.sender.loop.timer(max(delay, 0.0))
                timer.start(self._retry_later, timer)
                return
            self.attempt()
            return
        if self.not_ok is not None:  # an earlier attempt stored it: that is the outcome
            self._finish(self.not_ok, None)
        elif len(self.errors) == 1:
            self._finish(None, error)
        elif not retryable:  # raised itself, as RocketMQ throws a refusal's MQBrokerException
            error.__cause__ = SendFailedError(self.out.topic, list(self.errors[:-1]))
            self._finish(None, error)
        else:
            self._finish(None, SendFailedError(self.out.topic, list(self.errors)))

    def _retryable(self, error: ClientError) -> bool:
        """Worth another attempt (attempts and time allowing): nothing answered (a connection
        error, a timeout, no route), or a sync send's refusal with a code RocketMQ retries
        (an async send's refusal is its outcome: onExceptionImpl without a retry)."""
        if isinstance(error, ConnectError | RequestTimeoutError | NoRouteError):
            return True
        if self.asynchronous:
            return False
        return isinstance(error, BrokerError) and error.code in RETRY_CODES

    def _finish(self, result: SendResult | None, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        self.sender.in_flight -= 1
        try:
            self.done(result, error)
        except Exception:
            logger.exception("client: send completion failed")
