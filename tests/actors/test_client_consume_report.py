"""actors.client.consume: a finished listener task reports to its puller. In a patched program
the task runs in a greenlet of the hub, so an idle puller handles the report right there (no
turn of its own loop); otherwise the report goes through the hub as a callback."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pytest

from actors.client.consume import BatchListener, ConsumeService
from actors.client.consume_directly import consume_directly
from actors.client.hub import ClientHub
from actors.client.message import ConsumeResult, MessageExt
from actors.client.puller_messages import Consumed
from runtime.actor import GeventActor

pytestmark = pytest.mark.timeout(20)


class _Puller(GeventActor):
    """Stands in for a QueuePuller: records what it handled and in which greenlet."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: list[tuple[Any, Any]] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, gevent.event.Event):  # "stay busy until it is set"
            message.wait(5)
            return None
        self.handled.append((message, gevent.getcurrent()))
        return None


def _service(hub: ClientHub) -> ConsumeService:
    outcomes = {0: ConsumeResult.CONSUME_SUCCESS, 1: ConsumeResult.RECONSUME_LATER}
    return ConsumeService(hub, {"T": lambda m: outcomes[m.queue_offset % 2]}, threads=1)


def test_a_task_in_a_hub_greenlet_reports_to_an_idle_puller_inline() -> None:
    # Given a patched-mode consume service and an idle puller
    hub = ClientHub("test-consume-hub", patched=True).start()
    ref = _Puller.start()
    puller = ref._actor_weakref()
    service = _service(hub)
    gevent.sleep(0)  # the puller's loop is running: it is idle
    try:
        # When a task consumes two messages in a greenlet of the hub
        msgs = [
            MessageExt("T", b"a", "", queue_offset=4),
            MessageExt("T", b"b", "", queue_offset=5),
        ]
        task = gevent.spawn(service._run, ref, 7, msgs)
        task.join(5)
        # Then the puller handled the outcome in that greenlet, not in its own loop
        assert puller.handled == [(Consumed(7, [4], [5]), task)]
    finally:
        ref.stop()
        service.shutdown()
        hub.stop()


def test_a_busy_puller_gets_the_report_as_a_message() -> None:
    # Given a patched-mode consume service and a puller that is handling something else
    hub = ClientHub("test-consume-hub", patched=True).start()
    ref = _Puller.start()
    puller = ref._actor_weakref()
    service = _service(hub)
    gevent.sleep(0)
    try:
        release = gevent.event.Event()
        ref.tell(release)
        gevent.sleep(0)  # the puller is now inside that handler
        # When a task finishes
        task = gevent.spawn(service._run, ref, 3, [MessageExt("T", b"a", "", queue_offset=2)])
        task.join(5)
        # Then nothing ran inline; once the puller is free its own loop handles the report
        assert puller.handled == []
        release.set()
        ref.ask("probe", timeout=5)  # answered after the report queued before it
        assert [(m, g is task) for m, g in puller.handled] == [
            (Consumed(3, [2], []), False),
            ("probe", False),
        ]
    finally:
        ref.stop()
        service.shutdown()
        hub.stop()


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
def test_a_listener_raising_a_gevent_timeout_counts_as_reconsume_later(batch: bool) -> None:
    # Given a listener that raises a gevent.Timeout (a BaseException: ``with
    # gevent.Timeout(5):`` around a call raises the Timeout itself) for one message
    hub = ClientHub("test-consume-hub", patched=True).start()
    ref = _Puller.start()
    puller = ref._actor_weakref()

    def fn(msg: MessageExt) -> ConsumeResult:
        if msg.queue_offset == 5:
            raise gevent.Timeout(1)
        return ConsumeResult.CONSUME_SUCCESS

    listener: Any = BatchListener(lambda msgs, _ctx: fn(msgs[0])) if batch else fn
    service = ConsumeService(hub, {"T": listener}, threads=1)
    gevent.sleep(0)
    try:
        # When a task consumes it between two others
        msgs = [MessageExt("T", b"m", "", queue_offset=o) for o in (4, 5, 6)]
        task = gevent.spawn(service._run, ref, 9, msgs)
        task.join(5)
        # Then the task reported all three, that one as failed (to be sent back), instead of
        # dying with nothing reported (the queue's offset held at 5 for good)
        assert task.successful()
        assert [m for m, _g in puller.handled] == [Consumed(9, [4, 6], [5])]
    finally:
        ref.stop()
        service.shutdown()
        hub.stop()


def test_a_listener_consumed_directly_raising_a_gevent_timeout_answers_an_exception() -> None:
    # Given a listener that lets a gevent.Timeout escape
    hub = ClientHub("test-consume-hub", patched=True).start()

    def fn(msg: MessageExt) -> ConsumeResult:
        raise gevent.Timeout(1)

    service = ConsumeService(hub, {"T": fn}, threads=1)
    try:
        # When an admin tool has a message consumed directly (CONSUME_MESSAGE_DIRECTLY)
        result = consume_directly(service, MessageExt("T", b"m", "", queue_offset=1), False)
        # Then the answer says the listener raised (RocketMQ's CR_THROW_EXCEPTION), instead of
        # the request going unanswered until the client's 30 s wait ran out
        assert result.consume_result == "CR_THROW_EXCEPTION"
        assert result.remark is not None and result.remark.startswith("Timeout")
    finally:
        service.shutdown()
        hub.stop()
