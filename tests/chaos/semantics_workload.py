"""Workload pieces of the message-semantics scenarios (R18, R19), beside ``workload``'s.

- ``KeyedProducer``: a ``ProducerThread`` whose sync sends carry a sharding key (R18), so
  each key's values go to one queue in send order;
- ``PlannedProducer``: a ``ProducerThread`` whose sends carry the delay level their plan
  gives (R19). A delayed send's ack names the schedule queue it was parked in
  (``SCHEDULE_TOPIC_XXXX/<broker>/<level - 1>``, the offset the broker answers is that
  queue's), so its offset is not mistaken for one of the topic's;
- ``OrderlyConsumer``: an orderly ``PushConsumer`` (queue locks, one message at a time per
  queue) recording every listener call, and an ``assign`` event (``data["added"]`` /
  ``data["removed"]``) whenever its rebalancer is about to start, or has stopped, the pullers
  of some queues;
- ``RetryConsumer``: a concurrent ``PushConsumer`` whose listener fails the values its plan
  says (always, or once), recording every delivery with what the listener answered;
- ``DlqReader``: reads the group's dead-letter queue straight from the broker (PULL), from
  offset 0, recording each new record under its own group.

Reads carry their facts in ``data`` (``tests.chaos.semantics_checker``'s module docstring).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from actors.client import ConsumeFrom, ConsumeResult, Message, MessageExt, PushConsumer
from actors.client.orderly_rebalance import OrderlyRebalancer
from actors.client.rebalance import Rebalancer
from runtime.remoting import properties as P
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, RequestCode, ResponseCode
from runtime.store.topic_names import SCHEDULE_TOPIC
from tests.chaos import admin, transport
from tests.chaos.history import History, Read, classify_error, classify_result, queue_key
from tests.chaos.workload import ProducerThread, store_address

FLAG_SUBSCRIPTION = 4
"""PULL_MESSAGE's sysFlag bit: the request carries its subscription expression."""

CONSUMER_OPTIONS: dict[str, Any] = {
    "consume_from": ConsumeFrom.FIRST,
    "consume_threads": 4,
    "rebalance_interval": 2.0,
    "commit_interval": 1.0,
    "suspend_timeout": 2.0,
    "pull_error_delay": 0.5,
    "heartbeat_interval": 2.0,
    "route_refresh_interval": 2.0,
}
"""As ``consumer_worker``'s push consumers: short intervals, so a 6 s fault phase sees them."""


# -- producers ---------------------------------------------------------------------------------


class _RecordingProducer(ProducerThread):
    """``send_one`` through ``_message``: the message and send options for a value."""

    def _message(self, value: str) -> tuple[Message, dict[str, Any]]:
        raise NotImplementedError

    def _queue_of(self, value: str, result: Any) -> str:
        mq = result.queue
        return queue_key(mq.topic, mq.broker_name, mq.queue_id)

    def send_one(self) -> str:
        value = f"{self.name}-{self.counter}"
        self.counter += 1
        msg, options = self._message(value)
        op = self.history.invoke_send(self.name, value)
        try:
            result = self.producer.send(msg, timeout=self.send_timeout, **options)
        except Exception as exc:
            outcome = classify_error(exc)
            self.history.complete_send(self.name, op, value, outcome)
            return outcome.type
        outcome = classify_result(result)
        self.history.complete_send(
            self.name,
            op,
            value,
            outcome,
            queue=self._queue_of(value, result),
            offset=result.queue_offset,
            broker=store_address(result.offset_msg_id) or result.queue.broker_name,
        )
        return outcome.type


