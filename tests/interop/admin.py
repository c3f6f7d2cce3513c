"""What ``mqadmin`` would tell: routes at the name server, consumer ids at a broker.

The interop tests use these read-only look-ups to wait for state the real clients depend on (a
topic routed, both consumers of a group known) with a deadline, instead of sleeping. They speak
raw remoting frames through ``tests.wire`` (our codec), never through a real client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from runtime.acl.signature import SessionCredentials
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.wire import WireClient

T = TypeVar("T")


def call(
    address: str,
    code: int,
    ext: dict[str, Any],
    timeout: float = 5.0,
    credentials: SessionCredentials | None = None,
) -> Any:
    """One request to ``address``, signed with ``credentials`` for a broker's ACL."""
    client = WireClient(address, timeout=timeout)
    try:
        return client.call(code, ext, credentials=credentials)
    finally:
        client.close()


def route(namesrv: str, topic: str) -> dict[str, Any] | None:
    """The route body for ``topic`` or None when the name server has none."""
    reply = call(namesrv, RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    if reply.code != ResponseCode.SUCCESS or not reply.body:
        return None
    return json.loads(reply.body)


def routed_brokers(body: dict[str, Any] | None) -> dict[str, int]:
    """{brokerName: writeQueueNums} from a route body."""
    if not body:
        return {}
    return {q["brokerName"]: int(q.get("writeQueueNums", 0)) for q in body.get("queueDatas", [])}


def consumer_ids(broker: str, group: str) -> list[str]:
    """GET_CONSUMER_LIST_BY_GROUP at one broker: the client ids it knows for ``group``."""
    reply = call(broker, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": group})
    if reply.code != ResponseCode.SUCCESS or not reply.body:
        return []
    return list(json.loads(reply.body).get("consumerIdList") or [])


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Ask ``probe`` until it returns something truthy, within ``timeout``; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (OSError, ConnectionError) as exc:
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def wait_route(
    namesrv: str, topic: str, brokers: Iterable[str], timeout: float = 15.0
) -> dict[str, Any]:
    """Wait until the name server routes ``topic`` to every broker name in ``brokers``."""
    wanted = set(brokers)

    def probe() -> dict[str, Any] | None:
        body = route(namesrv, topic)
        return body if wanted <= set(routed_brokers(body)) else None

    return poll(probe, timeout, f"a route for {topic!r} on {sorted(wanted)} at {namesrv}")


def wait_consumers(broker: str, group: str, count: int, timeout: float = 15.0) -> list[str]:
    """Wait until ``broker`` knows exactly ``count`` consumers in ``group``."""

    def probe() -> list[str] | None:
        ids = consumer_ids(broker, group)
        return ids if len(ids) == count else None

    return poll(probe, timeout, f"{count} consumer(s) of {group!r} at {broker}")


def max_offset(
    broker: str, topic: str, queue_id: int, credentials: SessionCredentials | None = None
) -> int:
    """GET_MAX_OFFSET: the next queue offset of one queue (= messages stored, from offset 0)."""
    ext = {"topic": topic, "queueId": queue_id}
    reply = call(broker, RequestCode.GET_MAX_OFFSET, ext, credentials=credentials)
    if reply.code != ResponseCode.SUCCESS:
        raise AssertionError(f"GET_MAX_OFFSET {topic}/{queue_id} at {broker}: {reply}")
    return int(reply.ext_fields["offset"])


def stored_count(
    broker: str, topic: str, queues: int, credentials: SessionCredentials | None = None
) -> int:
    """Messages of ``topic`` stored on ``broker`` over its ``queues`` queues."""
    return sum(max_offset(broker, topic, q, credentials) for q in range(queues))


def committed_offset(
    broker: str,
    group: str,
    topic: str,
    queue_id: int,
    credentials: SessionCredentials | None = None,
) -> int | None:
    """QUERY_CONSUMER_OFFSET: the offset ``group`` committed for one queue (None: none yet)."""
    ext = {"consumerGroup": group, "topic": topic, "queueId": queue_id}
    reply = call(broker, RequestCode.QUERY_CONSUMER_OFFSET, ext, credentials=credentials)
    if reply.code == ResponseCode.QUERY_NOT_FOUND:
        return None
    if reply.code != ResponseCode.SUCCESS:
        raise AssertionError(f"QUERY_CONSUMER_OFFSET {group} {topic}/{queue_id}: {reply}")
    return int(reply.ext_fields["offset"])
