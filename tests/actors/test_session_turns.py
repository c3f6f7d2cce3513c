"""Ordered requests of one connection take turns in arrival order
(``runtime.request_context.wait_turn``) while everything else on the connection stays
concurrent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest

from runtime.actor import others_ready
from runtime.net import Acceptor, bind
from runtime.remoting.command import RemotingCommand
from runtime.request_context import end_turn, wait_turn
from runtime.session import SessionHandle, session_factory
from tests.wire import WireClient as Client

pytestmark = pytest.mark.timeout(20)

ORDERED, FAST = 910, 911


class TurnProcessor:
    """ORDERED: may hold (``hold``) or fail (``fail``) before its turn, then "stores" its
    ``id`` between ``wait_turn`` and ``end_turn``, or answers 2 unstored when its turn did not
    come within ``patience`` seconds. FAST answers at once."""

    ordered_codes = frozenset({ORDERED})

    def __init__(self) -> None:
        self.release = gevent.event.Event()
        self.entered: list[str] = []
        self.stored: list[str] = []
        self.stored_with_company: list[str] = []
        self.all_entered = gevent.event.Event()
        self.expect_entered = 0

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        if request.code == FAST:
            return RemotingCommand.response_to(request, 0)
        ident = request.ext_fields["id"]
        self.entered.append(ident)
        if len(self.entered) >= self.expect_entered:
            self.all_entered.set()
        if request.ext_fields.get("hold"):
            self.release.wait(10)
        if request.ext_fields.get("fail"):
            raise RuntimeError("failed before its turn")
        if not wait_turn(float(request.ext_fields.get("patience", 10))):
            return RemotingCommand.response_to(request, 2, ext_fields={"id": ident})
        self.stored.append(ident)
        if others_ready():  # another greenlet will run before this one yields: it could batch
            self.stored_with_company.append(ident)
        end_turn()
        return RemotingCommand.response_to(request, 0, ext_fields={"id": ident})

    def on_close(self, session: SessionHandle) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[TurnProcessor, Any]]:
    processor = TurnProcessor()
    sock = bind("127.0.0.1", 0, what="test")
    acceptor = Acceptor.start("test", sock, session_factory("test", processor))
    yield processor, sock.getsockname()
    acceptor.stop(timeout=5)
    sock.close()


def ordered(ident: str, **flags: str) -> RemotingCommand:
    return RemotingCommand.request(ORDERED, {"id": ident, **flags})


def receive_ids(client: Client, count: int) -> list[str]:
    return sorted(client.receive().ext_fields["id"] for _ in range(count))


def test_later_ordered_requests_wait_for_an_earlier_one_that_yields(server: Any) -> None:
    processor, address = server
    processor.expect_entered = 3
    client = Client(address)
    # Given three ordered requests pipelined on one connection, the first held before its turn
    for request in (ordered("a", hold="1"), ordered("b"), ordered("c")):
        client.send(request)
    # When all three handlers have started
    assert processor.all_entered.wait(5)
    gevent.idle()
    # Then the two later ones wait for the first
    assert processor.stored == []
    # And once it goes on, all three take effect in arrival order
    processor.release.set()
    assert receive_ids(client, 3) == ["a", "b", "c"]
    assert processor.stored == ["a", "b", "c"]


def test_ordered_requests_released_together_take_their_steps_in_one_pass(server: Any) -> None:
    processor, address = server
    processor.expect_entered = 50
    client = Client(address)
    # Given 50 ordered requests pipelined on one connection, waiting behind a held first one
    client.send(ordered("r00", hold="1"))
    for i in range(1, 50):
        client.send(ordered(f"r{i:02}"))
    assert processor.all_entered.wait(5)
    gevent.idle()
    assert processor.stored == []
    # When the first goes on
    processor.release.set()
    # Then all take effect in arrival order, and (nearly) every one of them saw others ready to
    # run right behind it: the waiting line was woken in one pass, so what they queue forms one
    # group (woken one by one, each would run alone and append alone)
    assert receive_ids(client, 50) == [f"r{i:02}" for i in range(50)]
    assert processor.stored == [f"r{i:02}" for i in range(50)]
    assert len(processor.stored_with_company) >= 45


def test_other_requests_are_not_held_behind_an_ordered_one(server: Any) -> None:
    processor, address = server
    client = Client(address)
    # Given an ordered request held before its turn
    client.send(ordered("a", hold="1"))
    # When an unordered request follows on the same connection
    fast = RemotingCommand.request(FAST)
    client.send(fast)
    # Then it is answered while the ordered one still waits
    assert client.receive().opaque == fast.opaque
    assert processor.stored == []
    processor.release.set()
    assert client.receive().ext_fields["id"] == "a"


def test_an_ordered_request_that_fails_before_its_turn_lets_the_next_go(server: Any) -> None:
    processor, address = server
    client = Client(address)
    # Given an ordered request that fails before reaching its turn, then another
    client.send(ordered("a", fail="1"))
    client.send(ordered("b"))
    # Then the failure is answered and the next one still takes effect
    replies = [client.receive() for _ in range(2)]
    assert sorted(r.code for r in replies) == [0, 1]  # SUCCESS and SYSTEM_ERROR
    assert processor.stored == ["b"]


def test_connections_take_turns_independently(server: Any) -> None:
    processor, address = server
    first, second = Client(address), Client(address)
    # Given an ordered request held on one connection
    first.send(ordered("a", hold="1"))
    # When another connection sends an ordered request
    second.send(ordered("b"))
    # Then it takes effect without waiting for the other connection's
    assert second.receive().ext_fields["id"] == "b"
    assert processor.stored == ["b"]
    processor.release.set()
    assert first.receive().ext_fields["id"] == "a"


def test_an_ordered_request_out_of_patience_does_not_take_its_step(server: Any) -> None:
    processor, address = server
    client = Client(address)
    # Given an ordered request held before its turn, and a second that waits at most 50 ms
    client.send(ordered("a", hold="1"))
    client.send(ordered("b", patience="0.05"))
    client.send(ordered("c"))
    # Then the second gives up unstored while the first is held
    reply = client.receive()
    assert (reply.ext_fields["id"], reply.code) == ("b", 2)
    assert processor.stored == []
    # And the third still follows the first
    processor.release.set()
    assert receive_ids(client, 2) == ["a", "c"]
    assert processor.stored == ["a", "c"]
