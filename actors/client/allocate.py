"""Queue allocation for clustering consumers: RocketMQ's AllocateMessageQueueStrategy.

Every member of a group computes its share from the same inputs, the topic's readable queues
sorted by (topic, broker, queue id) and the group's client ids sorted (the rebalancer sorts
both, as RocketMQ's RebalanceImpl does), so no coordination is needed. The strategies, by their
RocketMQ names (``getName()``), the names a consumer's ``allocate=`` takes:

- ``"AVG"`` (AllocateMessageQueueAveragely, the default): client ``i`` gets a contiguous block
  of ``q // c`` queues, the first ``q % c`` clients one more; with more clients than queues the
  last ``c - q`` get nothing.
- ``"AVG_BY_CIRCLE"`` (AllocateMessageQueueAveragelyByCircle): queue ``j`` goes to client
  ``j % c``, dealt round like cards.
- ``"CONSISTENT_HASH"`` (AllocateMessageQueueConsistentHash): each queue goes to the client
  that ``actors.client.consistent_hash.HashRing`` routes ``MessageQueue [topic=T,
  brokerName=B, queueId=N]`` (Java's ``MessageQueue.toString()``) to, with 10 virtual nodes per
  client; a client joining or leaving moves only the queues it gains or had.
- ``AllocateMessageQueueByConfig(queues)`` (``"CONFIG"``): a fixed list, whatever the group.

A client id that is not in the list gets nothing (RocketMQ logs ``[BUG] ... not in cidAll``;
the rebalancer checks that before it asks a strategy). Any callable ``(consumer_group,
current_client_id, queues, client_ids) -> queues`` is a strategy too; ``allocate_queues``
checks its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from actors.client.consistent_hash import HashFunction, HashRing, md5_hash
from actors.client.errors import ClientError
from actors.client.message import MessageQueue

Q = TypeVar("Q")

AllocateFn = Callable[[str, str, list[MessageQueue], list[str]], Iterable[MessageQueue] | None]
"""``(consumer_group, current_client_id, queues, client_ids) -> the queues this client takes``;
``queues`` and ``client_ids`` come sorted."""

JAVA_PACKAGE = "org.apache.rocketmq.client.consumer.rebalance"


def allocate_averagely(client_id: str, queues: Sequence[Q], client_ids: Sequence[str]) -> list[Q]:
    """The queues ``client_id`` consumes; [] when it is not (yet) in ``client_ids``."""
    mqs = sorted(queues)  # type: ignore[type-var]
    cids = sorted(set(client_ids))
    if not mqs or client_id not in cids:
        return []
    index = cids.index(client_id)
    q, c = len(mqs), len(cids)
    mod = q % c
    if q <= c:
        size = 1
    elif mod > 0 and index < mod:
        size = q // c + 1
    else:
        size = q // c
    start = index * size if mod > 0 and index < mod else index * size + mod
    count = min(size, q - start)
    return [mqs[(start + i) % q] for i in range(max(count, 0))]


def allocate_by_circle(client_id: str, queues: Sequence[Q], client_ids: Sequence[str]) -> list[Q]:
    """Queue ``j`` (in the order given) goes to ``client_ids[j % len(client_ids)]``."""
    if not queues or client_id not in client_ids:
        return []
    index = list(client_ids).index(client_id)
    return list(queues[index :: len(client_ids)])


def queue_key(mq: MessageQueue) -> str:
    """Java's ``MessageQueue.toString()``, the key a queue is hashed by."""
    return f"MessageQueue [topic={mq.topic}, brokerName={mq.broker_name}, queueId={mq.queue_id}]"


class AllocateStrategy:
    """A strategy: ``name`` (RocketMQ's ``getName()``) and the call itself."""

    name: str

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> Iterable[MessageQueue] | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AllocateMessageQueueAveragely(AllocateStrategy):
    name = "AVG"

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> list[MessageQueue]:
        return allocate_averagely(client_id, queues, client_ids)


class AllocateMessageQueueAveragelyByCircle(AllocateStrategy):
    name = "AVG_BY_CIRCLE"

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> list[MessageQueue]:
        return allocate_by_circle(client_id, queues, client_ids)