class KeyedProducer(_RecordingProducer):
    """Sync sends with the sharding key ``key(value)`` (also the message's key)."""

    def __init__(self, *args: Any, key: Callable[[str], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def _message(self, value: str) -> tuple[Message, dict[str, Any]]:
        k = self.key(value)
        return Message(self.topic, value, keys=[k]), {"sharding_key": k}


class PlannedProducer(_RecordingProducer):
    """Sync sends, round robin, with the delay level ``delay_level(value)`` (0: none)."""

    def __init__(self, *args: Any, delay_level: Callable[[str], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay_level = delay_level

    def _message(self, value: str) -> tuple[Message, dict[str, Any]]:
        return Message(self.topic, value, delay_level=self.delay_level(value)), {}

    def _queue_of(self, value: str, result: Any) -> str:
        level = self.delay_level(value)
        if not level:
            return super()._queue_of(value, result)
        return queue_key(SCHEDULE_TOPIC, result.queue.broker_name, level - 1)


# -- consumers ---------------------------------------------------------------------------------


def _recording_rebalancer(
    base: type[Rebalancer], announce: Callable[[str, list[str]], None]
) -> type[Rebalancer]:
    """``base`` announcing queues before their pullers start and after they stopped (the
    documented subclass hooks ``_start_pullers`` / ``_stop_pullers``)."""

    def names(mqs: list[Any]) -> list[str]:
        return sorted(queue_key(mq.topic, mq.broker_name, mq.queue_id) for mq in mqs)

    class Recording(base):  # type: ignore[misc, valid-type]
        def _start_pullers(self, mqs: list[Any]) -> list[Any]:
            if mqs:
                announce("added", names(mqs))  # before any of their messages is consumed
            return super()._start_pullers(mqs)

        def _stop_pullers(self, mqs: list[Any], persist: bool = True) -> None:
            super()._stop_pullers(mqs, persist)
            if mqs:
                announce("removed", names(mqs))

    Recording.__name__ = f"Recording{base.__name__}"
    return Recording


class _Consumer:
    """One in-process push consumer of the workload; ``stop`` shuts it down (committing)."""

    consumer: PushConsumer

    def __init__(self, history: History, group: str, name: str) -> None:
        self.history = history
        self.group = group
        self.name = name

    def announce(self, what: str, queues: list[str]) -> None:
        self.history.event("assign", self.name, **{what: queues})

    def record(self, msg: MessageExt, **data: Any) -> str:
        """Record one delivery (before the listener answers); returns the value."""
        value = msg.body.decode(errors="replace")
        topic = msg.topic
        retry = P.RETRY_TOPIC in msg.all_properties
        if retry:  # the client gave the message its original topic back; its queue is this
            topic = RETRY_PREFIX + self.group
        read = Read(queue_key(topic, msg.broker_name, msg.queue_id), msg.queue_offset, value)
        data.update(
            born=msg.born_timestamp,
            store=msg.store_timestamp,
            reconsume=msg.reconsume_times,
            retry=retry,
        )
        self.history.append(
            "ok", "read", self.name, group=self.group, mode="push", reads=[read], data=data
        )
        return value

    def start(self) -> _Consumer:
        self.consumer.start()
        self.history.event("consumer-start", self.name, mode="push")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.consumer.shutdown(timeout)


class OrderlyConsumer(_Consumer):
    """An orderly push consumer (see the module docstring); the listener always succeeds."""

    def __init__(self, history: History, namesrv: str, group: str, topic: str, name: str) -> None:
        super().__init__(history, group, name)
        announce = self.announce
        rebalancer = _recording_rebalancer(OrderlyRebalancer, announce)

        class Consumer(PushConsumer):
            def _rebalancer_class(self) -> type[Rebalancer]:
                return rebalancer

        self.consumer = Consumer(
            group,
            namesrv=namesrv,
            tls=transport.client_tls(),
            instance_name=name,
            orderly=True,
            relock_interval=2.0,
            suspend_delay=0.2,
            **CONSUMER_OPTIONS,
        )
        self.consumer.subscribe(topic, "*", self.listener)

    def listener(self, msg: MessageExt) -> ConsumeResult:
        self.record(msg, outcome="ok")
        return ConsumeResult.CONSUME_SUCCESS


class RetryConsumer(_Consumer):
    """A concurrent push consumer whose listener fails values by ``plan(value)``: ``"dlq"``
    always (so they go to the dead-letter queue after ``max_reconsume_times`` retries),
    ``"once"`` at their first delivery here (then succeeds), anything else never."""

    def __init__(
        self,
        history: History,
        namesrv: str,
        group: str,
        topic: str,
        name: str,
        *,
        plan: Callable[[str], str],
        max_reconsume_times: int,
    ) -> None:
        super().__init__(history, group, name)
        self.plan = plan
        self.failed_once: set[str] = set()
        self.lock = threading.Lock()
        self.consumer = PushConsumer(
            group,
            namesrv=namesrv,
            tls=transport.client_tls(),
            instance_name=name,
            max_reconsume_times=max_reconsume_times,
            reconsume_delay=0.5,
            **CONSUMER_OPTIONS,
        )
        self.consumer.subscribe(topic, "*", self.listener)

    def listener(self, msg: MessageExt) -> ConsumeResult:
        value = msg.body.decode(errors="replace")
        fate = self.plan(value)
        with self.lock:
            if fate == "dlq":
                ok = False
            elif fate == "once":
                ok = value in self.failed_once
                self.failed_once.add(value)
            else:
                ok = True
        self.record(msg, outcome="ok" if ok else "fail")
        return ConsumeResult.CONSUME_SUCCESS if ok else ConsumeResult.RECONSUME_LATER


# -- the dead-letter queue -------------------------------------------------------------------------


class DlqReader:
    """Reads ``%DLQ%<group>`` queue 0 from the broker (PULL), from offset 0 on; each batch is
    recorded as a poll of ``reader_group`` by process ``dlq``."""

    def __init__(
        self,
        history: History,
        group: str,
        broker_name: str,
        broker_address: Callable[[str], str | None],
        reader_group: str,
    ) -> None:
        self.history = history
        self.topic = DLQ_PREFIX + group
        self.broker_name = broker_name
        self.broker_address = broker_address
        self.reader_group = reader_group
        self.next = 0

    @property
    def queue(self) -> str:
        return queue_key(self.topic, self.broker_name, 0)

    def poll(self) -> int:
        """Read what is new; returns the number of records read. A broker that is down, or
        has no dead-letter queue yet, reads as nothing new."""
        address = self.broker_address(self.broker_name)
        if address is None:
            return 0
        try:
            end = admin.max_offset(address, self.topic, 0, timeout=2.0)
        except admin.AdminError:
            return 0
        got = 0
        while self.next < end:
            try:
                msgs, nxt = self._pull(address)
            except admin.AdminError:
                break
            if not msgs:
                break
            reads = [Read(self.queue, off, body.decode(errors="replace")) for off, body in msgs]
            self.history.reads("dlq", self.reader_group, "pull", reads)
            got += len(reads)
            self.next = max(nxt, msgs[-1][0] + 1)
        return got

    def _pull(self, address: str) -> tuple[list[tuple[int, bytes]], int]:
        """One PULL_MESSAGE from ``self.next`` carrying its subscription (``*``): the reader's
        group never sends heartbeats, and a broker answers a pull without a subscription from
        a group it does not know with SUBSCRIPTION_NOT_EXIST (``admin.pull`` sends none)."""
        from actors.client.pull import decode_messages

        ext = {
            "consumerGroup": self.reader_group,
            "topic": self.topic,
            "queueId": 0,
            "queueOffset": self.next,
            "maxMsgNums": 256,
            "sysFlag": FLAG_SUBSCRIPTION,
            "commitOffset": 0,
            "suspendTimeoutMillis": 0,
            "subscription": "*",
            "subVersion": 0,
        }
        cmd = admin.call(address, RequestCode.PULL_MESSAGE, ext, timeout=5.0)
        if cmd.code in (ResponseCode.PULL_NOT_FOUND, ResponseCode.PULL_RETRY_IMMEDIATELY):
            return [], int(cmd.ext_fields.get("nextBeginOffset", self.next))
        if cmd.code != ResponseCode.SUCCESS:
            raise admin.AdminError(f"pull {self.topic}: code {cmd.code} {cmd.remark or ''}")
        msgs = decode_messages(cmd.body, "")
        return [(m.queue_offset, m.body) for m in msgs], int(cmd.ext_fields["nextBeginOffset"])
