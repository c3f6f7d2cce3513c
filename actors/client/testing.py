"""FakeCluster: an in-memory name server and brokers for the client's own tests.

Real loopback sockets, the project's real ``ClientSession``/``Acceptor`` and codec, on a private
``ClientHub`` thread (so a test thread may block on the client while the fake keeps serving).
It speaks just enough of the protocol for the client: routes (105), sends (10/310/320), pulls
(11, with long polling), offsets (14/15/29/30/31), send-back (36, only recorded, when
``accept_send_back``), queue locks (41/42, without expiry), heartbeats (34) with
NOTIFY_CONSUMER_IDS_CHANGED (40) pushed to the group, UNREGISTER_CLIENT (35) and
GET_CONSUMER_LIST_BY_GROUP (38). Pull bodies are real commit-log records
(``runtime.store.record``). Faults can be injected per broker (``fail_sends``,
``silent_sends``, ``dropped_sends``, ``forget_heartbeats``). Not a broker: no disk, no flush, no
replication.
Each broker's state is a ``FakeBroker`` (``testing_state``); the request processors are in
``testing_protocol``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pykka

from actors.client.hub import ClientHub
from actors.client.testing_protocol import BrokerProcessor, NamesrvProcessor
from actors.client.testing_state import FakeBroker, Stored, store_record
from runtime.net import Acceptor, address_of, bind
from runtime.remoting.bodies import BrokerData, MessageQueue, QueueData, TopicRouteData
from runtime.session import session_factory
from runtime.store.record import PutRecord

CLUSTER = "FakeCluster"


class FakeCluster:
    """A name server plus ``brokers`` brokers, each topic with ``queues`` queues per broker.

    ``topics`` exist from the start; others are created by a send naming ``defaultTopic``
    TBW102 when ``auto_create`` (as a broker with autoCreateTopicEnable).
    """

    def __init__(
        self,
        brokers: tuple[str, ...] = ("broker-a",),
        *,
        queues: int = 4,
        topics: tuple[str, ...] = (),
        auto_create: bool = True,
    ) -> None:
        self.queue_count = queues
        self.topics: set[str] = set(topics)
        self.auto_create = auto_create
        self.tbw102_misses = 0
        """With ``auto_create``: how many TBW102 lookups still find no route (brokers that have
        not registered TBW102 yet, just started)."""
        self.brokers = {name: FakeBroker(name) for name in brokers}
        self.hidden: set[str] = set()
        """Brokers left out of every route (serving, but not registered yet)."""
        self.namesrv = ""
        self.namesrv_requests: list[tuple[int, dict[str, str]]] = []
        self.pulled = threading.Condition()
        """Notified at each PULL_MESSAGE a broker gets (``wait_pulls``)."""
        self.hub = ClientHub("fake-cluster-hub", patched=False)
        self._acceptors: list[pykka.ActorRef[Any]] = []
        self._socks: list[Any] = []

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> FakeCluster:
        self.hub.start()
        self.hub.call(self._start_on_hub, what="fake cluster start")
        return self

    def _start_on_hub(self) -> None:
        ns_sock = bind("127.0.0.1", 0, what="fake namesrv")
        self.namesrv = address_of(ns_sock)
        self._socks.append(ns_sock)
        self._acceptors.append(
            Acceptor.start(
                "fake-namesrv", ns_sock, session_factory("fake-namesrv", NamesrvProcessor(self))
            )
        )
        for broker in self.brokers.values():
            sock = bind("127.0.0.1", 0, what=f"fake {broker.name}")
            broker.address = address_of(sock)
            self._socks.append(sock)
            processor = BrokerProcessor(self, broker)
            self._acceptors.append(
                Acceptor.start(broker.name, sock, session_factory(broker.name, processor))
            )

    def stop(self) -> None:
        if not self.hub.running:
            return
        with contextlib.suppress(Exception):
            self.hub.call(self._stop_on_hub, timeout=10, what="fake cluster stop")
        self.hub.stop()

    def _stop_on_hub(self) -> None:
        for ref in self._acceptors:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.stop(block=True, timeout=5)
        for sock in self._socks:
            sock.close()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- test helpers (any thread) ------------------------------------------------------

    def run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the fake's hub (to read or change its state safely)."""
        return self.hub.call(fn, *args, what="fake cluster")

    def broker(self, name: str = "broker-a") -> FakeBroker:
        return self.brokers[name]

    def stored(self, topic: str) -> list[Stored]:
        def collect() -> list[Stored]:
            out: list[Stored] = []
            for broker in self.brokers.values():
                for (t, _qid), items in sorted(broker.queues.items()):
                    if t == topic:
                        out.extend(items)
            return out

        return self.run(collect)

    def put(
        self,
        topic: str,
        body: bytes,
        *,
        broker: str = "broker-a",
        queue_id: int = 0,
        properties: str = "",
        sys_flag: int = 0,
        store_timestamp: int | None = None,
    ) -> int:
        """Store one message directly (as if produced); returns its queue offset."""

        def store() -> int:
            self.topics.add(topic)
            return store_record(
                self.brokers[broker],
                PutRecord(
                    topic=topic,
                    queue_id=queue_id,
                    body=body,
                    properties=properties,
                    sys_flag=sys_flag,
                    born_timestamp=int(time.time() * 1000),
                ),
                store_timestamp,
            )

        return self.run(store)

    def wait_pulls(
        self,
        topic: str,
        queue_id: int,
        count: int,
        *,
        broker: str = "broker-a",
        timeout: float = 10.0,
    ) -> list[float]:
        """The arrival times (``time.monotonic()``) of the first ``count`` pulls of one queue,
        once that many came; AssertionError after ``timeout`` seconds."""
        times = self.brokers[broker].pull_times[(topic, queue_id)]
        with self.pulled:
            if not self.pulled.wait_for(lambda: len(times) >= count, timeout):
                raise AssertionError(f"{len(times)} pulls of {topic}/{queue_id}, not {count}")
            return times[:count]

    def committed(self, group: str, topic: str, queue_id: int, broker: str = "broker-a") -> int:
        return self.run(lambda: self.brokers[broker].offsets.get((group, topic, queue_id), -1))

    def lock_owner(self, group: str, mq: MessageQueue, owner: str | None = None) -> str | None:
        """Who holds ``mq``'s lock for ``group``; with ``owner``, hand it to them first
        (``""`` frees it)."""

        def swap() -> str | None:
            locks = self.brokers[mq.broker_name].locks
            if owner is not None:
                locks.pop((group, mq), None)
                if owner:
                    locks[(group, mq)] = owner
            return locks.get((group, mq))

        return self.run(swap)

    def consumer_ids(self, group: str, broker: str = "broker-a") -> list[str]:
        return self.run(lambda: sorted(self.brokers[broker].consumers.get(group, {})))

    def route(self, topic: str) -> TopicRouteData | None:
        if topic not in self.topics and topic != "TBW102":
            if topic.startswith("%RETRY%"):
                pass
            else:
                return None
        listed = [b for b in self.brokers.values() if b.name not in self.hidden]
        # A broker gives TBW102 8 queues and a group's retry topic 1 (RocketMQ's defaults).
        count = 8 if topic == "TBW102" else 1 if topic.startswith("%RETRY%") else self.queue_count
        return TopicRouteData(
            broker_datas=[
                BrokerData(broker_addrs={0: b.address}, broker_name=b.name, cluster=CLUSTER)
                for b in listed
            ],
            queue_datas=[
                QueueData(
                    broker_name=b.name,
                    perm=6,
                    read_queue_nums=count,
                    write_queue_nums=count,
                )
                for b in listed
            ],
        )
