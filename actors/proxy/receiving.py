"""The consuming calls of ``MessagingService``: ReceiveMessage (a server stream), AckMessage,
ChangeInvisibleDuration and ForwardMessageToDeadLetterQueue, over the service's
``PopGroup``s (``actors.proxy.pop``).

A receive answers, as RocketMQ's proxy does, a status (OK, or MESSAGE_NOT_FOUND when nothing
came within the long-polling time: the client's, within ``ProxySettings.min_long_polling_s``
and ``long_polling_s``, 5 and 20 s, as RocketMQ's proxy clamps it), the messages, then a
delivery timestamp (a push consumer measures its receive-to-consume latency from it and drops
a batch that has none). It never waits past the client's deadline: one second before it at
the latest; nor once its call ended (cancelled, its connection closed: ``_CallEnd``). A receive with
``auto_renew`` (push consumers) hands out deliveries held for the calling client
(``PopGroup`` renews them while ``ProxyService.alive`` says it calls).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from actors.client.errors import BrokerError, ClientError
from actors.client.pull import subscription
from actors.proxy.convert import filter_of, incoming, ms_of, resource_name, set_ms
from actors.proxy.delivery import message_group
from actors.proxy.group_owners import owner_of
from actors.proxy.lite import LiteError
from actors.proxy.proto import Code, M
from actors.proxy.service import ProxyService, client_id, error_code, status

DEADLINE_MARGIN_S = 1.0


def receive_message(service: ProxyService, request: Any, context: Any) -> Iterator[Any]:
    group = resource_name(request.group)
    topic = resource_name(request.message_queue.topic)
    if not group or not topic:
        yield status(M.ReceiveMessageResponse(), Code.BAD_REQUEST, "group and topic required")
        return
    settings = service.settings
    invisible_ms = int(settings.invisible_s * 1000)
    if request.HasField("invisible_duration"):
        invisible_ms = ms_of(request.invisible_duration)
        if invisible_ms <= 0 or invisible_ms > MAX_INVISIBLE_MS:
            text = f"must be > 0 and at most {MAX_INVISIBLE_MS // 1000} s (12 hours)"
            yield status(M.ReceiveMessageResponse(), Code.ILLEGAL_INVISIBLE_TIME, text)
            return
    wait_s = settings.long_polling_s
    if request.HasField("long_polling_timeout"):  # (clamped, as RocketMQ's proxy does)
        asked = max(ms_of(request.long_polling_timeout) / 1000, settings.min_long_polling_s)
        wait_s = min(wait_s, asked)
    remaining = context.time_remaining()
    if remaining is not None:
        wait_s = min(wait_s, remaining - DEADLINE_MARGIN_S)
    batch = max(1, min(request.batch_size or 32, settings.batch_limit))
    try:
        known = service.groups.get(group)
        # a group new here is a lite group when its topic is LITE (its receive may come before
        # its client's settings: after a proxy restart, say)
        lite = known.lite if known is not None else service.topic_types.of(topic, True) == "LITE"
        owner = owner_of(context, client_id(context))
        pop = service.group(group, lite=lite, owner=owner)
        pop.seen_receiver(client_id(context))
        call = _CallEnd(context, pop, service.lite_groups if pop.lite else None)
        attempt = _attempt_of(request, context, topic)
        # a retried receive (its client never got the answer): the same messages again
        deliveries = _retried(service, pop, request, context, attempt, invisible_ms)
        if deliveries:
            pass
        elif pop.lite:  # its client's lite topics of the bind topic (``actors.proxy.lite_groups``)
            who = service.touch(context)
            if not who:
                yield status(M.ReceiveMessageResponse(), Code.CLIENT_ID_REQUIRED, "no client id")
                return
            started = time.monotonic()
            lites = service.lite_groups
            first = lites.receive_topics(group, who, max(wait_s, 0.0), call.ended)
            left = max(wait_s - (time.monotonic() - started), 0.0)
            holder = who if request.auto_renew else None

            def topics() -> list[str]:  # asked again each time it looks: new ones served
                return service.lite.topics_of(group, who)

            deliveries = (
                pop.receive(topics, batch, invisible_ms, left, holder, call.ended) if first else []
            )
        else:
            deliveries = _receive(
                service, pop, request, context, topic, batch, invisible_ms, wait_s, call.ended
            )
        call.waiting = False
        if attempt is not None:
            pop.remember(attempt, deliveries)
    except LiteError as exc:
        yield status(M.ReceiveMessageResponse(), exc.code, str(exc))
        return
    except _BadFilter as exc:
        # a bad expression, or brokers without SQL92 filters
        yield status(M.ReceiveMessageResponse(), Code.ILLEGAL_FILTER_EXPRESSION, str(exc))
        return
    except ClientError as exc:
        yield status(M.ReceiveMessageResponse(), error_code(exc), str(exc))
        return
    if not deliveries:
        yield status(M.ReceiveMessageResponse(), Code.MESSAGE_NOT_FOUND, "no new message")
        return
    written = 0
    try:
        if not context.is_active():
            return  # the client gave up (deadline, cancel) while the receive waited
        yield status(M.ReceiveMessageResponse(), Code.OK)
        topic_resource = request.message_queue.topic
        for delivery in deliveries:
            message = incoming(
                delivery.msg,
                topic_resource,
                receipt_handle=delivery.handle,
                attempt=delivery.attempt,
                invisible_ms=invisible_ms,
            )
            yield M.ReceiveMessageResponse(message=message)
            written += 1
        stamp = M.ReceiveMessageResponse()
        set_ms(stamp.delivery_timestamp, int(time.time() * 1000))
        yield stamp
    finally:
        # what never went out is visible again at once, not after its invisible duration
        # (or, auto-renewed, hours later), as RocketMQ's proxy nacks what it could not write;
        # but in a FIFO group not the rest of a message group whose first ones went out: it
        # comes due with them, in order (made visible now, it would overtake them), and is
        # not auto-renewed for a client that never had it (its message group stalled for
        # ``MAX_RENEW_S`` while the client lived)
        sent = {message_group(d.msg, d.topic) for d in deliveries[:written]} if pop.fifo else ()
        for delivery in deliveries[written:]:
            key = message_group(delivery.msg, delivery.topic) if pop.fifo else None
            if key is None or key not in sent:
                pop.change_invisible(delivery.handle, 0)
            else:
                pop.disown(delivery.handle)


MAX_INVISIBLE_MS = 12 * 3600 * 1000
"""RocketMQ's proxy's maxInvisibleTimeMills: 12 hours."""


def _attempt_of(request: Any, context: Any, topic: str) -> tuple[str, str, str] | None:
    """The receive's attempt (client id, topic, attempt id); None: it names none, or its
    client has no id."""
    who = client_id(context)
    if not who or not request.HasField("attempt_id") or not request.attempt_id:
        return None
    return who, topic, request.attempt_id


def _retried(
    service: ProxyService,
    pop: Any,
    request: Any,
    context: Any,
    attempt: tuple[str, str, str] | None,
    invisible_ms: int,
) -> list[Any]:
    """A retried receive's deliveries (``PopGroup.retry``); none: a receive as usual."""
    if attempt is None:
        return []
    who = service.touch(context)
    return pop.retry(attempt, invisible_ms, who if request.auto_renew and who else None)


