"""A slave's HELLO end is what it wrote, not what it acknowledged: under SYNC_FLUSH its last
append's fsync may have outlived its previous link (a slow disk: the append timed out or the
flush failed, the link ended, it linked again at once). The master counts a new link's start
as held (for the in-sync set and the stream) but as acknowledged only once the slave REPORTs on
that link: no PUT_OK and nothing shown to consumers on the HELLO's word.

A classic SYNC_MASTER and a hand-driven slave (``FakeSlave``) whose reports the test decides."""

from __future__ import annotations

import pathlib
import time

import gevent
import pytest

from runtime.ha import protocol as P
from runtime.remoting.codes import ResponseCode
from tests.actors.ha_support import (
    FakeSlave,
    T,
    broker_config,
    ha_state,
    label,
    send,
    start_broker,
    stop_node,
    store_ctx,
    wait_in_sync,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


def test_a_relinked_slaves_hello_end_is_no_ack_until_it_reports(
    tmp_path: pathlib.Path, namesrv: str
) -> None:
    cfg = broker_config("broker-a", 0, "SYNC_MASTER", namesrv, slave_timeout=20_000)
    master = start_broker(cfg, tmp_path / "m")
    client = WireClient(master.addresses[label(master)])
    try:
        ha = master.ha_addresses[label(master)]
        state = ha_state(master)
        ctx = store_ctx(master)
        # Given slave 5 in sync
        first = FakeSlave(ha, node=5)
        assert isinstance(first.next_frame(), P.Accept)
        wait_in_sync(master, 5)
        # When a message is sent and the slave gets it, but its link ends before it reports
        # (its append wrote the record; its fsync had not completed)
        pending = gevent.spawn(send, client, "HA", b"written, maybe not fsynced")
        end = first.data_until(1)
        first.close()
        assert state.wait_until(lambda s: not s.slaves[5].connected, T)
        # and it links again, its HELLO saying it holds the record
        second = FakeSlave(ha, node=5, max_offset=end)
        assert isinstance(second.next_frame(), P.Accept)
        assert state.wait_until(lambda s: s.slaves[5].connected and 5 in s.in_sync, T)
        # Then the send is not acknowledged, nor the record shown, on the HELLO's word
        deadline = time.monotonic() + 0.5  # (ten HAService ticks)
        while time.monotonic() < deadline:
            assert not pending.ready(), "PUT_OK on the slave's HELLO"
            gevent.sleep(0.02)
        assert ctx.dispatched == 0
        # When the slave reports it (its fsync done), Then it is
        second.report(end)
        reply = pending.get(timeout=T)
        assert reply.code == ResponseCode.SUCCESS
        assert state.wait_until(lambda _s: ctx.dispatched == end, T)
        second.close()
    finally:
        client.close()
        stop_node(master)


def test_a_report_of_the_hello_end_counts(tmp_path: pathlib.Path, namesrv: str) -> None:
    cfg = broker_config("broker-a", 0, "SYNC_MASTER", namesrv, slave_timeout=20_000)
    master = start_broker(cfg, tmp_path / "m")
    client = WireClient(master.addresses[label(master)])
    try:
        ha = master.ha_addresses[label(master)]
        state = ha_state(master)
        # Given a slave that got a record on a link that ended before it reported
        first = FakeSlave(ha, node=5)
        assert isinstance(first.next_frame(), P.Accept)
        wait_in_sync(master, 5)
        pending = gevent.spawn(send, client, "HA", b"held")
        end = first.data_until(1)
        first.close()
        assert state.wait_until(lambda s: not s.slaves[5].connected, T)
        # When it links again and its first REPORT (a heartbeat) repeats its HELLO's end
        second = FakeSlave(ha, node=5, max_offset=end)
        assert isinstance(second.next_frame(), P.Accept)
        second.report(end)
        # Then that is an acknowledgement: the send is answered SEND_OK
        assert pending.get(timeout=T).code == ResponseCode.SUCCESS
        second.close()
    finally:
        client.close()
        stop_node(master)
