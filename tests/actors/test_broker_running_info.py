"""GET_CONSUMER_RUNNING_INFO (307) and CONSUME_MESSAGE_DIRECTLY (309) on the broker: find the
member's connection, call it, relay its answer; not online, timeout and lost connection answered
in RocketMQ's words."""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from actors.broker import running_info_handler
from actors.broker.consumer_manager import ConsumerHeartbeat, ConsumerManager
from runtime.errors import ProtocolError
from runtime.remoting.bodies import SubscriptionData
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.store.msg_id import offset_msg_id

pytestmark = pytest.mark.timeout(20)


class ClientSession:
    """Stands in for a member's SessionHandle: answers (or fails) the broker's call."""

    def __init__(self, session_id: int, answer: Any) -> None:
        self.session_id = session_id
        self.alive = True
        self.answer = answer
        self.calls: list[tuple[RemotingCommand, float]] = []

    def send_oneway(self, cmd: Any) -> bool:
        return True

    def call(self, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
        self.calls.append((cmd, timeout))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return RemotingCommand.response_to(cmd, **self.answer)


class Ctx:
    """The part of BrokerContext the handler uses."""

    consumers = "consumers"
    ha = None  # (no replication: every record may be read out)
    acl = None  # (no ACL: the handler's check of the stored topic is skipped)

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def proxy(self, _name: str) -> Any:
        return self.manager

    def ask(self, future: Any, timeout: float = 5.0) -> Any:
        return future.get(timeout=timeout)


def member(manager: Any, client_id: str, session: ClientSession, language: str = "PYTHON") -> None:
    manager.register(
        ConsumerHeartbeat(
            group="g",
            client_id=client_id,
            session=session,
            consume_type="CONSUME_PASSIVELY",
            message_model="CLUSTERING",
            consume_from_where="CONSUME_FROM_LAST_OFFSET",
            subscriptions=(SubscriptionData(topic="T"),),
            language=language,
        )
    ).get(timeout=5)


def ask(ctx: Ctx, client_id: str) -> RemotingCommand:
    ext = {"consumerGroup": "g", "clientId": client_id, "jstackEnable": "false"}
    request = RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO, ext)
    response = running_info_handler.consumer_running_info(ctx, None, request)  # type: ignore[arg-type]
    assert response.opaque == request.opaque and response.is_response
    return response


@pytest.fixture
def ctx() -> Any:
    manager = ConsumerManager.start()
    yield Ctx(manager.proxy())
    manager.stop()


def test_the_members_answer_is_relayed_unchanged(ctx: Ctx) -> None:
    # Given a member that answers with a body, and a C++ member that refuses
    body = b'{"mqTable":{},"properties":{}}'
    java = ClientSession(1, {"code": ResponseCode.SUCCESS, "body": body})
    cpp = ClientSession(2, {"code": ResponseCode.SYSTEM_ERROR, "remark": "The Consumer Group"})
    member(ctx.manager, "c1", java)
    member(ctx.manager, "c2", cpp, language="CPP")
    # When an admin asks about c1, Then c1 gets the same request and its answer comes back
    response = ask(ctx, "c1")
    assert (response.code, response.body) == (ResponseCode.SUCCESS, body)
    [(forwarded, timeout)] = java.calls
    assert forwarded.code == RequestCode.GET_CONSUMER_RUNNING_INFO and not forwarded.is_oneway
    assert forwarded.ext_fields == {"consumerGroup": "g", "clientId": "c1", "jstackEnable": "false"}
    assert timeout == running_info_handler.CALL_CLIENT_TIMEOUT
    # And a C++ member is asked too, its refusal relayed as it is
    response = ask(ctx, "c2")
    assert (response.code, response.remark) == (ResponseCode.SYSTEM_ERROR, "The Consumer Group")
    assert len(cpp.calls) == 1


def test_a_client_not_online_silent_or_gone_gets_rocketmqs_answers(ctx: Ctx) -> None:
    # A client id the group does not list, or whose connection is closed: not online
    response = ask(ctx, "nobody")
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert response.remark == "The Consumer <nobody> not online"
    dead = ClientSession(3, {"code": 0})
    member(ctx.manager, "c3", dead)
    dead.alive = False
    assert ask(ctx, "c3").remark == "The Consumer <c3> not online" and dead.calls == []
    # A member that does not answer in time: CONSUME_MSG_TIMEOUT
    member(ctx.manager, "c4", ClientSession(4, pykka.Timeout("no answer")))
    response = ask(ctx, "c4")
    assert response.code == ResponseCode.CONSUME_MSG_TIMEOUT
    assert response.remark.startswith("consumer <g> <c4> Timeout")
    # A member whose connection closes under the call: SYSTEM_ERROR with the reason
    member(ctx.manager, "c5", ClientSession(5, ConnectionError("session closed")))
    response = ask(ctx, "c5")
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert response.remark == "invoke consumer <g> <c5> Exception: session closed"


def test_a_request_without_its_client_id_is_a_plain_error(ctx: Ctx) -> None:
    request = RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO, {"consumerGroup": "g"})
    with pytest.raises(ProtocolError, match="clientId"):
        running_info_handler.consumer_running_info(ctx, None, request)  # type: ignore[arg-type]


class Store:
    """The part of the StorePort CONSUME_MESSAGE_DIRECTLY reads: one record at offset 4096."""

    def message_at(self, offset: int) -> bytes | None:
        return b"the stored record" if offset == 4096 else None


class Cfg:
    broker_name = "broker-a"


def test_consume_message_directly_sends_the_stored_record_to_the_member(ctx: Ctx) -> None:
    # Given a member, and a record at commit-log offset 4096 (its offset message id below)
    ctx.store = Store()  # type: ignore[attr-defined]
    ctx.cfg = Cfg()  # type: ignore[attr-defined]
    result = b'{"consumeResult":"CR_SUCCESS","order":false,"autoCommit":true}'
    session = ClientSession(6, {"code": ResponseCode.SUCCESS, "body": result})
    member(ctx.manager, "c6", session)
    msg_id = offset_msg_id(b"\x7f\x00\x00\x01", 10911, 4096)
    ext = {"consumerGroup": "g", "clientId": "c6", "msgId": msg_id}
    request = RemotingCommand.request(RequestCode.CONSUME_MESSAGE_DIRECTLY, ext)
    # When an admin asks the member to consume it directly
    response = running_info_handler.consume_message_directly(ctx, None, request)  # type: ignore[arg-type]
    # Then the member got the record with the broker's name, and its result comes back
    assert (response.code, response.body) == (ResponseCode.SUCCESS, result)
    [(forwarded, _timeout)] = session.calls
    assert forwarded.code == RequestCode.CONSUME_MESSAGE_DIRECTLY
    assert forwarded.body == b"the stored record"
    assert forwarded.ext_fields["brokerName"] == "broker-a"
    # And an id that names no record here, or no id at all, is refused before any call
    for bad in (offset_msg_id(b"\x7f\x00\x00\x01", 10911, 8), "not-an-id"):
        ext["msgId"] = bad
        request = RemotingCommand.request(RequestCode.CONSUME_MESSAGE_DIRECTLY, ext)
        refused = running_info_handler.consume_message_directly(ctx, None, request)  # type: ignore[arg-type]
        assert refused.code == ResponseCode.SYSTEM_ERROR and bad in refused.remark
    assert len(session.calls) == 1
