"""Lite topics in the proxy: names (actors/proxy/lite.py), each client's subscriptions
(lite_subscriptions.py), a lite group's receives (pop.py), the settings and messages lite push
consumers get; topic attributes (runtime/store/topic_attributes.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from actors.client.errors import BrokerError, ClientError, NoRouteError
from actors.client.message import MessageExt
from actors.proxy import lite as lite_module
from actors.proxy.convert import incoming
from actors.proxy.lite import (
    LiteError,
    LiteTopics,
    TopicTypes,
    TopicTypeUnknownError,
    lite_problem,
    lmq_name,
)
from actors.proxy.lite_calls import _spelled_out
from actors.proxy.lite_groups import LiteGroups
from actors.proxy.lite_subscriptions import EXPIRE_S, LiteSubscriptions
from actors.proxy.pop import DROPPED_S, PopGroup
from actors.proxy.proto import ClientType, Code, LiteSubscriptionAction, M, MessageType
from actors.proxy.settings import ProxySettings, reply_settings
from runtime.remoting.properties import UNIQ_KEY, encode_properties
from runtime.store.topic_attributes import apply_attributes, message_type
from runtime.store.topic_names import split_lmq, topic_problem
from tests.client_support import wait_until
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer

ADD, REMOVE = LiteSubscriptionAction.PARTIAL_ADD, LiteSubscriptionAction.PARTIAL_REMOVE
ALL, NONE = LiteSubscriptionAction.COMPLETE_ADD, LiteSubscriptionAction.COMPLETE_REMOVE


# -- names -------------------------------------------------------------------------------------


def test_a_lite_topic_is_stored_in_its_own_lmq_topic() -> None:
    name = lmq_name("Chats", "session-1_A")
    assert name == "%LMQ%$Chats$session-1_A"
    assert topic_problem(name) is None  # the broker takes it
    assert split_lmq(name) == ("Chats", "session-1_A")
    assert split_lmq("Chats") is None
    assert split_lmq("%LMQ%$nolite") is None


@pytest.mark.parametrize(
    ("lite", "says"),
    [
        ("", "whitespace"),
        ("   ", "whitespace"),
        ("a" * 65, "max size 64"),
        ("é" * 33, "max size 64"),  # 66 bytes in UTF-8
        ("has$dollar", "alphanumeric"),
        ("per%cent", "alphanumeric"),
        ("spa ce", "alphanumeric"),
    ],
)
def test_lite_topic_names_rocketmq_refuses(lite: str, says: str) -> None:
    problem = lite_problem(lite)
    assert problem is not None and says in problem
    with pytest.raises(LiteError) as caught:
        lmq_name("Chats", lite)
    assert caught.value.code == Code.ILLEGAL_LITE_TOPIC


def test_a_parent_and_lite_topic_too_long_for_a_topic_name_are_refused() -> None:
    with pytest.raises(LiteError) as caught:
        lmq_name("P" * 100, "a" * 30)
    assert caught.value.code == Code.ILLEGAL_LITE_TOPIC
    assert "127" in str(caught.value)


def test_other_topics_still_may_not_hold_a_dollar() -> None:
    assert topic_problem("Chats$x") is not None


# -- topic attributes --------------------------------------------------------------------------


def test_attributes_set_change_and_remove_as_rocketmq_writes_them() -> None:
    attrs, problem = apply_attributes({}, "+message.type=LITE,+lite.topic.expiration=60")
    assert problem is None and attrs == {"message.type": "LITE", "lite.topic.expiration": "60"}
    attrs, problem = apply_attributes(attrs, "-lite.topic.expiration")
    assert problem is None and attrs == {"message.type": "LITE"}
    assert apply_attributes(attrs, None) == (attrs, None)
    assert message_type(attrs) == "LITE"
    assert message_type({}) == "MIXED"
    assert message_type({"message.type": "UNSPECIFIED"}) == "MIXED"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("+message.type=BOGUS", "must be one of"),
        ("+lite.topic.expiration=soon", "whole number"),
        ("+lite.topic.expiration=43201", "43200"),
        ("+queue.type=X", "unsupported"),
        ("-queue.type", "unsupported"),
        ("message.type=LITE", "must start with +"),
        ("+message.type", "+key=value"),
    ],
)
def test_bad_attributes_are_refused_and_nothing_changes(text: str, says: str) -> None:
    current = {"message.type": "NORMAL"}
    attrs, problem = apply_attributes(current, text)
    assert attrs == current
    assert problem is not None and says in problem


# -- subscriptions -----------------------------------------------------------------------------


def test_partial_and_complete_changes_answer_what_the_group_starts_and_stops() -> None:
    subs = LiteSubscriptions()
    s1, s2, s3 = (lmq_name("P", s) for s in ("s1", "s2", "s3"))
    change = subs.sync("G", "c1", "P", ADD, ["s1", "s2"])
    assert (change.started, change.stopped) == ([s1, s2], [])
    change = subs.sync("G", "c2", "P", ADD, ["s2"])
    assert (change.started, change.stopped) == ([], [])  # c1 has it already
    change = subs.sync("G", "c1", "P", REMOVE, ["s2"])
    assert (change.started, change.stopped) == ([], [])  # c2 still has it
    assert subs.topics_of("G", "c1") == [s1]
    change = subs.sync("G", "c1", "P", ALL, ["s3"])  # the whole set: s1 goes, s3 comes
    assert (change.started, change.stopped) == ([s3], [s1])
    change = subs.sync("G", "c2", "P", NONE, [])
    assert (change.started, change.stopped) == ([], [s2])
    assert subs.consumed("G") == {s3}
    assert subs.count("G", "c1") == 1 and subs.count("G", "c2") == 0


def test_a_bad_name_changes_nothing() -> None:
    subs = LiteSubscriptions()
    subs.sync("G", "c1", "P", ADD, ["s1"])
    with pytest.raises(LiteError):
        subs.sync("G", "c1", "P", ADD, ["s2", "bad name"])
    assert subs.topics_of("G", "c1") == [lmq_name("P", "s1")]


def test_sets_not_sent_again_expire_and_a_terminated_client_leaves() -> None:
    clock = FakeClock()
    subs = LiteSubscriptions(clock=clock)
    subs.sync("G", "c1", "P", ALL, ["s1"])
    subs.sync("H", "c2", "P", ALL, ["s2"])
    clock.advance(EXPIRE_S - 1)
    subs.sync("H", "c2", "P", ALL, ["s2"])  # c2 sends its set again in time
    assert subs.expire() == {}
    clock.advance(2)
    expired = subs.expire()
    assert list(expired) == ["G"] and expired["G"].stopped == [lmq_name("P", "s1")]
    dropped = subs.drop_client("c2")
    assert dropped["H"].stopped == [lmq_name("P", "s2")]
    assert subs.consumed("G") == subs.consumed("H") == set()


# -- a lite group's receives -------------------------------------------------------------------


def _lite_msg(offset: int, lite: str) -> MessageExt:
    props = encode_properties({UNIQ_KEY: f"ID{lite}{offset}"})
    return MessageExt(
        lmq_name("P", lite), b"%s:%d" % (lite.encode(), offset), props, queue_offset=offset
    )


def _lite_group() -> tuple[PopGroup, FakeConsumer, FakeClock]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    pop = PopGroup("G", consumer, fifo=True, lite=True, clock=clock)  # type: ignore[arg-type]
    for lite in ("s1", "s2", "s3"):
        pop.subscribe(lmq_name("P", lite))
    return pop, consumer, clock


def test_a_receive_gets_its_lite_topics_only_each_one_batch_at_a_time() -> None:
    pop, consumer, _ = _lite_group()
    consumer.queued.extend(
        [_lite_msg(0, "s1"), _lite_msg(0, "s3"), _lite_msg(1, "s1"), _lite_msg(0, "s2")]
    )
    mine = [lmq_name("P", "s1"), lmq_name("P", "s2")]
    got = pop.receive(mine, 8, 30_000, wait_s=0)
    assert [d.msg.body for d in got] == [b"s1:0", b"s1:1", b"s2:0"]  # each lite topic in order
    # the other client's lite topic waits for its receive
    other = pop.receive([lmq_name("P", "s3")], 8, 30_000, wait_s=0)
    assert [d.msg.body for d in other] == [b"s3:0"]
    # s1's next message waits until s1's batch is done
    consumer.queued.append(_lite_msg(2, "s1"))
    assert pop.receive(mine, 8, 30_000, wait_s=0) == []
    for delivery in got[:2]:
        assert pop.ack(delivery.handle)
    assert [d.msg.body for d in pop.receive(mine, 8, 30_000, wait_s=0)] == [b"s1:2"]


def test_a_suspended_delivery_comes_back_without_a_retry_counted() -> None:
    pop, consumer, clock = _lite_group()
    consumer.queued.append(_lite_msg(0, "s1"))
    topics = [lmq_name("P", "s1")]
    (first,) = pop.receive(topics, 1, 30_000, wait_s=0)
    handle = pop.change_invisible(first.handle, 300, suspend=True)
    assert handle is not None
    clock.advance(1)
    (again,) = pop.receive(topics, 1, 30_000, wait_s=0)
    assert again.attempt == 1
    pop.change_invisible(again.handle, 300)  # a nack: counted
    clock.advance(1)
    (third,) = pop.receive(topics, 1, 30_000, wait_s=0)
    assert third.attempt == 2


def test_an_unsubscribed_lite_topic_drops_what_waits_and_is_out() -> None:
    pop, consumer, _ = _lite_group()
    s1 = lmq_name("P", "s1")
    consumer.queued.extend([_lite_msg(0, "s1"), _lite_msg(1, "s1")])
    (out,) = pop.receive([s1], 1, 30_000, wait_s=0)
    assert pop.receive([s1], 1, 30_000, wait_s=0) == []  # s1:1 is held behind it
    pop.change_topics([], [s1])
    assert (s1, "", "unsubscribed") in consumer.subscribed
    assert s1 not in pop.expressions
    assert pop.ack(out.handle) is False  # forgotten: it comes again from the committed offset
    consumer.queued.append(_lite_msg(2, "s1"))  # polled late, after the unsubscription
    assert pop.receive([lmq_name("P", "s2")], 8, 30_000, wait_s=0) == []
    pop.subscribe(s1)
    consumer.queued.append(_lite_msg(0, "s1"))
    assert [d.msg.body for d in pop.receive([s1], 8, 30_000, wait_s=0)] == [b"s1:0"]
    assert consumer.starts == 1  # subscribing again does not start the consumer twice


# -- what lite push consumers get --------------------------------------------------------------


def test_a_lite_push_consumer_is_told_its_quota_and_fifo() -> None:
    given = M.Settings()
    given.client_type = ClientType.LITE_PUSH_CONSUMER
    given.subscription.group.name = "G"
    reply = reply_settings(given, ProxySettings(), fifo=True).settings
    assert reply.subscription.fifo is True
    assert reply.subscription.receive_batch_size == 32
    assert reply.subscription.lite_subscription_quota == 2000
    assert reply.subscription.max_lite_topic_size == 64
    given.client_type = ClientType.PUSH_CONSUMER
    plain = reply_settings(given, ProxySettings()).settings
    assert not plain.subscription.HasField("lite_subscription_quota")


def test_a_lite_message_is_handed_out_under_its_parent_with_its_lite_topic() -> None:
    parent = M.Resource(name="P")
    out = incoming(_lite_msg(3, "s1"), parent, receipt_handle="h", attempt=1, invisible_ms=10)
    assert out.topic.name == "P"
    assert out.system_properties.lite_topic == "s1"
    assert out.system_properties.message_type == MessageType.LITE


# -- the group's lite topics matched to its clients' (lite_groups.py) ----------------------------


class _Groups:
    def __init__(self, pop: PopGroup) -> None:
        self.pop = pop

    def __call__(self) -> dict[str, PopGroup]:
        return {"G": self.pop}


def _matcher() -> tuple[LiteGroups, LiteSubscriptions, PopGroup, FakeConsumer]:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    pop = PopGroup("G", consumer, fifo=True, lite=True, clock=clock)  # type: ignore[arg-type]
    registry = LiteSubscriptions()
    return LiteGroups(registry, _Groups(pop), None), registry, pop, consumer  # type: ignore[arg-type]


def test_a_failed_subscribe_is_made_good_by_the_next_match() -> None:
    groups, registry, pop, consumer = _matcher()
    s1 = lmq_name("P", "s1")
    registry.sync("G", "c1", "P", ADD, ["s1"])
    failing = consumer.subscribe

    def refuse(topic: str, expression: str, sql: str | None = None) -> None:
        raise ClientError("broker unreachable")

    consumer.subscribe = refuse  # type: ignore[method-assign]
    with pytest.raises(ClientError):
        groups.apply("G")
    assert s1 not in pop.expressions
    consumer.subscribe = failing  # type: ignore[method-assign]
    registry.sync("G", "c1", "P", ALL, ["s1"])  # nothing changes in the registry ...
    groups.apply("G")  # ... but the group is matched to it all the same
    assert s1 in pop.expressions


def test_a_match_follows_the_registry_whatever_order_changes_came_in() -> None:
    groups, registry, pop, consumer = _matcher()
    s1, s9 = lmq_name("P", "s1"), lmq_name("P", "s9")
    pop.subscribe(s9)  # left from a change applied late
    registry.sync("G", "c2", "P", ADD, ["s1"])
    groups.apply("G")
    assert set(pop.expressions) == {s1}
    assert consumer.wakeups >= 1  # waiting receives look again
    registry.drop_client("c2")
    groups.apply("G")
    assert pop.expressions == {}


def test_an_ack_wakes_a_receive_waiting_for_the_lite_topics_next_message() -> None:
    pop, consumer, _ = _lite_group()
    consumer.queued.extend([_lite_msg(0, "s1"), _lite_msg(1, "s1")])
    (out,) = pop.receive([lmq_name("P", "s1")], 1, 30_000, wait_s=0)
    assert pop.receive([lmq_name("P", "s1")], 1, 30_000, wait_s=0) == []  # s1:1 held
    before = consumer.wakeups
    assert pop.ack(out.handle)
    assert consumer.wakeups == before + 1


def test_a_release_of_an_earlier_subscription_frees_nothing_now() -> None:
    pop, consumer, _ = _lite_group()
    s1 = lmq_name("P", "s1")
    consumer.queued.append(_lite_msg(0, "s1"))
    (old,) = pop.receive([s1], 8, 30_000, wait_s=0)
    pop.change_topics([], [s1])
    pop.subscribe(s1)
    consumer.queued.extend([_lite_msg(0, "s1"), _lite_msg(1, "s1")])
    (new,) = pop.receive([s1], 1, 30_000, wait_s=0)
    assert pop.receive([s1], 1, 30_000, wait_s=0) == []  # s1:1 held behind it
    with pop._lock:
        pop._release(old)
    assert pop.receive([s1], 8, 30_000, wait_s=0) == []  # s1:1 still waits behind the new one
    assert pop.ack(new.handle)
    assert [d.msg.body for d in pop.receive([s1], 8, 30_000, wait_s=0)] == [b"s1:1"]


def test_a_receive_asks_for_its_topics_again_each_time_it_looks() -> None:
    pop, consumer, _ = _lite_group()
    mine: list[str] = []
    consumer.queued.append(_lite_msg(0, "s2"))
    assert pop.receive(lambda: mine, 8, 30_000, wait_s=0) == []  # s2 parked for later
    mine.append(lmq_name("P", "s2"))  # subscribed meanwhile
    assert [d.msg.body for d in pop.receive(lambda: mine, 8, 30_000, wait_s=0)] == [b"s2:0"]


# -- topic types ---------------------------------------------------------------------------------


class _TypesAdmin:
    def __init__(self) -> None:
        self.down = False
        self.reads = 0
        self.attributes: dict[str, str] = {"message.type": "LITE"}

    def masters(self) -> dict[str, str]:
        if self.down:
            raise ClientError("name server unreachable")
        return {"broker-a": "addr"}

    def topic_config(self, topic: str, address: str) -> Any:
        self.reads += 1
        return SimpleNamespace(attributes=dict(self.attributes))


def test_topic_types_are_read_at_most_every_ttl_and_kept_while_unreachable() -> None:
    admin = _TypesAdmin()
    clock = FakeClock()
    types = TopicTypes(admin, ttl_s=30, clock=clock)  # type: ignore[arg-type]
    assert types.of("Chats") == "LITE" and types.of("Chats") == "LITE"
    assert admin.reads == 1
    admin.attributes = {"message.type": "PRIORITY"}
    clock.advance(31)
    assert types.of("Chats") == "PRIORITY" and admin.reads == 2
    admin.down = True
    clock.advance(31)
    assert types.of("Chats", strict=True) == "PRIORITY"  # the last read, while unreachable
    assert types.of("Other") == "MIXED"  # never read: taken as MIXED ...
    with pytest.raises(TopicTypeUnknownError):  # ... unless the caller must not guess
        types.of("Other", strict=True)


# -- making lite topics (LiteTopics) ---------------------------------------------------------------


class _MakingAdmin:
    def __init__(self, existing: set[str]) -> None:
        self.existing = set(existing)
        self.lists = 0
        self.route_asks = 0
        self.made: list[str] = []

    def topic_list(self) -> list[str]:
        self.lists += 1
        return sorted(self.existing | {"Chats"})

    def topic_route(self, topic: str) -> Any:
        self.route_asks += 1
        if topic == "Chats":
            broker = SimpleNamespace(broker_name="broker-a", broker_addrs={0: "addr"})
            return SimpleNamespace(
                queue_datas=[SimpleNamespace(broker_name="broker-a")], broker_datas=[broker]
            )
        if topic in self.existing:
            return SimpleNamespace(queue_datas=[SimpleNamespace(broker_name="broker-a")])
        raise NoRouteError(topic)

    def create_topic(self, topic: str, **_: Any) -> list[str]:
        self.made.append(topic)
        self.existing.add(topic)
        return ["addr"]


def test_a_whole_set_is_looked_up_with_one_topic_list_and_only_the_missing_made() -> None:
    lites = [f"s{i}" for i in range(12)]
    admin = _MakingAdmin({lmq_name("Chats", lite) for lite in lites[:11]})
    made = LiteTopics(admin, max_lite_topics=100)  # type: ignore[arg-type]
    names = made.ensure_all("Chats", lites)
    assert names == [lmq_name("Chats", lite) for lite in lites]
    assert admin.made == [lmq_name("Chats", "s11")]
    assert admin.route_asks <= 4  # the missing one's checks and its parent, not one per name
    assert made.ensure_all("Chats", lites) == names and admin.made == [lmq_name("Chats", "s11")]


class _ConcurrentAdmin(_MakingAdmin):
    """Its first two creations meet at a barrier: made one after the other, they fail."""

    def __init__(self, existing: set[str], refuse: str) -> None:
        super().__init__(existing)
        self.barrier = threading.Barrier(2, timeout=5)
        self.refuse = refuse
        self.lock = threading.Lock()
        self.entered = 0

    def create_topic(self, topic: str, **kw: Any) -> list[str]:
        with self.lock:
            first_two = self.entered < 2  # (exactly two meet: a third would wait alone)
            self.entered += 1
        if first_two:
            self.barrier.wait()
        if topic == self.refuse:
            raise BrokerError(1, "disk full", "addr", "create topic")
        with self.lock:
            return super().create_topic(topic, **kw)


def test_many_missing_lite_topics_are_made_several_at_once_and_a_failure_is_raised() -> None:
    # Given a whole set of 40 lite topics none of which exists, one of which the broker refuses
    lites = [f"n{i}" for i in range(40)]
    admin = _ConcurrentAdmin(set(), refuse=lmq_name("Chats", "n7"))
    made = LiteTopics(admin, max_lite_topics=100)  # type: ignore[arg-type]
    # When they are ensured together, Then the refusal is raised (BrokerError)
    with pytest.raises(BrokerError):
        made.ensure_all("Chats", lites)
    # And every other one was made (two of them at once: the barrier met), each once
    assert sorted(admin.made) == sorted(lmq_name("Chats", x) for x in lites if x != "n7")
    assert not admin.barrier.broken


def test_the_lite_topic_quota_counts_what_exists_and_what_was_made_since() -> None:
    admin = _MakingAdmin({lmq_name("Chats", "a"), lmq_name("Chats", "b")})
    made = LiteTopics(admin, max_lite_topics=3)  # type: ignore[arg-type]
    made.ensure("Chats", "c")
    with pytest.raises(LiteError) as refused:
        made.ensure("Chats", "d")
    assert refused.value.code == Code.LITE_TOPIC_QUOTA_EXCEEDED
    assert admin.lists == 1  # counted once, then kept up to date
    assert made.ensure("Chats", "a") == lmq_name("Chats", "a")  # existing ones still served


class _SlowAdmin(_MakingAdmin):
    """Its creations wait until three are under way at once."""

    def __init__(self, existing: set[str]) -> None:
        super().__init__(existing)
        self.barrier = threading.Barrier(3, timeout=5)
        self.lock = threading.Lock()

    def create_topic(self, topic: str, **kw: Any) -> list[str]:
        self.barrier.wait()
        with self.lock:
            return super().create_topic(topic, **kw)


def test_lite_topics_made_at_once_do_not_pass_the_quota_together() -> None:
    # Given a quota of 5 with 2 lite topics in the cluster
    admin = _SlowAdmin({lmq_name("Chats", "a"), lmq_name("Chats", "b")})
    made = LiteTopics(admin, max_lite_topics=5)  # type: ignore[arg-type]
    # When a subscription of 10 new ones makes them 8 at once (three creations under way
    # together before any ends)
    with pytest.raises(LiteError) as refused:
        made.ensure_all("Chats", [f"n{i}" for i in range(10)])
    # Then the quota is refused past 5: those being made counted, not only those made
    assert refused.value.code == Code.LITE_TOPIC_QUOTA_EXCEEDED
    assert len(admin.made) == 3 and not admin.barrier.broken


def test_the_metrics_count_each_lite_groups_clients_and_lite_topics() -> None:
    from actors.proxy.metrics import CallStats
    from runtime.prometheus import render

    registry = LiteSubscriptions()
    registry.sync("agents", "c1", "P", ADD, ["s1", "s2"])
    registry.sync("agents", "c2", "P", ADD, ["s2", "s3"])
    service = SimpleNamespace(
        groups={},
        telemetry_streams=SimpleNamespace(streams={}),
        seen={},
        alive=lambda _who: False,
        lite=registry,
    )
    text = render(CallStats().families(service)).decode()
    assert 'actormq_proxy_lite_clients{consumer_group="agents"} 2' in text
    assert 'actormq_proxy_lite_topics{consumer_group="agents"} 3' in text


def test_a_client_joining_a_lite_topic_already_pulled_is_served_at_once() -> None:
    import threading
    import time

    groups, registry, pop, _consumer = _matcher()
    s1 = lmq_name("P", "s1")
    registry.sync("G", "c1", "P", ADD, ["s1"])
    groups.apply("G")
    assert s1 in pop.expressions
    # Given c2's receive waiting (up to 10 s) for its first lite topic
    found: list[list[str]] = []
    waiter = threading.Thread(target=lambda: found.append(groups.receive_topics("G", "c2", 10)))
    began = time.monotonic()
    waiter.start()
    wait_until(lambda: bool(groups.changed._waiters), timeout=5, what="the receive waits")
    # When c2 subscribes s1, which the group pulls already (nothing to change there)
    registry.sync("G", "c2", "P", ADD, ["s1"])
    groups.apply("G", wake=True)
    waiter.join(timeout=15)
    # Then its receive reads it at once
    assert found == [[s1]]
    assert time.monotonic() - began < 5


class _Context:
    def __init__(self, language: str) -> None:
        self.language = language

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mq-language", self.language), ("x-mq-client-id", "c1")]


def test_the_python_clients_spelled_out_lite_topic_is_read_as_one_name() -> None:
    spelled = list("chat-1")
    add, remove = LiteSubscriptionAction.PARTIAL_ADD, LiteSubscriptionAction.PARTIAL_REMOVE
    # Given RocketMQ 5's Python client's PARTIAL_ADD of "chat-1" (one entry per character)
    assert _spelled_out(spelled, add, _Context("PYTHON")) == ["chat-1"]
    # But a one-character name, another language's, a remove, or real names stay as given
    assert _spelled_out(["c"], add, _Context("PYTHON")) == ["c"]
    assert _spelled_out(spelled, add, _Context("NODE_JS")) == spelled
    assert _spelled_out(spelled, remove, _Context("PYTHON")) == spelled
    assert _spelled_out(["chat-1", "c"], add, _Context("PYTHON")) == ["chat-1", "c"]


def test_topic_types_keep_a_bounded_number_of_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lite_module, "MAX_TYPES", 3)
    admin = _TypesAdmin()
    types = TopicTypes(admin, ttl_s=30, clock=FakeClock())  # type: ignore[arg-type]
    # Given sends naming ever new topics (each read once, existing or not)
    for n in range(10):
        assert types.of(f"T{n}") == "LITE"
    # Then only the latest reads are kept (the proxy no longer grows with every name)
    assert sorted(types._known) == ["T7", "T8", "T9"]
    # And a topic read again goes to the end: the oldest read is the one forgotten next
    types._known["T7"] = (types._known["T7"][0], -100.0)  # (stale: read again)
    assert types.of("T7") == "LITE"
    assert types.of("T10") == "LITE"
    assert sorted(types._known) == ["T10", "T7", "T9"]


def test_a_lite_group_keeps_nothing_of_lite_topics_it_let_go_long_since() -> None:
    pop, _consumer, clock = _lite_group()
    # Given a long-lived lite group whose clients subscribe and let go of many lite topics
    # (one per session)
    for n in range(100):
        topic = lmq_name("P", f"session-{n}")
        pop.change_topics([topic], [])
        pop.change_topics([], [topic])
    # When they were let go longer than DROPPED_S ago
    clock.advance(DROPPED_S + 1)
    pop.sweep()
    # Then the group keeps no state of them (it grew with every lite topic ever let go)
    assert pop._dropped == {} and pop._generation == {}
    assert pop._deadlines == {} and pop._ready == {}
