"""Admin: cluster and topic administration (the part of RocketMQ's MQAdminExt mqadmin uses most).

```python
with Admin(namesrv="127.0.0.1:9876") as admin:
    admin.create_topic("Orders", cluster="DefaultCluster", queues=8)
    for row in admin.consume_stats("orders-billing"):
        print(row.queue, row.broker_offset, row.consumer_offset, row.diff)
```

Every method blocks until it has its answer (``timeout`` per request, 3 s) and may be called
from any thread. Name-server requests go to the configured name servers in order until one
answers; broker requests go to each master concerned. A refusal raises ``BrokerError`` with
RocketMQ's response code (e.g. 17 TOPIC_NOT_EXIST); an unreachable peer ``ConnectError`` or
``RequestTimeoutError``. ``python -m runtime admin`` is the command line over this class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from actors.client.admin_acl import AclAdmin
from actors.client.admin_controller import ControllerAdmin
from actors.client.admin_export import ExportAdmin
from actors.client.admin_groups import GroupAdmin
from actors.client.admin_messages import MessageAdmin
from actors.client.admin_namesrv import NamesrvAdmin
from actors.client.admin_queues import QueueAdmin
from actors.client.admin_topics import PERM_READ_WRITE, QueueOffsets, TopicAdmin
from actors.client.config import ClientConfig, TlsOptions
from actors.client.errors import BrokerError, ClientError, ClientStateError
from actors.client.hub import ClientHub, acquire_shared, release_shared
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt
from actors.client.pull import decode_messages
from actors.client.remoting import make_request
from actors.client.trace_view import TraceAdmin
from runtime.acl.signature import SessionCredentials
from runtime.errors import AddressError, ProtocolError
from runtime.hostport import format_address
from runtime.remoting.bodies import (
    BrokerStatsData,
    ClusterInfo,
    KVTable,
    OrderTopicRouteData,
    TopicList,
    TopicRouteData,
    decode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.ha_bodies import HARuntimeInfo
from runtime.store.msg_id import decode_offset_msg_id

T = TypeVar("T")

__all__ = ["PERM_READ_WRITE", "Admin", "BrokerAddress", "QueueOffsets"]


class BrokerAddress(NamedTuple):
    """One broker of ``brokers``: its cluster, name, id (0: the master) and address."""

    cluster: str
    name: str
    broker_id: int
    address: str


class Admin(
    TopicAdmin,
    NamesrvAdmin,
    GroupAdmin,
    MessageAdmin,
    QueueAdmin,
    AclAdmin,
    ExportAdmin,
    ControllerAdmin,
    TraceAdmin,
):
    """See the module docstring. ``start()`` / ``shutdown()`` or use it as a context manager.
    Creating, deleting a topic and its queues' offsets: ``TopicAdmin`` (admin_topics); KV
    config, order conf, write perms and topic lists: ``NamesrvAdmin`` (admin_namesrv); who
    consumes a topic, a group's topics, cloning a group's offsets: ``GroupAdmin`` (admin_groups);
    reading queues without consuming, a broker's config, a topic's perm: ``MessageAdmin``
    (admin_messages); consume-queue entries, members' offsets, cleanups, resuming half
    messages: ``QueueAdmin`` (admin_queues); ACL accounts and white list: ``AclAdmin``
    (admin_acl); exported metadata and configs, a group's config per broker, a simulated
    allocation, a broker's producers: ``ExportAdmin`` (admin_export); the failover controller's
    view, handovers and brokers' epochs: ``ControllerAdmin`` (admin_controller); message traces:
    ``TraceAdmin`` (trace_view)."""

    def __init__(
        self,
        namesrv: str | list[str] | None = None,
        *,
        timeout: float = 3.0,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        hub: ClientHub | None = None,
    ) -> None:
        self.timeout = timeout
        self.config = ClientConfig.make(namesrv, credentials=credentials, tls=tls)
        self._own_hub = hub is None
        self._hub = hub
        self._instance: ClientInstance | None = None
        self._state = "created"
        self._lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Admin:
        with self._lock:
            if self._state == "running":
                return self
            if self._state != "created":
                raise ClientStateError("admin", self._state)
            hub = self._hub = self._hub or acquire_shared()
            try:
                hub.call(self._start_on_hub, what="admin start")
            except BaseException:
                if self._own_hub:
                    release_shared(hub)
                raise
            self._state = "running"
        return self

    def _start_on_hub(self) -> None:
        instance = ClientInstance(self.config)
        instance.start()
        self._instance = instance

    def shutdown(self, timeout: float = 10.0) -> None:
        """Close every connection. Idempotent."""
        with self._lock:
            was_running = self._state == "running"
            self._state = "shut down"
            if not was_running:
                return
            hub = self._hub
            assert hub is not None
            try:
                hub.call(self._stop_on_hub, timeout=timeout, what="admin shutdown")
            finally:
                if self._own_hub:
                    release_shared(hub)

    def _stop_on_hub(self) -> None:
        if self._instance is not None:
            self._instance.stop()

    def __enter__(self) -> Admin:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    # -- name server --------------------------------------------------------------------------

    def cluster_info(self) -> ClusterInfo:
        """GET_BROKER_CLUSTER_INFO: every broker group (name -> id -> address) and cluster."""
        response = self._namesrv(RequestCode.GET_BROKER_CLUSTER_INFO, {}, "cluster info")
        return decode_body(ClusterInfo, response.body)

    def topic_list(self) -> list[str]:
        """GET_ALL_TOPIC_LIST_FROM_NAMESERVER: every topic some broker registered, sorted."""
        response = self._namesrv(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, {}, "topic list")
        return sorted(decode_body(TopicList, response.body).topic_list)

    def topic_route(self, topic: str) -> OrderTopicRouteData:
        """GET_ROUTEINFO_BY_TOPIC: the brokers and queue counts of ``topic`` (and its
        ``order_topic_conf`` when the name server adds one)."""
        response = self._namesrv(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}, "route")
        return decode_body(OrderTopicRouteData, response.body)

    def brokers(self, cluster: str | None = None) -> list[BrokerAddress]:
        """Every broker (masters and slaves) of one cluster or of all, sorted."""
        info = self.cluster_info()
        if cluster is not None and cluster not in info.cluster_addr_table:
            raise ClientError(f"no cluster {cluster!r} (known: {sorted(info.cluster_addr_table)})")
        out = []
        for name_of, names in sorted(info.cluster_addr_table.items()):
            if cluster is not None and name_of != cluster:
                continue
            for name in sorted(names):
                data = info.broker_addr_table.get(name)
                for bid, address in sorted((data.broker_addrs if data else {}).items()):
                    out.append(BrokerAddress(name_of, name, bid, address))
        return out

    def masters(self, cluster: str | None = None) -> dict[str, str]:
        """Broker name -> master address, of one cluster or of all."""
        return {b.name: b.address for b in self.brokers(cluster) if b.broker_id == 0}

    # -- brokers ------------------------------------------------------------------------------

    def broker_runtime_info(self, broker_addr: str) -> dict[str, str]:
        """GET_BROKER_RUNTIME_INFO: the broker's figures as ``mqadmin brokerStatus`` prints them
        (``putTps`` / ``getTransferedTps``: messages per second over 10 s, 60 s and 600 s;
        ``msgPutTotalTodayNow`` - ``msgPutTotalTodayMorning``: messages stored today; ...)."""
        response = self._broker(
            broker_addr, RequestCode.GET_BROKER_RUNTIME_INFO, {}, "broker runtime info"
        )
        return dict(decode_body(KVTable, response.body).table)

    def ha_status(self, broker_addr: str) -> HARuntimeInfo:
        """GET_BROKER_HA_STATUS (907, ``mqadmin haStatus``): a master's slave links (acked
        offset, how far behind, in sync or not, bytes a second) or a slave's link to its
        master (``runtime.remoting.ha_bodies``)."""
        response = self._broker(broker_addr, RequestCode.GET_BROKER_HA_STATUS, {}, "HA status")
        return decode_body(HARuntimeInfo, response.body)

    def broker_stats(self, broker_addr: str, name: str, key: str) -> BrokerStatsData | None:
        """VIEW_BROKER_STATS_DATA (315): one statistic over the last minute, hour and day
        (``TOPIC_PUT_NUMS`` of a topic, ``GROUP_GET_NUMS`` of ``topic@group``, ...); None when
        the broker has no such item (no traffic since it started)."""
        try:
            response = self._broker(
                broker_addr,
                RequestCode.VIEW_BROKER_STATS_DATA,
                {"statsName": name, "statsKey": key},
                "broker stats",
            )
        except BrokerError as exc:
            if exc.code == ResponseCode.SYSTEM_ERROR and "not exist" in (exc.remark or ""):
                return None
            raise
        return decode_body(BrokerStatsData, response.body)

    def view_message(self, offset_msg_id: str) -> MessageExt:
        """VIEW_MESSAGE_BY_ID: the message an offset message id (SendResult.offset_msg_id, 32 hex
        digits, 56 for an IPv6 store host: store host, port and commit-log offset) points at,
        from that broker."""
        try:
            where = decode_offset_msg_id(offset_msg_id)
        except AddressError as exc:
            raise ClientError(f"{offset_msg_id!r} is not an offset message id: {exc}") from None
        address = format_address(where.ip, where.port)
        response = self._broker(
            address,
            RequestCode.VIEW_MESSAGE_BY_ID,
            {"offset": str(where.physical_offset)},
            "view message",
        )
        found = _decoded(response.body, self._broker_name(address), address)
        if len(found) != 1:
            raise ClientError(f"{address} answered {len(found)} records for {offset_msg_id}")
        return found[0]

    def query_messages(
        self,
        topic: str,
        key: str,
        *,
        max_num: int = 32,
        begin_ms: int = 0,
        end_ms: int = 2**63 - 1,
    ) -> list[MessageExt]:
        """QUERY_MESSAGE on every master serving ``topic``: the messages stored between the two
        times whose KEYS include ``key`` or whose UNIQ_KEY (the producer's msg_id) is ``key``,
        up to ``max_num`` per broker, newest first per broker."""
        ext = {
            "topic": topic,
            "key": key,
            "maxNum": str(max_num),
            "beginTimestamp": str(begin_ms),
            "endTimestamp": str(end_ms),
        }
        found: list[MessageExt] = []
        for address, broker in self._route_masters(topic).items():
            try:
                response = self._broker(address, RequestCode.QUERY_MESSAGE, ext, "query message")
            except BrokerError as exc:
                if exc.code == ResponseCode.QUERY_NOT_FOUND:
                    continue
                raise
            found.extend(_decoded(response.body, broker, address))
        return found

    # -- requests -----------------------------------------------------------------------------

    def _targets(self, cluster: str | None, broker_addr: str | None) -> list[str]:
        """One broker, or every master of a cluster (of all clusters when neither is given)."""
        if broker_addr is not None:
            return [broker_addr]
        addresses = list(self.masters(cluster).values())
        if not addresses:
            raise ClientError(f"no master broker in {cluster or 'any cluster'}")
        return addresses

    def _broker_name(self, address: str) -> str:
        for data in self.cluster_info().broker_addr_table.values():
            if address in data.broker_addrs.values():
                return data.broker_name
        return ""

    def _route_masters(self, topic: str, route: TopicRouteData | None = None) -> dict[str, str]:
        """Master address -> broker name, of every broker serving ``topic``."""
        route = route or self.topic_route(topic)
        served = {q.broker_name for q in route.queue_datas}
        return {
            b.broker_addrs[0]: b.broker_name
            for b in sorted(route.broker_datas, key=lambda b: b.broker_name)
            if b.broker_name in served and 0 in b.broker_addrs
        }

    def _namesrv(self, code: int, ext: dict[str, str], what: str) -> RemotingCommand:
        errors: list[ClientError] = []
        for address in self.config.namesrv:
            try:
                return self._broker(address, code, ext, what)
            except ClientError as exc:
                errors.append(exc)
                if getattr(exc, "code", None) is not None:
                    raise  # the name server answered: another one would answer the same
        raise errors[-1] if errors else ClientError("no name server configured")

    def _broker(
        self,
        address: str,
        code: int,
        ext: dict[str, str],
        what: str,
        body: bytes = b"",
        timeout: float | None = None,
    ) -> RemotingCommand:
        instance = self._running()
        wait = self.timeout if timeout is None else timeout

        def invoke() -> RemotingCommand:
            cmd = make_request(code, ext, body)
            return instance.remoting.invoke_ok(address, cmd, wait, what)

        return self._call(invoke, what, wait)

    def _running(self) -> ClientInstance:
        if self._state != "running" or self._instance is None:
            raise ClientStateError("admin", self._state)
        return self._instance

    def _call(self, fn: Callable[[], T], what: str, timeout: float | None = None) -> T:
        hub = self._hub
        assert hub is not None
        wait = self.timeout if timeout is None else timeout
        result: Any = hub.call(fn, timeout=wait * 2 + 1.0, what=what)
        return result


def _decoded(body: bytes, broker_name: str, address: str) -> list[MessageExt]:
    try:
        return decode_messages(body, broker_name)
    except ProtocolError as exc:
        raise ClientError(f"{address} answered records that do not decode: {exc}") from None
