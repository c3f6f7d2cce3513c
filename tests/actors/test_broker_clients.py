"""Broker-side client bookkeeping: registration with name servers, consumer groups."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import gevent
import msgspec
import pytest

from actors.broker.consumer_manager import ConsumerHeartbeat, ConsumerManager
from actors.broker.producer_manager import ProducerManager, _Scan
from actors.broker.registrar import NamesrvRegistrar, RegisterNow
from actors.broker.stats_sampler import StatsSampler, _Tick
from actors.namesrv.node import namesrv_spec
from config import BrokerConfig, NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind
from runtime.remoting.bodies import SubscriptionData, TopicConfig
from runtime.remoting.codes import RequestCode
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(20)


class FakeSession:
    """Stands in for a SessionHandle: records what the broker pushes to the client."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.pushed: list[Any] = []
        self.alive = True

    def send_oneway(self, cmd: Any) -> bool:
        self.pushed.append(cmd)
        return True


def heartbeat(group: str, client: str, session: FakeSession) -> ConsumerHeartbeat:
    return ConsumerHeartbeat(
        group=group,
        client_id=client,
        session=session,
        consume_type="CONSUME_PASSIVELY",
        message_model="CLUSTERING",
        consume_from_where="CONSUME_FROM_LAST_OFFSET",
        subscriptions=(SubscriptionData(topic="T", sub_string="a || b"),),
        language="PYTHON",
    )


def test_membership_changes_notify_remaining_members() -> None:
    manager = ConsumerManager.start().proxy()
    s1, s2 = FakeSession(1), FakeSession(2)
    # Given one consumer in the group
    assert manager.register(heartbeat("g", "c1", s1)).get(timeout=5) is True
    # When a second joins, Then both are told NOTIFY_CONSUMER_IDS_CHANGED
    assert manager.register(heartbeat("g", "c2", s2)).get(timeout=5) is True
    assert [c.code for c in s2.pushed] == [RequestCode.NOTIFY_CONSUMER_IDS_CHANGED]
    # (naming the topics whose lists changed: both members are actormq clients)
    assert len(s1.pushed) == 2
    assert s1.pushed[-1].ext_fields == {"consumerGroup": "g", "topics": "T"}
    assert s1.pushed[-1].is_oneway
    # A repeated heartbeat is not a change
    assert manager.register(heartbeat("g", "c2", s2)).get(timeout=5) is False
    assert manager.consumer_ids("g").get(timeout=5) == ["c1", "c2"]
    assert manager.subscription("g", "T").get(timeout=5).tags_set == ["a", "b"]
    # When c2's connection closes, Then c1 is told and the list shrinks
    manager.channel_closed(2).get(timeout=5)
    assert manager.consumer_ids("g").get(timeout=5) == ["c1"]
    assert len(s1.pushed) == 3
    manager.unregister("g", "c1").get(timeout=5)
    assert manager.group("g").get(timeout=5) is None


def test_a_heartbeat_of_a_connection_closed_meanwhile_lists_no_member() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        # Given a member, and a second client whose connection closed (the close processed)
        # while its first heartbeat was still being served (its retry topic being created)
        s1, s2 = FakeSession(1), FakeSession(2)
        manager.register(heartbeat("g", "c1", s1)).get(timeout=5)
        s2.alive = False
        manager.channel_closed(2).get(timeout=5)
        told_before = len(s1.pushed)
        # When that heartbeat reaches the manager
        assert manager.register(heartbeat("g", "c2", s2)).get(timeout=5) is False
        # Then it lists no member nobody is behind (it held its share of the queues until it
        # expired, 120 s), and nobody is told of a change
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1"]
        assert len(s1.pushed) == told_before
    finally:
        manager.actor_ref.stop()


def test_silent_consumers_expire() -> None:
    now = [0.0]
    manager = ConsumerManager.start(clock=lambda: now[0]).proxy()
    manager.register(heartbeat("g", "c1", FakeSession(1))).get(timeout=5)
    now[0] = 121.0
    assert manager.scan_expired(120.0).get(timeout=5) == ["c1"]
    assert manager.consumer_ids("g").get(timeout=5) == []


def test_producer_channels_for_check_back() -> None:
    manager = ProducerManager.start().proxy()
    s1 = FakeSession(1)
    manager.register("pg", "p1", s1).get(timeout=5)
    assert manager.any_channel("pg").get(timeout=5) is s1
    manager.channel_closed(1).get(timeout=5)
    assert manager.any_channel("pg").get(timeout=5) is None