class _CallEnd:
    """Whether a receive's gRPC call ended (its client cancelled it, its connection closed,
    its deadline passed: grpcio runs the context's callbacks then): a receive waiting then is
    woken and ends at once, and what it took meanwhile is made visible again (as anything
    not written; before, it waited out its long-polling time, up to 20 s, holding a gRPC
    worker and a place of ``held_calls``)."""

    def __init__(self, context: Any, pop: Any, lites: Any) -> None:
        self.pop = pop
        self.lites = lites
        """The service's ``LiteGroups`` (a lite receive may wait for its first lite topic)."""
        self.waiting = True
        """The receive still waits: waking the group's polls is of use."""
        self._ended = threading.Event()
        if not context.add_callback(self._end):
            self._ended.set()  # (over already)

    def ended(self) -> bool:
        return self._ended.is_set()

    def _end(self) -> None:
        self._ended.set()
        if self.waiting:  # (every call ends so: after its answer, nothing waits to be woken)
            self.pop.wake()
            if self.lites is not None:
                self.lites.wake()


class _BadFilter(Exception):
    """A SQL92 filter the brokers refused."""


def _receive(
    service: ProxyService,
    pop: Any,
    request: Any,
    context: Any,
    topic: str,
    batch: int,
    invisible_ms: int,
    wait_s: float,
    ended: Callable[[], bool],
) -> list[Any]:
    """A receive of a plain (not lite) consumer: its group pulls ``topic`` with its filter."""
    tags, sql = filter_of(request.filter_expression)
    if pop.expressions.get(topic) != (tags, sql):  # (a filter new to the group: read it once)
        try:
            subscription(tags, sql)  # (an expression that cannot be read: the client's mistake)
        except ClientError as exc:
            raise _BadFilter(str(exc)[:300]) from None
    if topic not in pop.expressions:
        service.admin.topic_route(topic)  # a topic nobody created: TOPIC_NOT_FOUND, once
    pop.set_priority(topic, service.topic_types.of(topic) == "PRIORITY")
    try:
        pop.subscribe(topic, tags, sql)
    except BrokerError as exc:
        if sql is None:
            raise
        raise _BadFilter(str(exc)) from None
    who = service.touch(context)
    holder = who if request.auto_renew and who else None
    return list(pop.receive(topic, batch, invisible_ms, max(wait_s, 0.0), holder, ended))


