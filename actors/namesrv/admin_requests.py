"""The name server's admin requests (what mqadmin and RocketMQ's dashboard send), with RocketMQ
4.9's DefaultRequestProcessor semantics:

- PUT_KV_CONFIG (100, ``namespace``, ``key``, ``value``), DELETE_KV_CONFIG (102, ``namespace``,
  ``key``; SUCCESS also for an absent key): the ``KVConfig`` actor, durable before the reply
  when the name server has a kvConfig.json (one write covers the changes made while the one
  before it ran: a flood of puts never holds up reads or registrations).
- GET_KV_CONFIG (101): reply header ``value``; QUERY_NOT_FOUND "No config item, Namespace: <ns>
  Key: <key>" when there is none.
- GET_KVLIST_BY_NAMESPACE (219): body KVTable ``{"table": {key: value}}``; QUERY_NOT_FOUND
  "No config item, Namespace: <ns>" for a namespace never created.
- WIPE_WRITE_PERM_OF_BROKER (205, ``brokerName``): reply header ``wipeTopicCount``;
  ADD_WRITE_PERM_OF_BROKER (327, RocketMQ 5): ``addTopicCount``. SUCCESS with 0 for an unknown
  broker. See ``route_table`` for how long the change lasts.
- GET_TOPICS_BY_CLUSTER (224, ``cluster``): TopicList body of the topics any broker of the
  cluster serves (empty for an unknown cluster, as RocketMQ 4.9 answers).
- GET_SYSTEM_TOPIC_LIST_FROM_NS (304): TopicList body of every cluster name and broker name
  (the topics a broker creates for them) with ``brokerAddr``, one broker's address, for the
  caller to ask that broker its own system topics.

A missing header field gets SYSTEM_ERROR naming it (``ProtocolError``, mapped by the session).
Runs in the request's own greenlet; asks the actors with a timeout.
"""

from __future__ import annotations

from typing import Any

from actors.namesrv.headers import (
    DeleteKVConfigRequestHeader,
    GetKVConfigRequestHeader,
    GetKVListByNamespaceRequestHeader,
    GetTopicsByClusterRequestHeader,
    PutKVConfigRequestHeader,
    WritePermOfBrokerRequestHeader,
)
from runtime.directory import Directory
from runtime.remoting.bodies import KVTable, TopicList, encode_body
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header

ASK_TIMEOUT = 5.0

CODES: frozenset[int] = frozenset(
    {
        RequestCode.PUT_KV_CONFIG,
        RequestCode.GET_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.GET_KVLIST_BY_NAMESPACE,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.ADD_WRITE_PERM_OF_BROKER,
        RequestCode.GET_TOPICS_BY_CLUSTER,
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
    }
)
"""The codes ``AdminRequests.process`` serves."""


class AdminRequests:
    """Serves ``CODES`` through the RouteTable and KVConfig actors named in ``directory``."""

    def __init__(self, directory: Directory, route_table: str, kv_config: str) -> None:
        self.directory = directory
        self.route_table = route_table
        self.kv_config = kv_config

    def _routes(self) -> Any:
        return self.directory.proxy(self.route_table)

    def _kv(self) -> Any:
        return self.directory.proxy(self.kv_config)

    def process(self, request: RemotingCommand) -> RemotingCommand:
        code, ext, opaque = request.code, request.ext_fields, request.opaque
        if code == RequestCode.PUT_KV_CONFIG:
            h = decode_header(PutKVConfigRequestHeader, ext, opaque=opaque)
            written = self._kv().put(h.namespace, h.key, h.value).get(timeout=ASK_TIMEOUT)
            written.get(timeout=ASK_TIMEOUT)  # on disk (group commit: see kv_config)
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS)
        if code == RequestCode.GET_KV_CONFIG:
            g = decode_header(GetKVConfigRequestHeader, ext, opaque=opaque)
            value = self._kv().get(g.namespace, g.key).get(timeout=ASK_TIMEOUT)
            if value is None:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.QUERY_NOT_FOUND,
                    remark=f"No config item, Namespace: {g.namespace} Key: {g.key}",
                )
            return RemotingCommand.response_to(
                request, ResponseCode.SUCCESS, ext_fields={"value": value}
            )
        if code == RequestCode.DELETE_KV_CONFIG:
            d = decode_header(DeleteKVConfigRequestHeader, ext, opaque=opaque)
            written = self._kv().delete(d.namespace, d.key).get(timeout=ASK_TIMEOUT)
            written.get(timeout=ASK_TIMEOUT)
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS)
        if code == RequestCode.GET_KVLIST_BY_NAMESPACE:
            n = decode_header(GetKVListByNamespaceRequestHeader, ext, opaque=opaque)
            table = self._kv().namespace(n.namespace).get(timeout=ASK_TIMEOUT)
            if table is None:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.QUERY_NOT_FOUND,
                    remark=f"No config item, Namespace: {n.namespace}",
                )
            body = encode_body(KVTable(table=table))
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)
        if code in (RequestCode.WIPE_WRITE_PERM_OF_BROKER, RequestCode.ADD_WRITE_PERM_OF_BROKER):
            return self._write_perm(request)
        if code == RequestCode.GET_TOPICS_BY_CLUSTER:
            c = decode_header(GetTopicsByClusterRequestHeader, ext, opaque=opaque)
            topics = self._routes().topics_by_cluster(c.cluster).get(timeout=ASK_TIMEOUT)
            body = encode_body(TopicList(topic_list=topics))
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)
        if code == RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS:
            names, addr = self._routes().system_topic_list().get(timeout=ASK_TIMEOUT)
            body = encode_body(TopicList(topic_list=names, broker_addr=addr))
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=body)
        raise ValueError(f"request code {code} is not an admin request")  # see CODES

    def _write_perm(self, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(WritePermOfBrokerRequestHeader, request.ext_fields, opaque=request.opaque)
        if request.code == RequestCode.WIPE_WRITE_PERM_OF_BROKER:
            count = self._routes().wipe_write_perm(h.broker_name).get(timeout=ASK_TIMEOUT)
            field = "wipeTopicCount"
        else:
            count = self._routes().add_write_perm(h.broker_name).get(timeout=ASK_TIMEOUT)
            field = "addTopicCount"
        return RemotingCommand.response_to(
            request, ResponseCode.SUCCESS, ext_fields={field: str(count)}
        )