def test_a_half_message_sender_answers_checks_until_a_heartbeat_arrives() -> None:
    now = [0.0]
    manager = ProducerManager.start(clock=lambda: now[0]).proxy()
    # Given a connection that sent a half message of group pg before any heartbeat
    sender, registered = FakeSession(1), FakeSession(2)
    manager.sent_half("pg", sender).get(timeout=5)
    # Then the check-back may use it, though it is not listed as a connection of the group
    assert manager.any_channel("pg").get(timeout=5) is sender
    assert manager.any_channel("other").get(timeout=5) is None
    assert manager.connections("pg").get(timeout=5) == []
    # When a producer of the group heartbeats, Then the check-back prefers that one
    manager.register("pg", "p2", registered).get(timeout=5)
    assert manager.any_channel("pg").get(timeout=5) is registered
    manager.unregister("pg", "p2").get(timeout=5)
    # When the sender's connection closes, Then nobody is left
    manager.channel_closed(1).get(timeout=5)
    assert manager.any_channel("pg").get(timeout=5) is None
    # And a sender silent for 120 s is dropped by the scan
    manager.sent_half("pg", FakeSession(3)).get(timeout=5)
    now[0] = 121.0
    manager.actor_ref.tell(_Scan())
    assert manager.any_channel("pg").get(timeout=5) is None


def test_a_requesters_request_connection_takes_its_replies_until_it_heartbeats() -> None:
    now = [0.0]
    manager = ProducerManager.start(clock=lambda: now[0]).proxy()
    # Given a requester that sent a request message before any heartbeat
    sender, registered = FakeSession(1), FakeSession(2)
    manager.sent_request("r1", sender).get(timeout=5)
    # Then its reply may go on that connection; nobody else's is found
    assert manager.find_channel("r1").get(timeout=5) is sender
    assert manager.find_channel("r2").get(timeout=5) is None
    # When its heartbeat arrives on another connection, Then that one is preferred
    manager.register("pg", "r1", registered).get(timeout=5)
    assert manager.find_channel("r1").get(timeout=5) is registered
    manager.unregister("pg", "r1").get(timeout=5)
    # When the request's connection closes, Then the requester is not found
    manager.channel_closed(1).get(timeout=5)
    assert manager.find_channel("r1").get(timeout=5) is None
    # And one silent for 120 s is dropped by the scan
    manager.sent_request("r1", FakeSession(3)).get(timeout=5)
    now[0] = 121.0
    manager.actor_ref.tell(_Scan())
    assert manager.find_channel("r1").get(timeout=5) is None


def test_registrar_publishes_topics_to_the_name_server_and_unregisters_on_stop() -> None:
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    ns = namesrv_spec("ns", NamesrvConfig(), sock, directory).start()
    ns_addr = "{}:{}".format(*sock.getsockname())
    topics = {"Orders": TopicConfig(topic_name="Orders", read_queue_nums=4, write_queue_nums=4)}
    cfg = BrokerConfig(broker_name="broker-x", namesrv_addr=ns_addr, listen_port=10999)
    asked: list[Collection[str] | None] = []

    def table(names: Collection[str] | None) -> dict[str, TopicConfig]:
        asked.append(names)
        return {k: v for k, v in topics.items() if names is None or k in names}

    sessions: dict = {}
    registrar = NamesrvRegistrar.start(cfg, table, sessions=sessions)
    client = WireClient(ns_addr)

    def routed(topic: str) -> bool:
        return client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}).code == 0

    try:
        # Then the route appears without waiting for the 30 s period
        with gevent.Timeout(5):
            while not routed("Orders"):
                gevent.sleep(0.01)
        # When a topic is added and the registrar is told which, Then it shows up too, sent
        # alone (the name server took the whole table on this connection), Orders kept
        topics["Payments"] = TopicConfig(
            topic_name="Payments", read_queue_nums=2, write_queue_nums=2
        )
        registrar.tell(RegisterNow(("Payments",)))
        with gevent.Timeout(5):
            while not routed("Payments"):
                gevent.sleep(0.01)
        assert asked[-1] == ("Payments",) and routed("Orders")
        route = json.loads(
            client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"}).body
        )
        assert route["brokerDatas"][0]["brokerAddrs"] == {"0": "127.0.0.1:10999"}
        # When a topic is deleted and the registrar told to send the whole table, Then it goes
        del topics["Payments"]
        registrar.tell(RegisterNow())
        with gevent.Timeout(5):
            while routed("Payments"):
                gevent.sleep(0.01)
        assert asked[-1] is None and routed("Orders")
        # When the connection to the name server is lost (it drops the broker) and a topic is
        # created, Then the new connection gets the whole table, not only the new topic
        sessions[ns_addr].close()
        with gevent.Timeout(5):
            while routed("Orders"):
                gevent.sleep(0.01)
        topics["Refunds"] = TopicConfig(topic_name="Refunds", read_queue_nums=1, write_queue_nums=1)
        registrar.tell(RegisterNow(("Refunds",)))
        with gevent.Timeout(5):
            while not routed("Refunds"):
                gevent.sleep(0.01)
        assert routed("Orders") and asked[-1] is None
        # When the broker stops, Then it unregisters at once
        registrar.stop(timeout=5)
        reply = client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Orders"})
        assert reply.code == 17
    finally:
        ns.stop(timeout=5)
        sock.close()


