"""Allocation strategies (RocketMQ's AllocateMessageQueueStrategy implementations).

Expected allocations come from RocketMQ's own unit tests (client/src/test/java/org/apache/
rocketmq/client/consumer/rebalance/*Test.java) where they list them; the consistent-hash
tables were computed with Java 17 by a re-statement of RocketMQ's ConsistentHashRouter (MD5Hash,
``VirtualNode.getKey()``, ``TreeMap.tailMap`` routing) and ``MessageQueue.toString()``, so a
Java member of a mixed group takes the same queues.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client.allocate import (
    AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle,
    AllocateMessageQueueByConfig,
    AllocateMessageQueueConsistentHash,
    AllocateStrategy,
    AllocationRefused,
    allocate_queues,
    describe,
    queue_key,
    resolve_allocate,
)
from actors.client.consistent_hash import HashRing, md5_hash
from actors.client.errors import ClientError
from actors.client.message import MessageQueue


def queues(n: int, topic: str = "topic", broker: str = "brokerName") -> list[MessageQueue]:
    return [MessageQueue(topic=topic, broker_name=broker, queue_id=i) for i in range(n)]


def shares(strategy: AllocateStrategy, mqs: list[MessageQueue], cids: list[str]) -> dict:
    """client id -> its queue ids (or "broker/id" with several brokers), as RocketMQ's tests."""
    mqs, cids = sorted(mqs), sorted(cids)
    brokers = {mq.broker_name for mq in mqs}
    out: dict[str, list] = {}
    for cid in cids:
        mine = allocate_queues(strategy, "g", cid, mqs, cids)
        out[cid] = [
            mq.queue_id if len(brokers) == 1 else f"{mq.broker_name}/{mq.queue_id}" for mq in mine
        ]
    return out


# -- RocketMQ's expectations ------------------------------------------------------------------


def test_circle_matches_rocketmqs_test() -> None:
    # AllocateMessageQueueAveragelyByCircleTest: 4 consumers, 10 queues
    cids = [f"CID_PREFIX{i}" for i in range(4)]
    assert shares(AllocateMessageQueueAveragelyByCircle(), queues(10), cids) == {
        "CID_PREFIX0": [0, 4, 8],
        "CID_PREFIX1": [1, 5, 9],
        "CID_PREFIX2": [2, 6],
        "CID_PREFIX3": [3, 7],
    }
    # the consumer id not in cidAll gets nothing
    assert AllocateMessageQueueAveragelyByCircle()("", "CID_PREFIX", queues(10), cids) == []


def test_config_matches_rocketmqs_test() -> None:
    # AllocateMessageQueueByConfigTest: every consumer gets the configured list
    strategy = AllocateMessageQueueByConfig(queues(4))
    cids = ["CID_PREFIX0", "CID_PREFIX1"]
    assert shares(strategy, queues(4), cids) == {c: [0, 1, 2, 3] for c in cids}


def test_config_takes_only_the_topic_s_listed_queues() -> None:
    # RocketMQ's returns the whole list for every topic; here each topic takes its own share
    strategy = AllocateMessageQueueByConfig([*queues(2, "A"), *queues(4, "B")[2:]])
    assert strategy("g", "c", queues(4, "A"), ["c"]) == queues(2, "A")
    assert strategy("g", "c", queues(3, "B"), ["c"]) == queues(3, "B")[2:]  # B/3 not in route


def test_averagely_matches_rocketmq() -> None:
    # AllocateMessageQueueAveragely: 8 queues over 3 clients -> 3, 3, 2 contiguous
    cids = ["c", "a", "b"]
    assert shares(AllocateMessageQueueAveragely(), queues(8), cids) == {
        "a": [0, 1, 2],
        "b": [3, 4, 5],
        "c": [6, 7],
    }


def test_md5_hash_is_rocketmqs() -> None:
    # first 4 digest bytes, big-endian, unsigned (values past 2**31 stay positive, as Java's long)
    assert md5_hash("CID-0-0") == 1900518137
    key = queue_key(queues(1, "topic_test")[0])
    assert key == "MessageQueue [topic=topic_test, brokerName=brokerName, queueId=0]"
    assert md5_hash(key) == 2171879703


