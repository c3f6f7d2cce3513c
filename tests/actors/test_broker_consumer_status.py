"""INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223) on the broker: every live member is asked at
once; a silent, failing or closed member is left out and does not hold up the others' answer
beyond the timeout."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pykka
import pytest

from actors.broker import consumer_status_handler
from actors.broker.consumer_manager import ConsumerHeartbeat, ConsumerManager
from runtime.actor import new_future
from runtime.errors import ProtocolError
from runtime.remoting.bodies import SubscriptionData
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.queue_maps import parse_fastjson

pytestmark = pytest.mark.timeout(20)

TABLE = b'{"messageQueueTable":{{"brokerName":"b","queueId":1,"topic":"T"}:7}}'


class Member:
    """Stands in for a member's SessionHandle: answers ``answer`` (a dict of response fields),
    raises it (an exception), or never answers (None)."""

    ids = itertools.count(1)

    def __init__(self, answer: Any) -> None:
        self.session_id = next(Member.ids)
        self.alive = True
        self.answer = answer
        self.asked: list[RemotingCommand] = []
        self.forgotten: list[int] = []

    def send_oneway(self, cmd: Any) -> bool:
        return True

    def request(self, cmd: RemotingCommand) -> Any:
        self.asked.append(cmd)
        future = new_future()
        if isinstance(self.answer, BaseException):
            future.set_exception((type(self.answer), self.answer, None))
        elif self.answer is not None:
            future.set(RemotingCommand.response_to(cmd, **self.answer))
        return future

    def forget(self, opaque: int) -> None:
        self.forgotten.append(opaque)


class Ctx:
    consumers = "consumers"

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def proxy(self, _name: str) -> Any:
        return self.manager

    def ask(self, future: Any, timeout: float = 5.0) -> Any:
        return future.get(timeout=timeout)


def join(manager: Any, client_id: str, member: Member) -> None:
    manager.register(
        ConsumerHeartbeat(
            group="g",
            client_id=client_id,
            session=member,
            consume_type="CONSUME_PASSIVELY",
            message_model="CLUSTERING",
            consume_from_where="CONSUME_FROM_LAST_OFFSET",
            subscriptions=(SubscriptionData(topic="T"),),
        )
    ).get(timeout=5)


@pytest.fixture
def ctx() -> Any:
    manager = ConsumerManager.start()
    yield Ctx(manager.proxy())
    manager.stop()


def test_silent_and_failing_members_are_left_out(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_status_handler, "CALL_CLIENT_TIMEOUT", 0.3)
    # Given four members: one answers its offsets, one is silent, one's connection fails,
    # one answers a body that is not a status
    good, silent = Member({"code": ResponseCode.SUCCESS, "body": TABLE}), Member(None)
    broken = Member(ConnectionError("session closed"))
    garbled = Member({"code": ResponseCode.SUCCESS, "body": b"{nonsense"})
    for cid, member in (("a", good), ("b", silent), ("c", broken), ("d", garbled)):
        join(ctx.manager, cid, member)
    # When an admin asks for the group's status
    request = RemotingCommand.request(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "T", "group": "g"}
    )
    started = time.monotonic()
    response = consumer_status_handler.consumer_status(ctx, None, request)  # type: ignore[arg-type]
    # Then every member was asked, the answer came once the timeout passed, not one per member
    assert time.monotonic() - started < 0.3 * 2
    for member in (good, silent, broken, garbled):
        [asked] = member.asked
        assert asked.code == RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT
        assert member.forgotten == [asked.opaque]
    # And only the member that gave its offsets is in the table
    assert response.code == ResponseCode.SUCCESS
    [(mq, offset)] = parse_fastjson(response.body)["consumerTable"]["a"]
    assert (mq["queueId"], offset) == (1, 7)
    assert list(parse_fastjson(response.body)["consumerTable"]) == ["a"]


def test_a_member_whose_request_fails_otherwise_is_left_out(ctx: Ctx) -> None:
    # Given a member that answers, one whose session refuses the request (a protocol error)
    # and one whose session actor stopped
    good = Member({"code": ResponseCode.SUCCESS, "body": TABLE})
    refused = Member(ProtocolError("frame of 20000000 bytes is over the limit"))
    stopped = Member(pykka.ActorDeadError("session stopped"))
    for cid, member in (("a", good), ("e", refused), ("f", stopped)):
        join(ctx.manager, cid, member)
    # When an admin asks for the group's status
    request = RemotingCommand.request(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "T", "group": "g"}
    )
    response = consumer_status_handler.consumer_status(ctx, None, request)  # type: ignore[arg-type]
    # Then the answer holds the member that gave its offsets, and every request is forgotten
    assert response.code == ResponseCode.SUCCESS
    assert list(parse_fastjson(response.body)["consumerTable"]) == ["a"]
    for member in (good, refused, stopped):
        [asked] = member.asked
        assert member.forgotten == [asked.opaque]


def test_a_closed_member_is_not_asked(ctx: Ctx) -> None:
    closed = Member({"code": ResponseCode.SUCCESS, "body": TABLE})
    join(ctx.manager, "a", closed)
    closed.alive = False
    request = RemotingCommand.request(
        RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "T", "group": "g"}
    )
    response = consumer_status_handler.consumer_status(ctx, None, request)  # type: ignore[arg-type]
    assert response.code == ResponseCode.SYSTEM_ERROR and closed.asked == []