def test_one_client_id_on_two_connections_is_two_members() -> None:
    # Given two processes heartbeating with one client id on their own connections (ali-ons
    # broadcasting consumers on one host are all <ip>@DEFAULT)
    manager = ConsumerManager.start().proxy()
    s1, s2 = FakeSession(1), FakeSession(2)
    assert manager.register(heartbeat("g", "ip@DEFAULT", s1)).get(timeout=5) is True
    # When the second connection heartbeats, Then it joins: both are listed (RocketMQ lists one
    # id per channel) and both are told of the change
    assert manager.register(heartbeat("g", "ip@DEFAULT", s2)).get(timeout=5) is True
    assert manager.consumer_ids("g").get(timeout=5) == ["ip@DEFAULT", "ip@DEFAULT"]
    assert len(s1.pushed) == 2 and len(s2.pushed) == 1
    connections = manager.connections("g").get(timeout=5).connection_set
    assert [c.client_id for c in connections] == ["ip@DEFAULT", "ip@DEFAULT"]
    # When the first unregisters on its connection, Then only that one leaves and the other is
    # told (RocketMQ unregisters the requesting channel)
    manager.unregister("g", "ip@DEFAULT", True, 1).get(timeout=5)
    assert manager.consumer_ids("g").get(timeout=5) == ["ip@DEFAULT"]
    assert manager.find_channel("g", "ip@DEFAULT").get(timeout=5) is s2
    assert len(s2.pushed) == 2
    # And when the other's connection closes, Then the group is gone
    manager.channel_closed(2).get(timeout=5)
    assert manager.consumer_ids("g").get(timeout=5) == []
    assert manager.group("g").get(timeout=5) is None


def test_a_client_id_on_two_connections_expires_per_connection() -> None:
    now = [0.0]
    manager = ConsumerManager.start(clock=lambda: now[0]).proxy()
    manager.register(heartbeat("g", "c1", FakeSession(1))).get(timeout=5)
    now[0] = 100.0
    manager.register(heartbeat("g", "c1", FakeSession(2))).get(timeout=5)
    # When the first connection's heartbeats stop for longer than the expiry
    now[0] = 130.0
    manager.scan_expired(120.0).get(timeout=5)
    # Then only it is dropped
    assert manager.consumer_ids("g").get(timeout=5) == ["c1"]
    assert manager.find_channel("g", "c1").get(timeout=5).session_id == 2


def test_consumer_groups_survive_a_role_change_rebuild() -> None:
    # Given a group with two members on the node before its rebuild
    kept: dict = {}
    old = ConsumerManager.start(keep=kept.update).proxy()
    s1 = FakeSession(1)
    old.register(heartbeat("g", "c1", s1)).get(timeout=5)
    old.register(heartbeat("g", "c2", FakeSession(2))).get(timeout=5)
    old.actor_ref.stop(timeout=5)
    # When the rebuilt node's manager starts with what the old one kept
    new = ConsumerManager.start(carried=kept).proxy()
    # Then rebalancing and subscriptions work before any heartbeat
    assert new.consumer_ids("g").get(timeout=5) == ["c1", "c2"]
    assert new.consumer_ids("g", "T").get(timeout=5) == ["c1", "c2"]  # their topics kept
    assert new.subscription("g", "T").get(timeout=5).sub_string == "a || b"
    # And a member's next heartbeat brings its new connection without counting as a join
    s1_new = FakeSession(11)
    assert new.register(heartbeat("g", "c1", s1_new)).get(timeout=5) is False
    new.channel_closed(11).get(timeout=5)
    assert new.consumer_ids("g").get(timeout=5) == ["c2"]