@pytest.mark.parametrize(
    ("virtual_nodes", "mqs", "cids", "expected"),
    [
        (
            10,
            queues(10, "topic_test"),
            [f"CID-{i}" for i in range(4)],
            {"CID-0": [1], "CID-1": [], "CID-2": [0, 3, 4, 5, 8], "CID-3": [2, 6, 7, 9]},
        ),
        (
            3,
            queues(20, "topic_test"),
            [f"CID-{i}" for i in range(5)],
            {
                "CID-0": [3, 5, 8, 18, 19],
                "CID-1": [2, 12],
                "CID-2": [4, 14, 16],
                "CID-3": [0, 6, 7, 9, 10, 11, 13, 15, 17],
                "CID-4": [1],
            },
        ),
        (
            10,
            queues(4, "Orders", "broker-a") + queues(4, "Orders", "broker-b"),
            ["192.168.1.10@4242#1", "192.168.1.11@777#1", "10.0.0.5@99#1"],
            {
                "10.0.0.5@99#1": ["broker-b/0"],
                "192.168.1.10@4242#1": ["broker-a/1", "broker-b/2", "broker-b/3"],
                "192.168.1.11@777#1": ["broker-a/0", "broker-a/2", "broker-a/3", "broker-b/1"],
            },
        ),
    ],
    ids=["10-vnodes", "3-vnodes", "two-brokers"],
)
def test_consistent_hash_matches_java(
    virtual_nodes: int, mqs: list[MessageQueue], cids: list[str], expected: dict
) -> None:
    assert shares(AllocateMessageQueueConsistentHash(virtual_nodes), mqs, cids) == expected


def test_consistent_hash_edge_cases() -> None:
    # a client not in the list gets nothing; no virtual nodes: nobody gets anything (an empty
    # ring routes to no node); a negative count is refused
    assert AllocateMessageQueueConsistentHash()("g", "x", queues(6), ["CID-0", "CID-1"]) == []
    assert AllocateMessageQueueConsistentHash(0)("g", "CID-0", queues(6), ["CID-0"]) == []
    with pytest.raises(ClientError):
        AllocateMessageQueueConsistentHash(-1)


def test_a_node_added_twice_gets_the_next_replica_indexes() -> None:
    # ConsistentHashRouter.addNode counts the node's points already on the ring
    twice = HashRing(["a", "a"], 2, hash_fn=lambda key: sum(map(ord, key)) * 1000 + len(key))
    assert len(twice) == 4  # "a-0", "a-1", "a-2", "a-3": distinct points


# -- properties --------------------------------------------------------------------------------