class AllocateMessageQueueConsistentHash(AllocateStrategy):
    """``virtual_nodes`` points per client (RocketMQ's virtualNodeCnt, 10); ``hash_fn`` replaces
    the MD5 hash (its customHashFunction; every member must use the same)."""

    name = "CONSISTENT_HASH"

    def __init__(self, virtual_nodes: int = 10, hash_fn: HashFunction = md5_hash) -> None:
        if virtual_nodes < 0:
            raise ClientError(f"illegal virtualNodeCnt: {virtual_nodes}")
        self.virtual_nodes = virtual_nodes
        self.hash_fn = hash_fn

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> list[MessageQueue]:
        if not queues or client_id not in client_ids:
            return []
        ring = HashRing(client_ids, self.virtual_nodes, self.hash_fn)
        return [mq for mq in queues if ring.route(queue_key(mq)) == client_id]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(virtual_nodes={self.virtual_nodes})"


class AllocateMessageQueueByConfig(AllocateStrategy):
    """Always these queues (RocketMQ's messageQueueList): of them, each rebalance of a topic
    takes the ones its route lists (RocketMQ's returns the whole list for every topic)."""

    name = "CONFIG"

    def __init__(self, queues: Iterable[MessageQueue]) -> None:
        self.queues = tuple(queues)

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> list[MessageQueue]:
        offered = set(queues)
        return [mq for mq in self.queues if mq in offered]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.queues)!r})"


BUILT_IN: dict[str, type[AllocateStrategy]] = {
    cls.name: cls
    for cls in (
        AllocateMessageQueueAveragely,
        AllocateMessageQueueAveragelyByCircle,
        AllocateMessageQueueConsistentHash,
    )
}
"""The strategies a name selects (CONFIG needs its queues: pass the object)."""


class CustomAllocate(AllocateStrategy):
    """A user's callable as a strategy; its name is its ``name`` attribute, else its
    qualified name."""

    def __init__(self, fn: AllocateFn) -> None:
        self.fn = fn
        self.name = str(getattr(fn, "name", None) or _qualname(fn))

    def __call__(
        self, group: str, client_id: str, queues: list[MessageQueue], client_ids: list[str]
    ) -> Iterable[MessageQueue] | None:
        return self.fn(group, client_id, queues, client_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


AllocateOption = str | AllocateFn


def resolve_allocate(option: AllocateOption) -> AllocateStrategy:
    """A consumer's ``allocate=``: a RocketMQ strategy name, a strategy object or a callable."""
    if isinstance(option, str):
        cls = BUILT_IN.get(option)
        if cls is None:
            known = ", ".join([*BUILT_IN, "or AllocateMessageQueueByConfig(queues)"])
            raise ClientError(f"unknown allocation strategy {option!r}: {known}")
        return cls()
    if isinstance(option, AllocateStrategy):
        return option
    if callable(option):
        return CustomAllocate(option)
    raise ClientError(f"allocate must be a strategy name or a callable, not {option!r}")


def describe(strategy: AllocateStrategy) -> str:
    """What the running info reports under ``allocateMessageQueueStrategy``: RocketMQ's class
    name for the built-in ones (Java reports the object, ``<class>@<identity hash>``), else the
    callable's module and qualified name."""
    if isinstance(strategy, CustomAllocate):
        return _qualname(strategy.fn)
    return f"{JAVA_PACKAGE}.{type(strategy).__name__}"


class AllocationRefused(Exception):
    """A strategy failed, or answered queues it was not offered; the topic keeps its queues."""


def allocate_queues(
    strategy: AllocateStrategy,
    group: str,
    client_id: str,
    queues: Sequence[MessageQueue],
    client_ids: Sequence[str],
) -> list[MessageQueue]:
    """``client_id``'s share of ``queues`` by ``strategy`` (both lists sorted), duplicates
    dropped; raises ``AllocationRefused`` when the strategy raised or named a queue that is not
    in ``queues``."""
    try:
        answer = strategy(group, client_id, list(queues), list(client_ids))
        mine = list(dict.fromkeys(answer or ()))
    except Exception as exc:
        raise AllocationRefused(f"strategy {strategy.name} failed: {exc!r}") from exc
    offered = set(queues)
    foreign = [mq for mq in mine if mq not in offered]
    if foreign:
        shown = ", ".join(map(_show, foreign[:3])) + (", ..." if len(foreign) > 3 else "")
        raise AllocationRefused(
            f"strategy {strategy.name} answered {len(foreign)} queue(s) it was not offered: {shown}"
        )
    return mine


def _show(item: Any) -> str:
    return queue_key(item) if isinstance(item, MessageQueue) else repr(item)


def _qualname(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{name}" if module else name
