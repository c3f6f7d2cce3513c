"""One client's share of the consumer groups a proxy serves (``actors.proxy.group_owners``), and
what keeps a group on the proxy (``ProxyService.heartbeat``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from actors.proxy import service as service_module
from actors.proxy.group_owners import GroupOwners, owner_of
from actors.proxy.lite import LiteError
from actors.proxy.proto import Code, M
from actors.proxy.service import ProxyService


def _proxy(monkeypatch: pytest.MonkeyPatch) -> ProxyService:
    """A ProxyService without a cluster: its groups' consumers are stand-ins."""
    monkeypatch.setattr(service_module, "PullConsumer", lambda *a, **k: SimpleNamespace())
    proxy = object.__new__(ProxyService)
    proxy.groups = {}
    proxy.owners = GroupOwners(per_client=2)
    proxy._lock = threading.Lock()
    proxy.namesrv, proxy.client_options, proxy.seen = "127.0.0.1:1", {}, {}
    proxy.settings = SimpleNamespace(  # type: ignore[assignment]
        max_attempts=3, consume_from_first=False, group_idle_s=120.0
    )
    proxy._config = lambda group: (False, None)  # type: ignore[method-assign]
    return proxy


def test_one_client_makes_at_most_its_share_of_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _proxy(monkeypatch)
    # Given a client that made its share of groups (two, here)
    proxy.group("hostile-1", lite=False, owner="hog")
    proxy.group("hostile-2", lite=False, owner="hog")
    # When it names a third, Then it is told TOO_MANY_REQUESTS, naming it, and none is made
    with pytest.raises(LiteError) as refused:
        proxy.group("hostile-3", lite=False, owner="hog")
    assert refused.value.code == Code.TOO_MANY_REQUESTS
    assert "client hog made 2 consumer groups" in str(refused.value)
    assert set(proxy.groups) == {"hostile-1", "hostile-2"}
    # And it still uses the groups it made, and a group another client made
    assert proxy.group("hostile-1", lite=False, owner="hog") is proxy.groups["hostile-1"]
    proxy.group("legit", lite=False, owner="legit-client")
    assert proxy.group("legit", lite=False, owner="hog") is proxy.groups["legit"]
    # And once one of its groups left the proxy, it may make another
    leaving = proxy.groups["hostile-1"]
    leaving.shutdown = lambda: None  # type: ignore[method-assign]
    proxy._leave(leaving)
    proxy.group("hostile-3", lite=False, owner="hog")


class _Context:
    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return []


def test_a_call_without_a_client_id_counts_for_its_host() -> None:
    # Given calls with no x-mq-client-id, Then their groups count for the host they come from
    assert owner_of(_Context("ipv4:203.0.113.7:4000"), "") == "host 203.0.113.7"
    assert owner_of(_Context("ipv4:203.0.113.7:4001"), "") == "host 203.0.113.7"
    # And a call with one counts for its client
    assert owner_of(_Context("ipv4:203.0.113.7:4000"), "c1") == "c1"


def test_a_bare_heartbeat_does_not_keep_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _proxy(monkeypatch)
    idle = proxy.group("idle", lite=False, owner="hog")
    busy = proxy.group("busy", lite=False, owner="legit")
    idle.last_used = busy.last_used = 0.0  # (long idle)
    busy.in_flight["h"] = SimpleNamespace()  # type: ignore[assignment]

    def heartbeat(group: str) -> Any:
        request = M.HeartbeatRequest()
        request.group.name = group
        return proxy.heartbeat(request, _Context("ipv4:10.0.0.1:1"))

    # When each group's client heartbeats
    assert heartbeat("idle").status.code == Code.OK
    assert heartbeat("busy").status.code == Code.OK
    # Then the group nobody received from stays idle (it leaves at its expiry), and the group
    # with deliveries out is kept in use
    assert idle.last_used == 0.0
    assert busy.last_used > 0.0


class _Client(_Context):
    def __init__(self, client: str) -> None:
        super().__init__("ipv4:10.0.0.2:1")
        self.client = client

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mq-client-id", self.client)]


def test_a_member_polling_rarely_keeps_its_group_with_heartbeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = _proxy(monkeypatch)
    group = proxy.group("rare", lite=False, owner="member")
    # Given a client that received through the group (a while ago: long idle since)
    group.seen_receiver("member")
    group.last_used = 0.0
    request = M.HeartbeatRequest()
    request.group.name = "rare"
    # When it heartbeats between its rare receives, Then the group is kept in use (it no
    # longer leaves and comes back at each poll: with several proxies, queues moved and
    # messages were delivered twice)
    proxy.heartbeat(request, _Client("member"))
    assert group.last_used > 0.0
    # And a client that never received through it keeps nothing
    group.last_used = 0.0
    proxy.heartbeat(request, _Client("stranger"))
    assert group.last_used == 0.0
