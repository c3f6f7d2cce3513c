"""CHECK_IMMUNITY_TIME_IN_SECONDS on a half message: the broker does not check it back before
that many seconds have passed (instead of ``transactionTimeOut``), as RocketMQ's
TransactionalMessageServiceImpl reads it: a producer whose local transaction takes long asks
not to be checked (and maybe rolled back by its checker) meanwhile."""

from __future__ import annotations

import json
import pathlib

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import CHECK_IMMUNITY_TIME_IN_SECONDS, encode_properties
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(30)


def send_half(client: WireClient, uniq: str, **extra: str) -> int:
    props = encode_properties({"TRAN_MSG": "true", "PGROUP": "pg", "UNIQ_KEY": uniq, **extra})
    sent = client.call(
        RequestCode.SEND_MESSAGE_V2,
        send_v2_header("Tx", group="pg", sys_flag=4, properties=props),
        uniq.encode(),
    )
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    return int(sent.ext_fields["msgId"][16:], 16)


def test_a_half_message_is_not_checked_back_within_its_immunity_time(
    tmp_path: pathlib.Path,
) -> None:
    settings = {
        "transaction_timeout": 50,
        "transaction_check_interval": 100,
        "transaction_check_max": 1000,
    }
    with lone_broker(tmp_path / "b", **settings) as client, no_errors_logged() as errors:
        hb = {"clientID": "pg-1", "producerDataSet": [{"groupName": "pg"}], "consumerDataSet": []}
        assert client.call(RequestCode.HEART_BEAT, body=json.dumps(hb).encode()).code == 0
        # Given a half message immune to checks for an hour, then one without immunity
        immune = send_half(client, "U-immune", **{CHECK_IMMUNITY_TIME_IN_SECONDS: "3600"})
        plain = send_half(client, "U-plain")
        # When the broker has checked the second one back three times (every round asks the
        # open half messages in offset order, so the immune one would be asked first)
        asked = []
        while asked.count(plain) < 3:
            check = client.wait_for_request(RequestCode.CHECK_TRANSACTION_STATE, 10)
            asked.append(int(check.ext_fields["commitLogOffset"]))
        # Then the immune one was never asked about
        assert immune not in asked
        assert errors == []
