"""The name server's request processor: remoting requests -> RouteTable and KVConfig messages.

Runs in each request's own greenlet (see runtime.session); it asks the actors with a
timeout and encodes the reply. Codes served: REGISTER_BROKER (a JSON body, or with the header's
``compressed`` RocketMQ's binary form, inflated to at most ``MAX_INFLATED_REGISTER``: a body
that cannot be decoded gets SYSTEM_ERROR and a WARNING naming the broker, and so does one whose
nonzero ``bodyCrc32`` is not the body's, remark "crc32 not match" as RocketMQ; the reply's body is
the KVTable of namespace ORDER_TOPIC_CONFIG when there is one, as RocketMQ answers; part of a
table from a broker not registered under its id, see ``RouteTable``, gets SYSTEM_ERROR "register
broker failed", as RocketMQ 5 answers it; the header's ``enableActingMaster`` and the body's
``stateVersion`` go to the RouteTable: prime slave, conflicting registrations),
REGISTER_TOPIC_IN_NAMESRV (217: header ``topic``,
body a TopicRouteData; SUCCESS whether or not its queue data were applied, as RocketMQ),
UNREGISTER_BROKER, GET_ROUTEINFO_BY_TOPIC (with ``orderMessageEnable``, the topic's
``orderTopicConf`` from ORDER_TOPIC_CONFIG when it has one), GET_BROKER_CLUSTER_INFO,
GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
DELETE_TOPIC_IN_NAMESRV (header ``topic``, optional ``clusterName``: only that cluster's
brokers; SUCCESS whether or not the topic was known, as RocketMQ), QUERY_DATA_VERSION (322:
header ``changed``, whether the body's DataVersion differs in timestamp, counter or RocketMQ 5's
stateVersion, body the DataVersion held for the broker; a sign of life, see
``RouteTable.query_data_version``), BROKER_HEARTBEAT (904, RocketMQ 5: a sign of life of a
registered broker, SUCCESS whether or not it is registered, as RocketMQ), the admin requests of
``admin_requests`` (KV config, write perm of a broker, topics by cluster, system topics),
GET_NAMESRV_CONFIG (319: this name server's keys as properties text; UPDATE_NAMESRV_CONFIG,
318, is refused: the config is read at start), and
with the controller (enableControllerInNamesrv) CONTROLLER_HEARTBEAT (asks the Controller) and
the controller's admin requests of ``controller_requests`` (getSyncStateSet,
getControllerMetaData, electMaster);
anything else gets REQUEST_CODE_NOT_SUPPORTED. A closed broker connection drops that broker at
once; the route table closes the connection of a broker it expires.
"""

from __future__ import annotations

import gevent.lock
import msgspec
from loguru import logger

