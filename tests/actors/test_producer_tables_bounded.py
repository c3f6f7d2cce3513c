"""The ProducerManager's per-connection tables stay bounded whatever a producer puts in its
sends (actors/broker/producer_manager.py): the REPLY_TO_CLIENT of request messages and the
producer group of half messages each made one entry per distinct value, kept 120 s."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import gevent
import pytest

from actors.broker.producer_manager import MAX_KEYS_PER_SESSION
from runtime.actor import actor_of
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import broker_config, label, start_broker, stop_node
from tests.wire import WireClient, send_v2

pytestmark = pytest.mark.timeout(60)

SENDS = 200
TRANSACTION_PREPARED = 4


def producers_of(node: Any) -> Any:
    actor = actor_of(node.directory.require(f"{label(node)}/producers"))
    assert actor is not None
    return actor


def test_request_and_half_message_tables_keep_a_few_keys_per_connection(
    tmp_path: pathlib.Path,
) -> None:
    node = start_broker(broker_config("broker-t", 0, "ASYNC_MASTER", ""), tmp_path / "b")
    client = WireClient(node.addresses[label(node)])
    try:
        # Given one connection sending request messages, each naming another requester, and
        # half messages, each under another producer group
        for i in range(SENDS):
            request = f"CORRELATION_ID\x01c{i}\x02REPLY_TO_CLIENT\x01client-{i}\x02"
            got = client.call_command(send_v2("Asks", b"q", born_ms=_now(), properties=request))
            assert got.code == ResponseCode.SUCCESS, got.remark
            half = f"TRAN_MSG\x01true\x02PGROUP\x01group-{i}\x02"
            sent = send_v2(
                "Halves", b"h", group=f"group-{i}", sys_flag=TRANSACTION_PREPARED,
                properties=half, born_ms=_now(),
            )  # fmt: skip
            got = client.call_command(sent)
            assert got.code == ResponseCode.SUCCESS, got.remark
        producers = producers_of(node)
        # Then the broker remembers only the connection's most recent few of each
        assert len(producers._requesters) == MAX_KEYS_PER_SESSION
        assert len(producers._senders) == MAX_KEYS_PER_SESSION
        # And the latest requester and group still reach the connection
        ref = node.directory.require(f"{label(node)}/producers")
        assert ref.proxy().find_channel(f"client-{SENDS - 1}").get(timeout=5) is not None
        assert ref.proxy().any_channel(f"group-{SENDS - 1}").get(timeout=5) is not None
        assert ref.proxy().find_channel("client-0").get(timeout=5) is None
        # And once the connection closes nothing of it is left
        client.close()
        deadline = time.monotonic() + 10
        while producers._requesters or producers._senders or producers._keys_of:
            assert time.monotonic() < deadline, "the closed connection's entries stayed"
            gevent.sleep(0.05)
    finally:
        client.close()
        stop_node(node)


def _now() -> int:
    return int(time.time() * 1000)
