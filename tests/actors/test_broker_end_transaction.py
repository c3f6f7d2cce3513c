"""END_TRANSACTION (37) with a commitOrRollback that is none of 0, 8, 12 is refused and leaves
the half message open (RocketMQ answers nothing; a two-way caller hears why here)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)


def end(client: WireClient, offset: int, decision: int) -> Any:
    ext = {
        "producerGroup": "pg",
        "tranStateTableOffset": 0,
        "commitLogOffset": offset,
        "commitOrRollback": decision,
        "fromTransactionCheck": False,
        "msgId": "x",
    }
    return client.call(RequestCode.END_TRANSACTION, ext)


def visible(client: WireClient) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": "Tx", "queueId": 0})
    return int(got.ext_fields["offset"])


def test_an_invalid_decision_is_refused_and_the_half_message_stays_open(
    tmp_path: pathlib.Path,
) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a half message of group pg in topic Tx
        props = encode_properties({"TRAN_MSG": "true", "PGROUP": "pg", "UNIQ_KEY": "u1"})
        ext = send_v2_header("Tx", group="pg", sys_flag=4, properties=props)
        sent = client.call(RequestCode.SEND_MESSAGE_V2, ext, b"half")
        assert sent.code == ResponseCode.SUCCESS
        offset = int(sent.ext_fields["msgId"][16:], 16)
        # When the producer ends it with decisions that are none of 0, 8, 12
        for decision in [99, -1, 4]:
            got = end(client, offset, decision)
            # Then each is refused, saying what is valid
            assert got.code == ResponseCode.INVALID_PARAMETER, decision
            assert "none of 0 (unknown), 8 (commit), 12 (rollback)" in got.remark
        # And UNKNOWN (0) leaves it open, as before
        assert end(client, offset, 0).code == ResponseCode.SUCCESS
        assert visible(client) == 0
        # And a commit then still delivers it
        assert end(client, offset, 8).code == ResponseCode.SUCCESS
        assert visible(client) == 1
        assert errors == []
