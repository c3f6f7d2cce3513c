"""A held pull (long polling) waits for something new to read: never for what the queue already
holds, which its Queue answers at once without yielding."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors.broker import pull_handler
from actors.broker.store_port import GetOutcome
from config import BrokerConfig
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import tag_hash
from runtime.session_handle import MAX_BACKLOG
from runtime.store.tail_guard import TailLossGuard
from tests.unit.pull_support import FakeStore, Session, pull_at

pytestmark = pytest.mark.timeout(30)


class Clock:
    """The pull handler's clock (``time.monotonic``), moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class DamagedRecordStore(FakeStore):
    """T/0 holds offsets 0 .. 11; the record at offset 5 fails its check and is not written yet
    (OFFSET_FOUND_NULL, as ``Queue._get`` answers it; a damaged one is skipped: below).
    ``wait_arrival`` behaves as the Queue's: at once when the
    queue holds a message past the offset, else after the timeout (nothing arrives)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(TailLossGuard())
        self.clock = clock
        self.reads = 0
        self.waited: list[int] = []

    def get_messages(self, group: str, topic: str, queue_id: int, offset: int, n: int, *_: Any):
        self.reads += 1
        if offset == 5:
            return GetOutcome("OFFSET_FOUND_NULL", 5, 0, self.end, ())
        return super().get_messages(group, topic, queue_id, offset, n)

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        self.waited.append(offset)
        if self.end > offset:
            if len(self.waited) > 100:
                self.clock.now += 60  # (ends a hold that spins: the test fails, not hangs)
            return True  # (the Queue resolves it inline: the caller does not yield)
        self.clock.now += timeout
        return False


def test_a_held_pull_at_a_damaged_record_waits_for_new_messages_not_in_a_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a queue whose record at offset 5 fails its check
    clock = Clock()
    monkeypatch.setattr(pull_handler, "time", clock)
    store = DamagedRecordStore(clock)
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=None, got_messages=0, got_by={}, got_bytes_by={}
    )
    # When a consumer's long poll (15 s) comes for offset 5
    answer = pull_at(ctx, 5, suspend_ms=15_000)
    # Then it is held waiting for a message past the queue's end (12), not for offset 5, which
    # the queue holds: that wait was answered at once, and the hold read the damaged record
    # again and again without yielding (the whole broker stalled for the suspend timeout)
    assert store.waited and all(offset >= 12 for offset in store.waited), store.waited[:5]
    assert store.reads == 4  # (the first read, then one per 5 s recheck)
    # And it is answered PULL_NOT_FOUND keeping the consumer's offset, as before
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 5


def test_a_pull_at_a_damaged_record_is_moved_past_it_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a queue whose record at offset 5 is damaged (``Queue._get`` skips it: nothing else
    # read, MESSAGE_WAS_REMOVING with nextBeginOffset 6, as RocketMQ's getMessage answers)
    clock = Clock()
    monkeypatch.setattr(pull_handler, "time", clock)
    store = DamagedRecordStore(clock)
    store.get_messages = lambda *a: GetOutcome("MESSAGE_WAS_REMOVING", 6, 0, store.end, ())
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=None, got_messages=0, got_by={}, got_bytes_by={}
    )
    # When a consumer's long poll comes for offset 5
    answer = pull_at(ctx, 5, suspend_ms=15_000)
    # Then it is not held: it is told to pull again at once, past the record
    assert answer.code == ResponseCode.PULL_RETRY_IMMEDIATELY, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 6
    assert store.waited == []


class ClosingStore(FakeStore):
    """T/0 holds offsets 0 .. 11 and nothing arrives; ``session`` closes during the second
    wait of a held pull."""

    def __init__(self, clock: Clock, session: Session) -> None:
        super().__init__(TailLossGuard())
        self.clock = clock
        self.session = session
        self.waits = 0

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        self.waits += 1
        assert self.waits < 100, "the hold goes on after its connection closed"
        if self.waits == 2:
            self.session.alive = False
        self.clock.now += timeout
        return False


def test_a_held_pull_ends_when_its_connection_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a long poll at the queue's end with a suspend timeout of years (a client's choice:
    # the broker takes it as given, as RocketMQ does)
    clock = Clock()
    monkeypatch.setattr(pull_handler, "time", clock)
    session = Session()
    store = ClosingStore(clock, session)
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=None, got_messages=0, got_by={}, got_bytes_by={}
    )
    # When its connection closes while it is held
    answer = pull_at(ctx, 12, suspend_ms=10**12, session=session)
    # Then the hold ends at its next recheck (it went on until the suspend timeout: a client
    # closing connections with thousands of such pulls piled up greenlets and waiters)
    assert store.waits == 2
    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer.remark
    assert int(answer.ext_fields["nextBeginOffset"]) == 12


class TaggedStore(FakeStore):
    """T/0 holds offsets 0 .. 11; while a pull is held, the group's heartbeat changes its
    subscription to tag B (``on_wait``) and a message tagged B arrives at offset 12."""

    def __init__(self, on_wait: Any) -> None:
        super().__init__(TailLossGuard())
        self.on_wait = on_wait

    def get_messages(self, group: str, topic: str, queue_id: int, offset: int, n: int, *a: Any):
        tag_codes = a[1] if len(a) > 1 else None
        if offset == 12 and self.end == 13:
            if tag_codes is not None and tag_hash("B") not in tag_codes:
                return GetOutcome("NO_MATCHED_MESSAGE", 13, 0, 13, ())
            return GetOutcome("FOUND", 13, 0, 13, (b"B",))
        return super().get_messages(group, topic, queue_id, offset, n)

    def wait_arrival(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        self.on_wait()
        self.end = 13
        return True


def test_a_held_pull_reads_with_the_subscription_its_group_has_when_woken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a group subscribed to tag A by its heartbeats (a Java push consumer's pulls send no
    # subscription), and its long poll held at the queue's end (12)
    subscription = {"expression": "A"}
    monkeypatch.setattr(
        pull_handler, "_subscription", lambda ctx, h: ("TAG", subscription["expression"], 0)
    )
    store = TaggedStore(lambda: subscription.update(expression="B"))
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=None, got_messages=0, got_by={}, got_bytes_by={}
    )
    ext = {
        "consumerGroup": "g",
        "topic": "T",
        "queueId": 0,
        "queueOffset": 12,
        "maxMsgNums": 4,
        "sysFlag": 2,  # SUSPEND, no SUBSCRIPTION
        "commitOffset": 0,
        "suspendTimeoutMillis": 15_000,
        "subVersion": 0,
    }
    request = RemotingCommand.request(RequestCode.PULL_MESSAGE, ext)
    # When, while it is held, the consumer subscribes to tag B instead (its heartbeat says so)
    # and a message tagged B arrives
    answer = pull_handler.pull(ctx, Session(), request)  # type: ignore[arg-type]
    # Then the pull finds it (it was read with tag A: PULL_RETRY_IMMEDIATELY past it, skipped)
    assert answer.code == ResponseCode.SUCCESS, (answer.code, answer.ext_fields)
    assert int(answer.ext_fields["nextBeginOffset"]) == 13


def test_a_pull_on_a_connection_that_does_not_read_its_answers_holds_no_messages() -> None:
    # Given a connection with more answers waiting to be written than its backlog bound
    store = FakeStore(TailLossGuard())
    ctx = SimpleNamespace(
        cfg=BrokerConfig(), store=store, ha=None, got_messages=0, got_by={}, got_bytes_by={}
    )
    session = Session()
    session.backlog = MAX_BACKLOG + 1  # type: ignore[attr-defined]
    # When it pulls messages the queue holds
    answer = pull_at(ctx, 0, session=session)
    # Then it is told to pull again later, with no messages (they would wait in memory too),
    # and nothing counts as read
    assert answer.code == ResponseCode.SYSTEM_BUSY, answer.remark
    assert not answer.body and "PULL_BACKLOG" in (answer.remark or "")
    assert ctx.got_messages == 0
    # and once its answers drain, the same pull gets them
    session.backlog = 0  # type: ignore[attr-defined]
    assert pull_at(ctx, 0, session=session).code == ResponseCode.SUCCESS