client_ids = st.lists(
    st.text("abc.@#0123456789", min_size=1, max_size=8), min_size=1, max_size=12, unique=True
)
queue_lists = st.integers(0, 40).map(
    lambda n: [MessageQueue(topic="T", broker_name=f"b{i % 3}", queue_id=i // 3) for i in range(n)]
)


def assert_partition(strategy: AllocateStrategy, mqs: list[MessageQueue], cids: list[str]) -> None:
    mqs, cids = sorted(mqs), sorted(cids)
    taken = [mq for cid in cids for mq in allocate_queues(strategy, "g", cid, mqs, cids)]
    assert sorted(taken) == mqs  # every queue exactly once


@given(queue_lists, client_ids)
def test_circle_allocates_every_queue_exactly_once(
    mqs: list[MessageQueue], cids: list[str]
) -> None:
    assert_partition(AllocateMessageQueueAveragelyByCircle(), mqs, cids)
    sizes = [
        len(AllocateMessageQueueAveragelyByCircle()("g", c, sorted(mqs), sorted(cids)))
        for c in sorted(cids)
    ]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


@given(queue_lists, client_ids, st.integers(1, 12))
def test_consistent_hash_allocates_every_queue_exactly_once(
    mqs: list[MessageQueue], cids: list[str], virtual_nodes: int
) -> None:
    assert_partition(AllocateMessageQueueConsistentHash(virtual_nodes), mqs, cids)


def owners(strategy: AllocateStrategy, mqs: Sequence[MessageQueue], cids: list[str]) -> dict:
    cids = sorted(cids)
    return {mq: cid for cid in cids for mq in strategy("g", cid, list(mqs), cids)}


@given(queue_lists, client_ids, st.data())
def test_consistent_hash_moves_only_the_queues_of_a_client_that_leaves_or_joins(
    mqs: list[MessageQueue], cids: list[str], data: st.DataObject
) -> None:
    # RocketMQ's AllocateMessageQueueConsistentHashTest (verifyAfterRemove / verifyAfterAdd)
    strategy = AllocateMessageQueueConsistentHash(3)
    mqs = sorted(mqs)
    before = owners(strategy, mqs, cids)
    gone = data.draw(st.sampled_from(cids))
    rest = [c for c in cids if c != gone]
    after = owners(strategy, mqs, rest) if rest else {}
    assert all(after[mq] == owner for mq, owner in before.items() if owner != gone)
    joined = owners(strategy, mqs, [*rest, "NEW"])
    assert all(joined[mq] == owner for mq, owner in after.items() if joined[mq] != "NEW")


# -- the consumer's option and the checks around a strategy ----------------------------------


def test_names_select_the_built_in_strategies() -> None:
    assert isinstance(resolve_allocate("AVG"), AllocateMessageQueueAveragely)
    assert isinstance(resolve_allocate("AVG_BY_CIRCLE"), AllocateMessageQueueAveragelyByCircle)
    assert isinstance(resolve_allocate("CONSISTENT_HASH"), AllocateMessageQueueConsistentHash)
    assert resolve_allocate("CONSISTENT_HASH").virtual_nodes == 10  # type: ignore[attr-defined]
    config = AllocateMessageQueueByConfig(queues(2))
    assert resolve_allocate(config) is config and config.name == "CONFIG"
    with pytest.raises(ClientError, match="AVG_BY_CIRCLE"):
        resolve_allocate("avg")
    with pytest.raises(ClientError):
        resolve_allocate(42)  # type: ignore[arg-type]


def test_running_info_names_rocketmqs_class_or_the_callable() -> None:
    package = "org.apache.rocketmq.client.consumer.rebalance"
    assert describe(resolve_allocate("AVG")) == f"{package}.AllocateMessageQueueAveragely"
    assert describe(resolve_allocate("CONSISTENT_HASH")) == (
        f"{package}.AllocateMessageQueueConsistentHash"
    )

    def mine(group: str, cid: str, mqs: list[MessageQueue], cids: list[str]) -> list[MessageQueue]:
        return mqs

    custom = resolve_allocate(mine)
    assert custom.name == f"{__name__}.{mine.__qualname__}"
    assert describe(custom) == custom.name
    assert custom("g", "c", queues(2), ["c"]) == queues(2)


def test_a_callable_gets_the_group_and_sorted_inputs_and_duplicates_are_dropped() -> None:
    seen: list[tuple] = []

    def twice(group: str, cid: str, mqs: list[MessageQueue], cids: list[str]) -> list[MessageQueue]:
        seen.append((group, cid, mqs, cids))
        return [mqs[0], mqs[0]]

    assert allocate_queues(resolve_allocate(twice), "g", "b", queues(3), ["a", "b"]) == queues(1)
    assert seen == [("g", "b", queues(3), ["a", "b"])]
    assert allocate_queues(resolve_allocate(lambda *_: None), "g", "a", queues(3), ["a"]) == []


def test_a_strategy_answering_queues_it_was_not_offered_is_refused() -> None:
    foreign = MessageQueue(topic="Other", broker_name="broker-z", queue_id=7)
    strategy = resolve_allocate(lambda g, c, mqs, cids: [mqs[0], foreign])
    with pytest.raises(AllocationRefused, match=r"1 queue\(s\).*topic=Other, brokerName=broker-z"):
        allocate_queues(strategy, "g", "a", queues(3), ["a"])
    with pytest.raises(AllocationRefused, match="'q0'"):
        allocate_queues(resolve_allocate(lambda *_: ["q0"]), "g", "a", queues(3), ["a"])


def test_a_strategy_that_raises_is_refused() -> None:
    def broken(*_: object) -> list[MessageQueue]:
        raise RuntimeError("boom")

    with pytest.raises(AllocationRefused, match="boom"):
        allocate_queues(resolve_allocate(broken), "g", "a", queues(3), ["a"])
    with pytest.raises(AllocationRefused):  # unhashable answers
        allocate_queues(resolve_allocate(lambda *_: [[1]]), "g", "a", queues(3), ["a"])
