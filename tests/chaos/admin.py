"""A tiny blocking admin client for chaos tests: one request per connection, blocking sockets
(TLS when the run uses it, ``transport``).

The test process is not monkey-patched, so this uses the standard ``socket`` module with a
deadline on every call. It serves the few requests the harness needs: waiting for a broker's
registration, creating a topic, reading queue max offsets and a group's stored offsets.
"""

from __future__ import annotations

import time

from runtime.acl.signature import SessionCredentials, sign
from runtime.hostport import parse_address
from runtime.remoting.bodies import ClusterInfo, TopicRouteData, decode_body
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import FrameDecoder, encode
from tests.chaos import transport


class AdminError(Exception):
    """A request that got no usable answer (connection refused, timeout, error code)."""


def split_address(address: str) -> tuple[str, int]:
    return parse_address(address)


def call(
    address: str,
    code: int,
    ext: dict[str, object] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 5.0,
    credentials: SessionCredentials | None = None,
) -> RemotingCommand:
    """Send one request to ``address`` (signed with ``credentials`` when given) and return its
    response (any code)."""
    request = RemotingCommand.request(code, ext, body)
    if credentials is not None:
        request = sign(request, credentials)
    deadline = time.monotonic() + timeout
    try:
        with transport.connect(split_address(address), timeout=timeout) as sock:
            sock.sendall(encode(request))
            decoder = FrameDecoder()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AdminError(f"{address}: no answer to code {code} within {timeout}s")
                sock.settimeout(remaining)
                data = sock.recv(1 << 20)
                if not data:
                    raise AdminError(f"{address}: closed before answering code {code}")
                for cmd in decoder.feed(data):
                    if cmd.is_response and cmd.opaque == request.opaque:
                        return cmd
    except OSError as exc:
        raise AdminError(f"{address}: {exc}") from exc


def _ok(cmd: RemotingCommand, what: str) -> RemotingCommand:
    if cmd.code != ResponseCode.SUCCESS:
        raise AdminError(f"{what}: code {cmd.code} {cmd.remark or ''}".rstrip())
    return cmd


def cluster_info(namesrv: str, timeout: float = 5.0) -> ClusterInfo:
    cmd = _ok(call(namesrv, RequestCode.GET_BROKER_CLUSTER_INFO, timeout=timeout), "cluster info")
    return decode_body(ClusterInfo, cmd.body)


def broker_addresses(namesrv: str, broker_name: str, timeout: float = 5.0) -> dict[int, str]:
    """{brokerId: address} the name server lists for ``broker_name`` (empty when unknown)."""
    data = cluster_info(namesrv, timeout).broker_addr_table.get(broker_name)
    if data is None:
        return {}
    return {int(k): v for k, v in data.broker_addrs.items()}


def route(namesrv: str, topic: str, timeout: float = 5.0) -> TopicRouteData | None:
    cmd = call(namesrv, RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}, timeout=timeout)
    if cmd.code != ResponseCode.SUCCESS:
        return None
    return decode_body(TopicRouteData, cmd.body)


def create_topic(broker: str, topic: str, queues: int, timeout: float = 5.0) -> None:
    ext = {
        "topic": topic,
        "defaultTopic": "TBW102",
        "readQueueNums": queues,
        "writeQueueNums": queues,
        "perm": 6,
        "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": 0,
        "order": "false",
    }
    _ok(call(broker, RequestCode.UPDATE_AND_CREATE_TOPIC, ext, timeout=timeout), "create topic")


def max_offset(broker: str, topic: str, queue_id: int, timeout: float = 5.0) -> int:
    ext = {"topic": topic, "queueId": queue_id}
    cmd = _ok(call(broker, RequestCode.GET_MAX_OFFSET, ext, timeout=timeout), "max offset")
    return int(cmd.ext_fields["offset"])


def consumer_offset(
    broker: str, group: str, topic: str, queue_id: int, timeout: float = 5.0
) -> int | None:
    """The group's stored offset for the queue; None when the broker has none."""
    ext = {"consumerGroup": group, "topic": topic, "queueId": queue_id}
    cmd = call(broker, RequestCode.QUERY_CONSUMER_OFFSET, ext, timeout=timeout)
    if cmd.code == ResponseCode.QUERY_NOT_FOUND:
        return None
    return int(_ok(cmd, "consumer offset").ext_fields["offset"])


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate()`` (AdminError counts as False) until true or raise TimeoutError."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            if predicate():
                return
        except AdminError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last}")
        time.sleep(interval)


def pull(
    broker: str,
    topic: str,
    queue_id: int,
    offset: int,
    max_messages: int = 256,
    *,
    group: str = "chaos-node-reader",
    timeout: float = 5.0,
) -> tuple[list[tuple[int, bytes]], int]:
    """One PULL_MESSAGE straight to ``broker`` (a master or a slave): returns
    ([(queue offset, body)], next begin offset). Nothing found: ([], the offset asked)."""
    from actors.client.pull import decode_messages

    ext = {
        "consumerGroup": group,
        "topic": topic,
        "queueId": queue_id,
        "queueOffset": offset,
        "maxMsgNums": max_messages,
        "sysFlag": 4,  # FLAG_SUBSCRIPTION: the broker takes "*" from the pull, not a heartbeat
        "commitOffset": 0,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    cmd = call(broker, RequestCode.PULL_MESSAGE, ext, timeout=timeout)
    if cmd.code in (ResponseCode.PULL_NOT_FOUND, ResponseCode.PULL_RETRY_IMMEDIATELY):
        return [], int(cmd.ext_fields.get("nextBeginOffset", offset))
    _ok(cmd, "pull")
    msgs = decode_messages(cmd.body, "")
    return [(m.queue_offset, m.body) for m in msgs], int(cmd.ext_fields["nextBeginOffset"])


def read_node_log(
    broker: str, topic: str, queue_id: int, end: int, timeout: float = 30.0
) -> dict[int, bytes]:
    """Every message of one queue on one node, from offset 0 up to ``end`` (exclusive) or as
    far as it goes: {queue offset: body}. A node that does not know the topic yet (a slave
    copies topic config from its master periodically) is asked again until ``timeout``."""
    out: dict[int, bytes] = {}
    offset = 0
    deadline = time.monotonic() + timeout
    while offset < end:
        try:
            msgs, nxt = pull(broker, topic, queue_id, offset)
        except AdminError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        if not msgs:
            break
        for off, body in msgs:
            out[off] = body
        offset = max(nxt, offset + 1)
        if time.monotonic() > deadline:
            break
    return out
