"""FakeCluster: an in-memory name server and brokers for the client's own tests.

Real loopback sockets, the project's real ``ClientSession``/``Acceptor`` and codec, on a private
``ClientHub`` thread (so a test thread may block on the client while the fake keeps serving).
It speaks just enough of the protocol for the client: routes (105), sends (10/310/320), pulls
(11, with long polling), offsets (14/15/29/30/31), send-back (36, only recorded, when
``accept_send_back``), queue locks (41/42, without expiry), heartbeats (34) with
NOTIFY_CONSUMER_IDS_CHANGED (40) pushed to the group, UNREGISTER_CLIENT (35) and
GET_CONSUMER_LIST_BY_GROUP (38). Pull bodies are real commit-log records
(``runtime.store.record``). Faults can be injected per broker (``fail_sends``,
``silent_sends``, ``forget_heartbeats``). Not a broker: no disk, no flush, no replication.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import pykka

from actors.client.hub import ClientHub
from runtime.net import Acceptor, address_of, bind
from runtime.remoting.batch import decode_batch
from runtime.remoting.bodies import (
    BrokerData,
    CheckClientRequestBody,
    ConsumerListBody,
    HeartbeatData,
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageQueue,
    QueueData,
    TopicRouteData,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import PullSysFlag, RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.headers import (
    PullMessageRequestHeader,
    decode_header,
    decode_send_header,
)
from runtime.remoting.properties import tag_hash
from runtime.session import SessionHandle, session_factory
from runtime.store.record import (
    PutRecord,
    encode_record,
    host_bytes,
    offset_msg_id,
    parse_properties,
)

CLUSTER = "FakeCluster"


@dataclass
class Stored:
    record: bytes
    tags_code: int
    store_timestamp: int


@dataclass
class FakeBroker:
    """One broker's state (touched only on the fake's hub)."""

    name: str
    address: str = ""
    queues: dict[tuple[str, int], list[Stored]] = field(default_factory=lambda: defaultdict(list))
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)
    consumers: dict[str, dict[str, SessionHandle]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    producers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    arrivals: dict[tuple[str, int], gevent.event.Event] = field(default_factory=dict)
    physical: int = 0
    fail_sends: list[int] = field(default_factory=list)
    """Response codes to answer the next sends with, first first."""
    silent_sends: int = 0
    """How many of the next sends get no answer at all."""
    requests: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    locks: dict[tuple[str, MessageQueue], str] = field(default_factory=dict)
    """(group, queue) -> the client id holding its lock (LOCK_BATCH_MQ; no expiry)."""
    accept_send_back: bool = False
    """CONSUMER_SEND_MSG_BACK answers SUCCESS (and is only recorded); else not supported."""
    accept_retry_sends: bool | None = None
    """Sends to a ``%RETRY%`` topic (a consumer's copy after a failed send-back) are stored;
    else SYSTEM_ERROR. None: as ``accept_send_back`` (a broker that takes no send-back takes no
    copy either, so the consumer retries locally)."""
    property_filter: bool = True
    """CHECK_CLIENT_CONFIG answers SUCCESS for SQL92 subscriptions (as ``enablePropertyFilter``);
    else SYSTEM_ERROR. TAG subscriptions always pass. (Pulls do not evaluate SQL92 here.)"""
    checks: list[CheckClientRequestBody] = field(default_factory=list)
    """Every CHECK_CLIENT_CONFIG body received, first first."""
    forget_heartbeats: bool = False
    """HEART_BEAT answers SUCCESS but registers no consumer (a restarted broker that has not
    heard from a client yet, held in that state)."""
    zero_if_not_found: bool = False
    """QUERY_CONSUMER_OFFSET with no stored offset: 0 (RocketMQ, when the queue starts at 0)
    instead of QUERY_NOT_FOUND."""

    def codes(self) -> list[int]:
        return [code for code, _ in self.requests]


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
        self.brokers = {name: FakeBroker(name) for name in brokers}
        self.namesrv = ""
        self.namesrv_requests: list[tuple[int, dict[str, str]]] = []
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
            Acceptor.start("fake-namesrv", ns_sock, session_factory("fake-namesrv", _Namesrv(self)))
        )
        for broker in self.brokers.values():
            sock = bind("127.0.0.1", 0, what=f"fake {broker.name}")
            broker.address = address_of(sock)
            self._socks.append(sock)
            processor = _Broker(self, broker)
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
            return _store(
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
        return TopicRouteData(
            broker_datas=[
                BrokerData(broker_addrs={0: b.address}, broker_name=b.name, cluster=CLUSTER)
                for b in self.brokers.values()
            ],
            queue_datas=[
                QueueData(
                    broker_name=b.name,
                    perm=6,
                    read_queue_nums=self.queue_count if topic != "TBW102" else 8,
                    write_queue_nums=self.queue_count if topic != "TBW102" else 8,
                )
                for b in self.brokers.values()
            ],
        )


def _store(broker: FakeBroker, rec: PutRecord, store_timestamp: int | None = None) -> int:
    items = broker.queues[(rec.topic, rec.queue_id)]
    now = store_timestamp if store_timestamp is not None else int(time.time() * 1000)
    host, _, port = broker.address.rpartition(":")
    data = encode_record(
        rec,
        queue_offset=len(items),
        physical_offset=broker.physical,
        store_timestamp=now,
        store_host=host_bytes(host or "127.0.0.1"),
        store_port=int(port or 0),
    )
    broker.physical += len(data)
    tags = parse_properties(rec.properties).get("TAGS")
    items.append(Stored(data, tag_hash(tags) if tags else 0, now))
    event = broker.arrivals.pop((rec.topic, rec.queue_id), None)
    if event is not None:
        event.set()
    return len(items) - 1


def _ok(request: RemotingCommand, ext: dict[str, object] | None = None, body: bytes = b"") -> Any:
    return RemotingCommand.response_to(request, ResponseCode.SUCCESS, ext_fields=ext, body=body)


class _Namesrv:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        self.cluster.namesrv_requests.append((request.code, dict(request.ext_fields)))
        if request.code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            topic = request.ext_fields.get("topic", "")
            route = self.cluster.route(topic)
            if route is None or (topic == "TBW102" and not self.cluster.auto_create):
                return RemotingCommand.response_to(
                    request, ResponseCode.TOPIC_NOT_EXIST, remark=f"no route for {topic}"
                )
            return _ok(request, body=encode_body(route))
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def on_close(self, session: SessionHandle) -> None:
        pass


class _Broker:
    def __init__(self, cluster: FakeCluster, broker: FakeBroker) -> None:
        self.cluster = cluster
        self.b = broker

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        b = self.b
        code = request.code
        b.requests.append((code, dict(request.ext_fields)))
        if code in (
            RequestCode.SEND_MESSAGE,
            RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE,
        ):
            return self._send(request)
        if code == RequestCode.PULL_MESSAGE:
            return self._pull(request)
        ext = request.ext_fields
        if code == RequestCode.QUERY_CONSUMER_OFFSET:
            key = (ext["consumerGroup"], ext["topic"], int(ext["queueId"]))
            if key in b.offsets:
                return _ok(request, {"offset": b.offsets[key]})
            if b.zero_if_not_found:
                return _ok(request, {"offset": 0})
            return RemotingCommand.response_to(request, ResponseCode.QUERY_NOT_FOUND, "none")
        if code == RequestCode.UPDATE_CONSUMER_OFFSET:
            key = (ext["consumerGroup"], ext["topic"], int(ext["queueId"]))
            if int(ext["commitOffset"]) >= 0:
                b.offsets[key] = int(ext["commitOffset"])
            return None if request.is_oneway else _ok(request)
        if code == RequestCode.GET_MAX_OFFSET:
            return _ok(request, {"offset": len(b.queues[(ext["topic"], int(ext["queueId"]))])})
        if code == RequestCode.GET_MIN_OFFSET:
            return _ok(request, {"offset": 0})
        if code == RequestCode.SEARCH_OFFSET_BY_TIMESTAMP:
            items = b.queues[(ext["topic"], int(ext["queueId"]))]
            ts = int(ext["timestamp"])
            offset = next((i for i, s in enumerate(items) if s.store_timestamp >= ts), len(items))
            return _ok(request, {"offset": offset})
        if code == RequestCode.HEART_BEAT:
            data = decode_body(HeartbeatData, request.body)
            changed = []
            for pd in data.producer_data_set:
                b.producers[pd.group_name].add(data.client_id)
            for cd in data.consumer_data_set:
                if b.forget_heartbeats:
                    break
                members = b.consumers[cd.group_name]
                if data.client_id not in members:
                    changed.append(cd.group_name)
                members[data.client_id] = session
            for group in changed:
                self._notify(group)
            return _ok(request)
        if code == RequestCode.UNREGISTER_CLIENT:
            group = ext.get("consumerGroup")
            if group and b.consumers[group].pop(ext["clientID"], None) is not None:
                self._notify(group)
            if ext.get("producerGroup"):
                b.producers[ext["producerGroup"]].discard(ext["clientID"])
            return _ok(request)
        if code == RequestCode.CONSUMER_SEND_MSG_BACK and b.accept_send_back:
            return _ok(request)
        if code == RequestCode.LOCK_BATCH_MQ:
            lock = decode_body(LockBatchRequestBody, request.body)
            granted = []
            for mq in lock.mq_set:
                key = (lock.consumer_group, mq)
                if b.locks.setdefault(key, lock.client_id) == lock.client_id:
                    granted.append(mq)
            return _ok(request, body=encode_body(LockBatchResponseBody(lock_ok_mq_set=granted)))
        if code == RequestCode.UNLOCK_BATCH_MQ:
            unlock = decode_body(UnlockBatchRequestBody, request.body)
            for mq in unlock.mq_set:
                if b.locks.get((unlock.consumer_group, mq)) == unlock.client_id:
                    del b.locks[(unlock.consumer_group, mq)]
            return _ok(request)
        if code == RequestCode.CHECK_CLIENT_CONFIG:
            check = decode_body(CheckClientRequestBody, request.body)
            b.checks.append(check)
            sub = check.subscription_data
            if sub is not None and sub.expression_type != "TAG" and not b.property_filter:
                return RemotingCommand.response_to(
                    request, ResponseCode.SYSTEM_ERROR, "The broker does not support SQL92"
                )
            return _ok(request)
        if code == RequestCode.GET_CONSUMER_LIST_BY_GROUP:
            ids = sorted(b.consumers.get(ext["consumerGroup"], {}))
            return _ok(request, body=encode_body(ConsumerListBody(consumer_id_list=ids)))
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def _notify(self, group: str) -> None:
        for handle in list(self.b.consumers[group].values()):
            handle.send_oneway(
                RemotingCommand.request(
                    RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"consumerGroup": group}
                )
            )

    def on_close(self, session: SessionHandle) -> None:
        for group, members in self.b.consumers.items():
            gone = [cid for cid, h in members.items() if h is session]
            for cid in gone:
                del members[cid]
            if gone:
                self._notify(group)

    def _send(self, request: RemotingCommand) -> RemotingCommand | None:
        b = self.b
        if b.silent_sends > 0:
            b.silent_sends -= 1
            return None
        if b.fail_sends:
            return RemotingCommand.response_to(request, b.fail_sends.pop(0), remark="injected")
        h = decode_send_header(request.code, request.ext_fields, opaque=request.opaque)
        retry_ok = b.accept_send_back if b.accept_retry_sends is None else b.accept_retry_sends
        if h.topic.startswith("%RETRY%") and not retry_ok:
            return RemotingCommand.response_to(request, ResponseCode.SYSTEM_ERROR, remark="no")
        if h.topic not in self.cluster.topics:
            if not (self.cluster.auto_create and h.default_topic == "TBW102"):
                return RemotingCommand.response_to(request, ResponseCode.TOPIC_NOT_EXIST)
            self.cluster.topics.add(h.topic)
        if h.batch:
            entries = [(e.body, e.properties, e.flag) for e in decode_batch(request.body)]
        else:
            entries = [(request.body, h.properties, h.flag)]
        first = None
        first_phys = b.physical
        for body, props, flag in entries:
            offset = _store(
                b,
                PutRecord(
                    topic=h.topic,
                    queue_id=h.queue_id,
                    body=body,
                    properties=props,
                    flag=flag,
                    sys_flag=h.sys_flag,
                    born_timestamp=h.born_timestamp,
                    reconsume_times=h.reconsume_times,
                ),
            )
            first = offset if first is None else first
        host, _, port = b.address.rpartition(":")
        msg_id = offset_msg_id(host_bytes(host), int(port), first_phys)
        if request.is_oneway:
            return None
        return _ok(request, {"msgId": msg_id, "queueId": h.queue_id, "queueOffset": first})

    def _pull(self, request: RemotingCommand) -> RemotingCommand:
        b = self.b
        h = decode_header(PullMessageRequestHeader, request.ext_fields, opaque=request.opaque)
        key = (h.topic, h.queue_id)
        if h.sys_flag & PullSysFlag.COMMIT_OFFSET and h.commit_offset >= 0:
            b.offsets[(h.consumer_group, h.topic, h.queue_id)] = h.commit_offset
        deadline = time.monotonic() + h.suspend_timeout_millis / 1000
        while True:
            items = b.queues[key]
            if h.queue_offset > len(items) or h.queue_offset < 0:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.PULL_OFFSET_MOVED,
                    ext_fields=_pull_ext(len(items), len(items)),
                )
            if h.queue_offset < len(items):
                break
            remaining = deadline - time.monotonic()
            if not h.sys_flag & PullSysFlag.SUSPEND or remaining <= 0:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.PULL_NOT_FOUND,
                    ext_fields=_pull_ext(h.queue_offset, len(items)),
                )
            event = b.arrivals.setdefault(key, gevent.event.Event())
            event.wait(remaining)
        wanted = None
        if h.subscription and h.subscription.strip() not in ("", "*"):
            wanted = {tag_hash(t.strip()) for t in h.subscription.split("||") if t.strip()}
        chosen: list[bytes] = []
        size = 0
        offset = h.queue_offset
        while offset < len(items) and len(chosen) < h.max_msg_nums:
            stored = items[offset]
            offset += 1
            if wanted is not None and stored.tags_code not in wanted:
                continue
            chosen.append(stored.record)
            size += len(stored.record)
        if not chosen:
            return RemotingCommand.response_to(
                request,
                ResponseCode.PULL_RETRY_IMMEDIATELY,
                ext_fields=_pull_ext(offset, len(items)),
            )
        return RemotingCommand.response_to(
            request,
            ResponseCode.SUCCESS,
            ext_fields=_pull_ext(offset, len(items)),
            body=b"".join(chosen),
        )


def _pull_ext(next_offset: int, max_offset: int) -> dict[str, object]:
    return {
        "suggestWhichBrokerId": 0,
        "nextBeginOffset": next_offset,
        "minOffset": 0,
        "maxOffset": max_offset,
    }