from actors.namesrv import admin_requests, controller_requests
from actors.namesrv.admin_requests import AdminRequests
from actors.namesrv.controller import Heartbeat, Refused, SessionClosed
from actors.namesrv.controller_requests import ControllerRequests
from actors.namesrv.group_commit import settled
from actors.namesrv.headers import (
    BrokerHeartbeatRequestHeader,
    QueryDataVersionRequestHeader,
    RegisterTopicRequestHeader,
)
from actors.namesrv.kv_config import ORDER_TOPIC_CONFIG
from actors.namesrv.route_table import RegisterBroker, Registration, TopicConfigEntry
from actors.namesrv.write_auth import WriteAuth
from runtime.acl.refusals import RefusalLog
from runtime.actor import offload
from runtime.directory import Directory
from runtime.errors import ProtocolError
from runtime.ha.control import CONTROLLER_HEARTBEAT, ControllerHeartbeat, encode
from runtime.remoting.bodies import (
    DataVersion,
    KVTable,
    OrderTopicRouteData,
    RegisterBrokerBody,
    TopicList,
    TopicRouteData,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import (
    GetRouteInfoRequestHeader,
    Header,
    RegisterBrokerRequestHeader,
    UnregisterBrokerRequestHeader,
)
from runtime.remoting.register_body import (
    MAX_INFLATED_REGISTER,
    CompressedRegisterBody,
    body_crc32,
    decode_register_body,
)
from runtime.session import SessionHandle

ASK_TIMEOUT = 5.0


class DeleteTopicFromNamesrvRequestHeader(Header, kw_only=True):
    """DELETE_TOPIC_IN_NAMESRV (216); ``clusterName`` is RocketMQ 5's (4.x sends only the
    topic)."""

    topic: str
    cluster_name: str | None = None


def version_key(dv: DataVersion) -> str:
    """A DataVersion as the RouteTable keeps it (``timestamp:counter:stateVersion``): two are
    equal when all three are, as RocketMQ 5's DataVersion.equals has it."""
    return f"{dv.timestamp}:{dv.counter}:{dv.state_version}"


def data_version_of(key: str | None) -> DataVersion | None:
    """The DataVersion a ``version_key`` stands for (None for none, or a registration without
    a body)."""
    parts = (key or "").split(":")
    if len(parts) not in (2, 3):
        return None
    timestamp, counter, state = (*parts, "0")[:3]
    return DataVersion(timestamp=int(timestamp), counter=int(counter), state_version=int(state))


def registration_kind(h: RegisterBrokerRequestHeader) -> Registration:
    """The kind of a REGISTER_BROKER by its marks (``Registration``; none: RocketMQ's merge)."""
    if h.actormq_incremental:
        return Registration.INCREMENT
    return Registration.WHOLE if h.actormq_full else Registration.MERGE


def heartbeat_timeout_ms(h: RegisterBrokerRequestHeader) -> int | None:
    """The broker's own liveness timeout: its ``heartbeatTimeoutMillis`` when positive (RocketMQ
    takes any value; 0 or less would drop the broker at every scan), else None: the name
    server's ``brokerChannelExpiredTime``."""
    millis = h.heartbeat_timeout_millis
    return int(millis) if millis is not None and millis > 0 else None


_DECODING = gevent.lock.BoundedSemaphore(1)
"""Compressed registrations decoded at once (by this process's name servers)."""


def _decode_compressed(body: bytes, opaque: int) -> CompressedRegisterBody:
    """RocketMQ's compressed register body, inflated to at most ``MAX_INFLATED_REGISTER``."""
    return decode_register_body(body, limit=MAX_INFLATED_REGISTER, opaque=opaque)


class NamesrvProcessor:
    """Serves one name server's requests through the RouteTable named ``route_table`` and the
    KVConfig named ``kv_config``."""

    def __init__(
        self,
        directory: Directory,
        route_table: str,
        controller: str | None = None,
        *,
        kv_config: str,
        order_message_enable: bool = False,
        config_text: str = "",
        write_auth: WriteAuth | None = None,
    ):
        self.write_auth = write_auth
        """With the inner account set: the check of requests that change state."""
        self._refusals = RefusalLog(who="name server")
        self.config_text = config_text
        """This name server's config as properties text (GET_NAMESRV_CONFIG)."""
        self.directory = directory
        self.route_table = route_table
        self.controller = controller
        self.kv_config = kv_config
        self.order_message_enable = order_message_enable
        self.admin = AdminRequests(directory, route_table, kv_config)
        self.controller_requests = ControllerRequests(directory, controller)

    def _table(self):
        return self.directory.proxy(self.route_table)

    def _kv(self):
        return self.directory.proxy(self.kv_config)

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        code = request.code
        if self.write_auth is not None:
            denied = self.write_auth.check(request)
            if denied is not None:
                self._refusals.refused(code, session.remote_address, denied)
                if request.is_oneway:
                    return None
                return RemotingCommand.response_to(
                    request, ResponseCode.SYSTEM_ERROR, remark=f"AclException: {denied}"
                )
        if code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            return self._route(request)
        if code == RequestCode.GET_NAMESRV_CONFIG:
            body = self.config_text.encode()
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)
        if code == RequestCode.UPDATE_NAMESRV_CONFIG:
            return RemotingCommand.response_to(
                request,
                ResponseCode.SYSTEM_ERROR,
                remark="the name server's config cannot be changed while it runs: edit its "
                "config file and restart it",
            )
        if code == CONTROLLER_HEARTBEAT:
            return self._controller_heartbeat(session, request)
        if code == RequestCode.REGISTER_BROKER:
            return self._register(session, request)
        if code == RequestCode.REGISTER_TOPIC_IN_NAMESRV:
            return self._register_topic(request)
        if code == RequestCode.UNREGISTER_BROKER:
            h = decode_header(
                UnregisterBrokerRequestHeader, request.ext_fields, opaque=request.opaque
            )
            self._table().unregister_broker(
                h.cluster_name, h.broker_name, h.broker_addr, h.broker_id
            ).get(timeout=ASK_TIMEOUT)
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS)
        if code == RequestCode.QUERY_DATA_VERSION:
            return self._query_data_version(request)
        if code == RequestCode.BROKER_HEARTBEAT:
            h = decode_header(
                BrokerHeartbeatRequestHeader, request.ext_fields, opaque=request.opaque
            )
            self._table().broker_heartbeat(h.cluster_name, h.broker_addr).get(timeout=ASK_TIMEOUT)
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS)
        if code == RequestCode.GET_BROKER_CLUSTER_INFO:
            info = self._table().cluster_info().get(timeout=ASK_TIMEOUT)
            return RemotingCommand.response_to(
                request, ResponseCode.SUCCESS, body=encode_body(info)
            )
        if code == RequestCode.DELETE_TOPIC_IN_NAMESRV:
            h = decode_header(
                DeleteTopicFromNamesrvRequestHeader, request.ext_fields, opaque=request.opaque
            )
            self._table().delete_topic(h.topic, h.cluster_name or None).get(timeout=ASK_TIMEOUT)
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS)
        if code == RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER:
            topics = self._table().topic_list().get(timeout=ASK_TIMEOUT)
            body = encode_body(TopicList(topic_list=topics))
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)
        if code in admin_requests.CODES:
            return self.admin.process(request)
        if code in controller_requests.CODES:
            return self.controller_requests.process(session, request)
        return RemotingCommand.response_to(
            request,
            ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
            remark=f"request code {code} is not supported by the name server",
        )

    def on_close(self, session: SessionHandle) -> None:
        ref = self.directory.get(self.route_table)
        if ref is not None:
            ref.proxy().channel_closed(session.session_id)
        if self.controller is not None:
            controller = self.directory.get(self.controller)
            if controller is not None:
                controller.tell(SessionClosed(session.session_id))

    def _controller_heartbeat(
        self, session: SessionHandle, request: RemotingCommand
    ) -> RemotingCommand:
        if self.controller is None:
            return RemotingCommand.response_to(
                request,
                ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                remark="this name server runs no controller (enableControllerInNamesrv=false)",
            )
        try:
            hb = msgspec.json.decode(request.body, type=ControllerHeartbeat)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            raise ProtocolError(
                f"controller heartbeat body: {exc}", fatal=False, opaque=request.opaque
            ) from None
        answer = self.directory.ask(self.controller, Heartbeat(hb, session), timeout=ASK_TIMEOUT)
        answer = settled(answer, ASK_TIMEOUT)  # (after the store's flush that holds its changes)
        if isinstance(answer, Refused):
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_ERROR, remark=answer.remark
            )
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=encode(answer))

    def _route(self, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(GetRouteInfoRequestHeader, request.ext_fields, opaque=request.opaque)
        route = self._table().route(h.topic).get(timeout=ASK_TIMEOUT)
        if route is None:
            return RemotingCommand.response_to(
                request,
                ResponseCode.TOPIC_NOT_EXIST,
                remark=f"No topic route info in name server for the topic: {h.topic}",
            )
        if self.order_message_enable:
            conf = self._kv().get(ORDER_TOPIC_CONFIG, h.topic).get(timeout=ASK_TIMEOUT)
            if conf is not None:
                route = OrderTopicRouteData(
                    broker_datas=route.broker_datas,
                    filter_server_table=route.filter_server_table,
                    queue_datas=route.queue_datas,
                    order_topic_conf=conf,
                )
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=encode_body(route))

    def _register_topic(self, request: RemotingCommand) -> RemotingCommand:
        """REGISTER_TOPIC_IN_NAMESRV (217, RocketMQ 5's brokers with
        ``enableSingleTopicRegister`` when a topic is created or updated): header ``topic``,
        body a TopicRouteData whose queue data are applied (``RouteTable.register_topic``);
        SUCCESS whether or not they were, as RocketMQ answers."""
        h = decode_header(RegisterTopicRequestHeader, request.ext_fields, opaque=request.opaque)
        if request.body:
            route = decode_body(TopicRouteData, request.body, opaque=request.opaque)
            if route.queue_datas:
                self._table().register_topic(h.topic, route.queue_datas).get(timeout=ASK_TIMEOUT)
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def _query_data_version(self, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(QueryDataVersionRequestHeader, request.ext_fields, opaque=request.opaque)
        asked = ""
        if request.body:
            asked = version_key(decode_body(DataVersion, request.body, opaque=request.opaque))
        changed, stored = (
            self._table()
            .query_data_version(h.cluster_name, h.broker_addr, asked)
            .get(timeout=ASK_TIMEOUT)
        )
        held = data_version_of(stored)
        return RemotingCommand.response_to(
            request,
            ResponseCode.SUCCESS,
            ext_fields={"changed": "true" if changed else "false"},
            body=b"" if held is None else encode_body(held),
        )

    def _register_body(
        self, h: RegisterBrokerRequestHeader, request: RemotingCommand
    ) -> RegisterBrokerBody:
        """The body of a REGISTER_BROKER: JSON, or with ``compressed`` RocketMQ's binary form
        (decoded in the thread pool, one at a time: ~5 us a topic, half a second for 100,000;
        ten at once held every thread of the pool). A body that cannot be decoded is refused
        (SYSTEM_ERROR, the connection stays) with a WARNING naming the broker."""
        try:
            if not h.compressed:
                return decode_body(RegisterBrokerBody, request.body, opaque=request.opaque)
            with _DECODING:
                decoded = offload(_decode_compressed, request.body, request.opaque)
            return decoded.body
        except ProtocolError as exc:
            logger.warning(
                "namesrv: REGISTER_BROKER of {} ({}, {}) refused: {}",
                h.broker_name,
                h.broker_addr,
                "compressed" if h.compressed else "JSON",
                exc.reason,
            )
            raise

    def _register(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(RegisterBrokerRequestHeader, request.ext_fields, opaque=request.opaque)
        if h.body_crc32 != 0 and body_crc32(request.body) != h.body_crc32:
            logger.warning(
                "namesrv: REGISTER_BROKER of {} ({}) from {} refused: crc32 not match",
                h.broker_name,
                h.broker_addr,
                session.remote_address,
            )
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_ERROR, remark="crc32 not match"
            )
        topics: tuple[TopicConfigEntry, ...] = ()
        version = ""
        state_version = 0
        if request.body:
            parsed = self._register_body(h, request)
            wrapper = parsed.topic_config_serialize_wrapper
            topics = tuple(
                TopicConfigEntry(
                    topic_name=name,
                    read_queue_nums=tc.read_queue_nums,
                    write_queue_nums=tc.write_queue_nums,
                    perm=tc.perm,
                    topic_sys_flag=tc.topic_sys_flag,
                )
                for name, tc in wrapper.topic_config_table.items()
            )
            version = version_key(wrapper.data_version)
            state_version = wrapper.data_version.state_version
        result = (
            self._table()
            .register_broker(
                RegisterBroker(
                    cluster_name=h.cluster_name,
                    broker_name=h.broker_name,
                    broker_addr=h.broker_addr,
                    broker_id=int(h.broker_id),
                    ha_server_addr=h.ha_server_addr,
                    topics=topics,
                    data_version=version,
                    session_id=session.session_id,
                    session=session,
                    kind=registration_kind(h),
                    heartbeat_timeout_ms=heartbeat_timeout_ms(h),
                    enable_acting_master=h.enable_acting_master,
                    state_version=state_version,
                )
            )
            .get(timeout=ASK_TIMEOUT)
        )
        if result is None:  # (part of a table from a broker not registered: RocketMQ 5's answer)
            return RemotingCommand.response_to(
                request, ResponseCode.SYSTEM_ERROR, remark="register broker failed"
            )
        if not session.alive:
            # The connection closed while this registration was on its way (a compressed body
            # is decoded in the thread pool): the drop for that close may have reached the
            # route table first, which would leave a gone broker routed until the scan drops
            # it. (The session is marked dead before its close is told: no drop is missed.)
            self._table().channel_closed(session.session_id)
        logger.trace("namesrv: register {} from {}", h.broker_addr, session)
        orders = self._kv().namespace(ORDER_TOPIC_CONFIG).get(timeout=ASK_TIMEOUT)
        return RemotingCommand.response_to(
            request,
            ResponseCode.SUCCESS,
            ext_fields={"masterAddr": result.master_addr, "haServerAddr": result.ha_server_addr},
            body=b"" if orders is None else encode_body(KVTable(table=orders)),
        )