def test_registrar_keeps_its_registration_while_the_node_is_rebuilt() -> None:
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    ns = namesrv_spec("ns", NamesrvConfig(), sock, directory).start()
    ns_addr = "{}:{}".format(*sock.getsockname())
    topics = {"Kept": TopicConfig(topic_name="Kept", read_queue_nums=1, write_queue_nums=1)}
    cfg = BrokerConfig(broker_name="broker-k", namesrv_addr=ns_addr, listen_port=10998)
    rebuilding = [True]
    sessions: dict = {}
    first = NamesrvRegistrar.start(
        cfg, lambda _names: dict(topics), keep_registration=lambda: rebuilding[0], sessions=sessions
    )
    client = WireClient(ns_addr)
    try:
        with gevent.Timeout(5):
            while client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Kept"}).code:
                gevent.sleep(0.01)
        # When it stops for a rebuild, Then the route stays: no unregister, connection kept
        first.stop(timeout=5)
        assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Kept"}).code == 0
        # And the next incarnation reuses the connection; a real stop then unregisters
        rebuilding[0] = False
        second = NamesrvRegistrar.start(
            cfg,
            lambda _names: dict(topics),
            keep_registration=lambda: rebuilding[0],
            sessions=sessions,
        )
        assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Kept"}).code == 0
        second.stop(timeout=5)
        assert client.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "Kept"}).code == 17
    finally:
        ns.stop(timeout=5)
        sock.close()


def test_stats_sampler_rates_over_three_windows_and_totals_at_midnight() -> None:
    # Given counters the sampler reads, a monotonic clock and a wall clock it is handed
    counts = [0, 0]
    now = [1000.0]
    wall = [time.mktime((2026, 11, 22, 23, 50, 0, 0, 0, -1))]  # local 23:50
    sampler = StatsSampler.start(
        lambda: (counts[0], counts[1]),
        lambda: {"commitLogMaxOffset": "7"},
        version="actormq-test",
        clock=lambda: now[0],
        wall=lambda: wall[0],
    )
    proxy = sampler.proxy()
    proxy.runtime_info().get(timeout=5)  # on_start took the first sample at t=1000
    # When 100 messages a second are put for 60 s (sampled every 10 s), 10 a second got
    for _ in range(6):
        now[0] += 10
        wall[0] += 10
        counts[0] += 1000
        counts[1] += 100
        sampler.tell(_Tick())
        proxy.runtime_info().get(timeout=5)  # the tick is taken at this clock and count
    info = proxy.runtime_info().get(timeout=5)
    # Then the 10 s and 60 s rates are exact; the 600 s window falls back to the oldest sample
    assert info["putTps"] == "100.00 100.00 100.00"
    assert info["getTransferedTps"] == "10.00 10.00 10.00"
    assert (info["msgPutTotalTodayNow"], info["msgPutTotalTodayMorning"]) == ("6000", "0")
    assert info["brokerVersionDesc"] == "actormq-test" and info["commitLogMaxOffset"] == "7"
    # When the local date changes, Then today's morning is the count at the first tick after it
    wall[0] += 3600
    now[0] += 10
    sampler.tell(_Tick())
    info = proxy.runtime_info().get(timeout=5)
    assert (info["msgPutTotalTodayMorning"], info["msgPutTotalYesterdayMorning"]) == ("6000", "0")
    assert info["putTps"].split()[0] == "0.00"  # nothing put in the last 10 s
    # And the stats windows (VIEW_BROKER_STATS_DATA): the last minute holds the 5 ticks of
    # 1,000 before the idle one; the hour and the day reach back to the first sample (70 s)
    minute, hour, day = proxy.windows("put").get(timeout=5)
    assert minute == (5000, 60.0)
    assert hour == day == (6000, 70.0)
    assert proxy.windows("got").get(timeout=5)[0] == (500, 60.0)
    sampler.stop()


