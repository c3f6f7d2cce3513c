"""END_TRANSACTION (37) and RESUME_CHECK_HALF_MESSAGE (323) sent to a slave (a producer whose
route still names a master just demoted): RocketMQ's slave answers END_TRANSACTION
SLAVE_NOT_AVAILABLE ("end transaction is forbidden"); ours raised ActorFailure (no
TransactionManager runs on a slave), answered SYSTEM_ERROR and logged a traceback per request."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from tests.actors.broker_support import no_errors_logged
from tests.actors.ha_support import store_ctx
from tests.actors.test_ha_slave import Pair
from tests.client_support import wait_until
from tests.wire import send_v2_header

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair(tmp_path: pathlib.Path) -> Iterator[Pair]:
    made = Pair(tmp_path)
    yield made
    made.close()


def test_a_slave_refuses_to_end_a_transaction_without_a_traceback(pair: Pair) -> None:
    # Given a half message the slave holds too
    props = encode_properties({"TRAN_MSG": "true", "PGROUP": "pg", "UNIQ_KEY": "u1"})
    header = send_v2_header("Tx", group="pg", sys_flag=4, properties=props)
    sent = pair.to_master.call(RequestCode.SEND_MESSAGE_V2, header, b"half")
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    msg_id = sent.ext_fields["msgId"]
    offset = int(msg_id[16:], 16)
    slave = store_ctx(pair.slave)  # type: ignore[arg-type]
    wait_until(lambda: slave.dispatched > offset, timeout=10, what="the slave holds it")
    end = {
        "producerGroup": "pg",
        "tranStateTableOffset": 0,
        "commitLogOffset": offset,
        "commitOrRollback": 8,
        "fromTransactionCheck": False,
        "msgId": msg_id,
    }
    with no_errors_logged() as errors:
        # When a producer commits it on the slave
        got = pair.to_slave.call(RequestCode.END_TRANSACTION, end)
        # Then the slave answers as RocketMQ's does
        assert got.code == ResponseCode.SLAVE_NOT_AVAILABLE, got.remark
        # And an admin resuming its checks there hears why, in a sentence
        got = pair.to_slave.call(RequestCode.RESUME_CHECK_HALF_MESSAGE, {"msgId": msg_id})
        assert got.code == ResponseCode.SYSTEM_ERROR
        assert "slave" in got.remark
        # And nothing was logged as a failure
        assert errors == []
    # And the master still settles it
    assert pair.to_master.call(RequestCode.END_TRANSACTION, end).code == ResponseCode.SUCCESS
