"""Calls that hold a gRPC worker for long (telemetry streams, waiting receives) are bounded, so
the workers left always serve every other call (``actors.proxy.server.Guard``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from actors.proxy.proto import Code, M
from actors.proxy.server import Guard, _stream


class _Context:
    def __init__(self, client: str = "", peer: str = "ipv4:127.0.0.1:1") -> None:
        self.client = client
        self._peer = peer

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mq-client-id", self.client)] if self.client else []


def _waiting_receive(request: Any, context: Any) -> Iterator[Any]:
    reply = M.ReceiveMessageResponse()
    reply.status.code = Code.OK
    yield reply
    yield reply  # (a receive still under way until its caller stops reading)


def test_past_the_bound_a_long_call_is_told_too_many_requests_at_once() -> None:
    # Given a bound of two long calls, and two receives under way
    guard = Guard(max_held=2)
    call = _stream(_waiting_receive, M.ReceiveMessageResponse, "ReceiveMessage", guard)
    request = M.ReceiveMessageRequest()
    request.group.name, request.message_queue.topic.name = "g", "T"
    first, second = call(request, _Context()), call(request, _Context())
    assert next(first).status.code == Code.OK and next(second).status.code == Code.OK
    # When a third comes, Then it is answered TOO_MANY_REQUESTS, and ends
    third = list(call(request, _Context()))
    assert [r.status.code for r in third] == [Code.TOO_MANY_REQUESTS]
    # And once one of the two ends, a new one is served
    first.close()
    assert guard.held == 1
    fourth = call(request, _Context())
    assert next(fourth).status.code == Code.OK
    second.close()
    fourth.close()
    assert guard.held == 0


def _waiting_telemetry(request: Any, context: Any) -> Iterator[Any]:
    reply = M.TelemetryCommand()
    reply.status.code = Code.OK
    yield reply
    yield reply


def test_one_client_cannot_take_every_held_call_but_a_shared_connection_is_no_limit() -> None:
    # Given a bound of 300 long calls, two telemetry streams per client, three calls without
    # a client id per connection
    guard = Guard(max_held=300)
    guard.held_calls.per_client_streams, guard.held_calls.per_connection = 2, 3
    receive = _stream(_waiting_receive, M.ReceiveMessageResponse, "ReceiveMessage", guard)
    telemetry = _stream(_waiting_telemetry, M.TelemetryCommand, "Telemetry", guard)
    request = M.ReceiveMessageRequest()
    request.group.name, request.message_queue.topic.name = "g", "T"
    mesh = "ipv4:10.0.0.1:1"  # (an HTTP/2 balancer: every client's calls on one connection)
    # When one client opens a third telemetry stream, Then it is refused, naming it
    streams = [telemetry(iter(()), _Context("hog", mesh)) for _ in range(2)]
    assert [next(c).status.code for c in streams] == [Code.OK, Code.OK]
    third = list(telemetry(iter(()), _Context("hog", mesh)))
    assert [r.status.code for r in third] == [Code.TOO_MANY_REQUESTS]
    assert "client hog holds 2 telemetry streams" in third[0].status.message
    # And its receives, and 100 other clients' streams and receives on the same connection,
    # count only against the proxy's bound (a per-connection bound capped meshes at ~50 clients)
    held = [receive(request, _Context("hog", mesh)) for _ in range(20)]
    for i in range(100):
        held += [
            telemetry(iter(()), _Context(f"c{i}", mesh)),
            receive(request, _Context(f"c{i}", mesh)),
        ]
    assert all(next(c).status.code == Code.OK for c in held)
    # And calls without a client id are bound per connection
    anonymous = [receive(request, _Context("", mesh)) for _ in range(3)]
    assert [next(c).status.code for c in anonymous] == [Code.OK] * 3
    fourth = list(receive(request, _Context("", mesh)))
    assert "this connection holds 3" in fourth[0].status.message
    # And every place is given back at the end
    for c in (*streams, *held, *anonymous):
        c.close()
    assert guard.held == 0


def test_a_group_past_the_proxys_bound_is_too_many_requests(monkeypatch: Any) -> None:
    import threading
    from types import SimpleNamespace

    import pytest

    from actors.proxy import service as service_module
    from actors.proxy.group_owners import GroupOwners
    from actors.proxy.lite import LiteError
    from actors.proxy.service import ProxyService

    # Given a proxy serving as many groups as it may (one, here)
    monkeypatch.setattr(service_module, "MAX_GROUPS", 1)
    proxy = object.__new__(ProxyService)
    served = SimpleNamespace(broken=False, lite=False)
    proxy.groups = {"served": served}  # type: ignore[dict-item]
    proxy.owners = GroupOwners()
    proxy._lock = threading.Lock()
    proxy.settings = SimpleNamespace(max_attempts=3, consume_from_first=False)  # type: ignore[assignment]
    proxy._config = lambda group: (False, None)  # type: ignore[method-assign]
    # When a receive names another group, Then it is told TOO_MANY_REQUESTS (no consumer made)
    with pytest.raises(LiteError) as refused:
        proxy.group("another", lite=False)
    assert refused.value.code == Code.TOO_MANY_REQUESTS
    # And the group it serves is still served
    assert proxy.group("served", lite=False) is served