def ack_message(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.AckMessageResponse()
    service.touch(context)
    pop = service.groups.get(resource_name(request.group))
    topic = _topic_of(request)
    codes: list[int] = []
    for entry in request.entries:
        done = pop is not None and _ack(pop, entry.receipt_handle, topic)
        code = Code.OK if done else Code.INVALID_RECEIPT_HANDLE
        result = response.entries.add()
        result.message_id, result.receipt_handle = entry.message_id, entry.receipt_handle
        status(result, code)
        codes.append(code)
    if not codes:
        return status(response, Code.BAD_REQUEST, "no entry")
    if all(code == codes[0] for code in codes):
        return status(response, codes[0])
    return status(response, Code.MULTIPLE_RESULTS)


def _ack(pop: Any, handle: str, topic: str | None) -> bool:
    try:
        return bool(pop.ack(handle, topic))
    except ClientError:
        return False


def change_invisible_duration(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.ChangeInvisibleDurationResponse()
    ms = ms_of(request.invisible_duration)
    if ms < 0 or ms > MAX_INVISIBLE_MS:
        text = f"must be >= 0 and at most {MAX_INVISIBLE_MS // 1000} s (12 hours)"
        return status(response, Code.ILLEGAL_INVISIBLE_TIME, text)
    pop = service.groups.get(resource_name(request.group))
    suspend = request.HasField("suspend") and request.suspend
    topic = _topic_of(request)
    handle = (
        None if pop is None else pop.change_invisible(request.receipt_handle, ms, suspend, topic)
    )
    if handle is None:
        response.receipt_handle = request.receipt_handle
        return status(response, Code.INVALID_RECEIPT_HANDLE, "unknown or expired handle")
    response.receipt_handle = handle
    return status(response, Code.OK)


def forward_to_dead_letter_queue(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.ForwardMessageToDeadLetterQueueResponse()
    pop = service.groups.get(resource_name(request.group))
    done = None if pop is None else pop.dead_letter(request.receipt_handle, _topic_of(request))
    if done is None:
        return status(response, Code.INVALID_RECEIPT_HANDLE, "unknown or expired handle")
    if not done:
        return status(response, Code.INTERNAL_SERVER_ERROR, "the broker did not take it")
    return status(response, Code.OK)


def _topic_of(request: Any) -> str | None:
    """The topic a call on a receipt handle names (None: none), which must be its message's."""
    return (resource_name(request.topic) or None) if request.HasField("topic") else None