def test_a_topics_consumers_are_the_members_subscribing_it() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        s1, s2 = FakeSession(1), FakeSession(2)
        # Given two members of one group: c1 subscribing T, c2 subscribing U
        assert manager.register(heartbeat("g", "c1", s1)).get(timeout=5) is True
        other = msgspec.structs.replace(
            heartbeat("g", "c2", s2), subscriptions=(SubscriptionData(topic="U", sub_string="*"),)
        )
        assert manager.register(other).get(timeout=5) is True
        # Then T's consumers are c1, U's c2, the group's both
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1"]
        assert manager.consumer_ids("g", "U").get(timeout=5) == ["c2"]
        assert manager.consumer_ids("g").get(timeout=5) == ["c1", "c2"]
        # When c2's next heartbeat subscribes T too (not a join)
        s1.pushed.clear()
        both = msgspec.structs.replace(
            other,
            subscriptions=(
                SubscriptionData(topic="T", sub_string="*"),
                SubscriptionData(topic="U", sub_string="*"),
            ),
        )
        assert manager.register(both).get(timeout=5) is False
        # Then T has both, and c1 is told of T only (c2 rebalances T itself)
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1", "c2"]
        assert [c.ext_fields for c in s1.pushed] == [{"consumerGroup": "g", "topics": "T"}]
        # (c2 heard only of its own join, of U)
        assert [c.ext_fields for c in s2.pushed] == [{"consumerGroup": "g", "topics": "U"}]
        # And with a member of another client (Java), whose list is every member, every
        # member's is too (so that all allocate alike)
        java = msgspec.structs.replace(
            heartbeat("g", "j1", FakeSession(3)),
            subscriptions=(SubscriptionData(topic="U", sub_string="*"),),
            language="JAVA",
        )
        manager.register(java).get(timeout=5)
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1", "c2", "j1"]
    finally:
        manager.actor_ref.stop()


def test_a_topic_no_member_subscribes_any_more_leaves_the_groups_subscriptions() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        s1, s2 = FakeSession(1), FakeSession(2)
        both = msgspec.structs.replace(
            heartbeat("g", "c1", s1),
            subscriptions=(
                SubscriptionData(topic="T", sub_string="*"),
                SubscriptionData(topic="L1", sub_string="*"),
            ),
        )
        manager.register(both).get(timeout=5)
        other = msgspec.structs.replace(
            heartbeat("g", "c2", s2), subscriptions=(SubscriptionData(topic="L2", sub_string="*"),)
        )
        manager.register(other).get(timeout=5)
        assert manager.subscription("g", "L1").get(timeout=5) is not None
        # When c1 no longer subscribes L1, and c2 leaves
        manager.register(heartbeat("g", "c1", s1)).get(timeout=5)
        manager.unregister("g", "c2").get(timeout=5)
        # Then the group's subscriptions are c1's: T only
        assert manager.subscription("g", "L1").get(timeout=5) is None
        assert manager.subscription("g", "L2").get(timeout=5) is None
        assert manager.subscription("g", "T").get(timeout=5) is not None
        assert manager.groups_subscribing("L2").get(timeout=5) == []
    finally:
        manager.actor_ref.stop()


def subscribing(group: str, client: str, session: FakeSession, *topics: str) -> ConsumerHeartbeat:
    subs = tuple(SubscriptionData(topic=t, sub_string="*") for t in topics)
    return msgspec.structs.replace(heartbeat(group, client, session), subscriptions=subs)


def told(session: FakeSession) -> list[str | None]:
    """The topics each notice named (None: every topic), and clears them."""
    named = [c.ext_fields.get("topics") for c in session.pushed]
    session.pushed.clear()
    return named


