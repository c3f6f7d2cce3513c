"""A controller-mode node not settled since it started (``HAState.serves_reads``) reads out no
record by offset or key either: VIEW_MESSAGE_BY_ID, QUERY_MESSAGE and CONSUME_MESSAGE_DIRECTLY
answer "not found" with the reason, as a pull answers PULL_NOT_FOUND (``pull_gates``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors.broker import admin_handler, running_info_handler
from actors.broker.pull_gates import UNSETTLED
from runtime.ha.state import HAState, Role
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.store.msg_id import offset_msg_id

pytestmark = pytest.mark.timeout(30)

RECORD = b"a stored record"


class Store:
    """Every offset and key names RECORD."""

    def message_at(self, physical_offset: int) -> bytes | None:
        return RECORD

    def query_by_key(self, topic: str, key: str, max_num: int, begin: int, end: int) -> list:
        return [RECORD]


def context(*, leased: bool, controller_mode: bool = True) -> Any:
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=controller_mode)
    state.leased = leased
    return SimpleNamespace(ha=state, store=Store(), acl=None)


def view(ctx: Any) -> RemotingCommand:
    request = RemotingCommand.request(RequestCode.VIEW_MESSAGE_BY_ID, {"offset": "1024"})
    return admin_handler.view_message(ctx, None, request)  # type: ignore[arg-type]


def query(ctx: Any) -> RemotingCommand:
    fields = {
        "topic": "Orders",
        "key": "order-42",
        "maxNum": "32",
        "beginTimestamp": "0",
        "endTimestamp": str(2**62),
    }
    request = RemotingCommand.request(RequestCode.QUERY_MESSAGE, fields)
    return admin_handler.query_message(ctx, None, request)  # type: ignore[arg-type]


def direct(ctx: Any) -> RemotingCommand:
    fields = {
        "consumerGroup": "billing",
        "clientId": "10.0.0.1@1",
        "msgId": offset_msg_id(bytes([127, 0, 0, 1]), 10911, 1024),
    }
    request = RemotingCommand.request(RequestCode.CONSUME_MESSAGE_DIRECTLY, fields)
    return running_info_handler.consume_message_directly(ctx, None, request)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("read", "not_found"),
    [
        (view, ResponseCode.SYSTEM_ERROR),
        (query, ResponseCode.QUERY_NOT_FOUND),
        (direct, ResponseCode.SYSTEM_ERROR),
    ],
)
def test_an_unsettled_node_reads_out_no_record(read: Any, not_found: int) -> None:
    # Given a controller-mode master just started: no lease held yet, its log recovered whole
    # (also a tail the controller may cut)
    ctx = context(leased=False)
    # When a record is asked for by offset or key
    answer = read(ctx)
    # Then it is not read out, and the answer says why
    assert answer.code == not_found
    assert answer.remark == UNSETTLED
    assert answer.body == b""


@pytest.mark.parametrize("read", [view, query])
@pytest.mark.parametrize("settled", [{"leased": True}, {"leased": False, "controller_mode": False}])
def test_a_settled_or_classic_node_reads_its_records_out(read: Any, settled: Any) -> None:
    # Given a controller-mode node that held a lease, or a classic node
    ctx = context(**settled)
    # When a record is asked for
    answer = read(ctx)
    # Then it is answered
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    assert answer.body == RECORD
