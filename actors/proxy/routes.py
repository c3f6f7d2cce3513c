"""The route calls of ``MessagingService``: QueryRoute and QueryAssignment, over the service's
``Admin`` (the name servers' routes) and ``TopicTypes`` (the message types each topic takes).

Routes name the proxy itself as every queue's broker endpoint (RocketMQ's proxy in cluster
mode does the same), so a client sends everything here: the endpoint it used to reach the
proxy, echoed, or the proxy's advertised address (``--proxy-advertise``). An assignment is
one per broker (queue id -1): the proxy picks the queue at each receive.
"""

from __future__ import annotations

from typing import Any

from actors.client.errors import ClientError
from actors.proxy.convert import resource_name
from actors.proxy.proto import AddressScheme, Code, M, Permission
from actors.proxy.service import ProxyService, error_code, status

_PERMISSION = {
    (True, True): Permission.READ_WRITE,
    (True, False): Permission.READ,
    (False, True): Permission.WRITE,
    (False, False): Permission.NONE,
}
"""A queue's (readable, writable) as its gRPC permission."""


def _endpoints(service: ProxyService, given: Any, target: Any) -> None:
    if not service.advertise_always and given is not None and len(given.addresses):
        target.CopyFrom(given)
        return
    host, port = service.advertised
    target.scheme = AddressScheme.IPv6 if ":" in host else AddressScheme.IPv4
    address = target.addresses.add()
    address.host, address.port = host, port


def _queue(
    service: ProxyService,
    mq: Any,
    request: Any,
    broker: str,
    qid: int,
    permission: int,
    accepts: Any,
) -> None:
    """Fill a MessageQueue of ``request``'s topic on ``broker`` (served by this proxy)."""
    mq.topic.CopyFrom(request.topic)
    mq.id = qid
    mq.permission = permission
    mq.broker.name = broker
    mq.broker.id = 0
    _endpoints(service, request.endpoints, mq.broker.endpoints)
    mq.accept_message_types.extend(accepts)


def _route(service: ProxyService, topic: str, response: Any) -> Any:
    """The topic's route from the name servers, or None with ``response``'s status set."""
    try:
        return service.admin.topic_route(topic)
    except ClientError as exc:
        status(response, error_code(exc), str(exc))
        return None


def query_route(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.QueryRouteResponse()
    topic = resource_name(request.topic)
    route = _route(service, topic, response)
    if route is None:
        return response
    masters = {b.broker_name for b in route.broker_datas if 0 in b.broker_addrs}
    accepts = service.topic_types.accepts(topic)
    for data in sorted(route.queue_datas, key=lambda q: q.broker_name):
        if data.broker_name not in masters:
            continue
        for qid in range(max(data.read_queue_nums, data.write_queue_nums)):
            readable = bool(qid < data.read_queue_nums and data.perm & 4)
            writable = bool(qid < data.write_queue_nums and data.perm & 2)
            mq = response.message_queues.add()
            permission = _PERMISSION[readable, writable]
            _queue(service, mq, request, data.broker_name, qid, permission, accepts)
    if not response.message_queues:
        return status(response, Code.TOPIC_NOT_FOUND, f"no broker with a master serves {topic}")
    return status(response, Code.OK)


def query_assignment(service: ProxyService, request: Any, context: Any) -> Any:
    """One assignment per broker: the proxy picks the queue at each receive."""
    response = M.QueryAssignmentResponse()
    topic = resource_name(request.topic)
    route = _route(service, topic, response)
    if route is None:
        return response
    names = sorted(
        {q.broker_name for q in route.queue_datas if q.perm & 4 and q.read_queue_nums}
        & {b.broker_name for b in route.broker_datas if b.broker_addrs}
    )
    accepts = service.topic_types.accepts(topic)
    for name in names:
        mq = response.assignments.add().message_queue
        _queue(service, mq, request, name, -1, Permission.READ_WRITE, accepts)
    return status(response, Code.OK)