def test_notices_name_the_topics_whose_lists_changed_and_reach_only_their_subscribers() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        s1, s2, s3 = FakeSession(1), FakeSession(2), FakeSession(3)
        # Given c1 on T and L1, c2 on T, c3 on L2 (actormq clients: per-topic lists)
        manager.register(subscribing("g", "c1", s1, "T", "L1")).get(timeout=5)
        manager.register(subscribing("g", "c2", s2, "T")).get(timeout=5)
        manager.register(subscribing("g", "c3", s3, "L2")).get(timeout=5)
        assert (told(s1), told(s2), told(s3)) == (["L1,T", "T"], ["T"], ["L2"])
        # When c3 takes up L1 (a topic change, not a join)
        manager.register(subscribing("g", "c3", s3, "L1", "L2")).get(timeout=5)
        # Then only c1, which subscribes L1, is told, of L1
        assert (told(s1), told(s2), told(s3)) == (["L1"], [], [])
        # When c3 drops L2, which no one else subscribes: no one is told
        manager.register(subscribing("g", "c3", s3, "L1")).get(timeout=5)
        assert (told(s1), told(s2), told(s3)) == ([], [], [])
        # When c1's connection closes: c2 hears of T, c3 of L1
        manager.channel_closed(1).get(timeout=5)
        assert (told(s2), told(s3)) == (["T"], ["L1"])
        # When c2 unregisters: c3 subscribes nothing of its, and is not told
        manager.unregister("g", "c2").get(timeout=5)
        assert told(s3) == []
        # When a Java client joins, every member is told of every topic (its list is every
        # member, so everyone's becomes so), and a topic change then tells no one
        sj = FakeSession(4)
        java = msgspec.structs.replace(subscribing("g", "j1", sj, "X"), language="JAVA")
        manager.register(java).get(timeout=5)
        assert (told(s3), told(sj)) == ([None], [None])
        manager.register(subscribing("g", "c3", s3, "L1", "X")).get(timeout=5)
        assert (told(s3), told(sj)) == ([], [])
        # When the Java client leaves, the lists become per topic again: c3 hears of all
        manager.unregister("g", "j1").get(timeout=5)
        assert told(s3) == [None]
    finally:
        manager.actor_ref.stop()


def test_expired_members_notices_name_their_topics() -> None:
    now = [0.0]
    manager = ConsumerManager.start(clock=lambda: now[0]).proxy()
    try:
        s1, s2 = FakeSession(1), FakeSession(2)
        manager.register(subscribing("g", "c1", s1, "T", "U")).get(timeout=5)
        now[0] = 100.0
        manager.register(subscribing("g", "c2", s2, "U")).get(timeout=5)
        told(s1), told(s2)
        # When c1 goes silent past the expiry, Then c2 is told of U (the one it subscribes)
        now[0] = 121.0
        assert manager.scan_expired(120.0).get(timeout=5) == ["c1"]
        assert told(s2) == ["U"]
    finally:
        manager.actor_ref.stop()


def test_a_notice_of_thousands_of_topics_comes_in_pieces_a_header_can_hold() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        # Given a lite group's member of 3,000 lite topics (long names: ~100 KB of them)
        names = [f"%LMQ%$LiteParent$session-{i:06d}-of-a-long-lite-topic" for i in range(3000)]
        s1, s2 = FakeSession(1), FakeSession(2)
        manager.register(subscribing("g", "c1", s1, *names)).get(timeout=5)
        told(s1)  # (its own join's)
        # When a second member of the same topics joins
        manager.register(subscribing("g", "c2", s2, *names)).get(timeout=5)
        # Then the first is told of every topic, in notices of at most 16 KiB of names each
        pieces = told(s1)
        assert len(pieces) > 1 and all(p is not None and len(p) <= 16 * 1024 for p in pieces)
        assert sorted(t for p in pieces if p for t in p.split(",")) == sorted(names)
    finally:
        manager.actor_ref.stop()


def test_a_dead_connection_dropped_by_a_heartbeat_is_announced() -> None:
    manager = ConsumerManager.start().proxy()
    try:
        # Given one client id on two connections (listed twice) and another member
        s1, s2, s3 = FakeSession(1), FakeSession(2), FakeSession(3)
        manager.register(heartbeat("g", "c1", s1)).get(timeout=5)
        manager.register(heartbeat("g", "c1", s2)).get(timeout=5)
        manager.register(heartbeat("g", "c2", s3)).get(timeout=5)
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1", "c1", "c2"]
        told(s2), told(s3)
        # When the first connection died (its close not processed yet) and the client's next
        # heartbeat on the second drops it
        s1.alive = False
        assert manager.register(heartbeat("g", "c1", s2)).get(timeout=5) is False
        # Then the lists hold it once, and the members are told (as a leave would)
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1", "c2"]
        assert (told(s2), told(s3)) == (["T"], ["T"])
        # And a reconnect that replaces a dead connection (listed once before and after) is
        # no change
        s4 = FakeSession(4)
        s2.alive = False
        assert manager.register(heartbeat("g", "c1", s4)).get(timeout=5) is False
        assert manager.consumer_ids("g", "T").get(timeout=5) == ["c1", "c2"]
        assert (told(s4), told(s3)) == ([], [])
    finally:
        manager.actor_ref.stop()
