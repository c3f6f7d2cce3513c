"""GET_BROKER_HA_STATUS's picture of a node (``ha_status_handler.runtime_info``), mqadmin's lines
for it (``admin_ha.status_lines``), and ``ByteRate``."""

from __future__ import annotations

from actors.broker.ha_status_handler import runtime_info
from runtime.admin_ha import status_lines
from runtime.ha.state import ByteRate, HAState, Role, SlaveLink
from runtime.remoting.bodies import decode_body, encode_body
from runtime.remoting.ha_bodies import HARuntimeInfo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_master_lists_its_linked_slaves() -> None:
    # Given a master whose slave 1 is in sync and slave 2 behind, and slave 3 gone
    clock = Clock()
    ha = HAState(node_id=0, role=Role.MASTER, sync=True, clock=clock)
    ha.slaves[1] = SlaveLink("u1", 1000, now=clock.now, addr="10.0.0.2:40001")
    ha.slaves[2] = SlaveLink("u2", 400, now=clock.now, addr="10.0.0.3:40002")
    ha.slaves[3] = SlaveLink("u3", 0, now=clock.now, addr="10.0.0.4:40003")
    ha.slaves[3].connected = False
    ha.in_sync = frozenset({1})
    clock.now += 1.5
    ha.slaves[1].acked = 2500
    ha.slaves[1].rate.note(2500, clock.now)  # 1,500 bytes in 1.5 s
    # When its HA status is asked (its log ends at 2,500)
    info = runtime_info(ha, 2500)
    # Then both linked slaves are listed, with their lag, state and speed; the gone one not
    assert info.master and info.master_commit_log_max_offset == 2500
    assert info.in_sync_slave_nums == 1
    first, second = info.ha_connection_info
    assert (first.addr, first.diff, first.in_sync) == ("10.0.0.2:40001", 0, True)
    assert (first.transferred_byte_in_second, first.transfer_from_where) == (1000, 1000)
    assert (second.addr, second.diff, second.in_sync) == ("10.0.0.3:40002", 2100, False)
    # And the body is RocketMQ's HARuntimeInfo JSON, read back the same
    body = encode_body(info)
    assert b'"haConnectionInfo"' in body and b'"slaveAckOffset":2500' in body
    assert decode_body(HARuntimeInfo, body) == info
    # And mqadmin's lines show them
    lines = status_lines("10.0.0.1:10911", info)
    assert "#InSyncSlaveNum\t1" in lines and "#SlaveNum\t2" in lines
    assert lines[-2].split() == ["10.0.0.2:40001", "2500", "0", "0.98", "OK", "1000"]
    assert lines[-1].split()[-3:] == ["Fall", "Behind", "400"]


def test_a_slave_reports_its_link_and_a_broker_without_replication_is_a_lone_master() -> None:
    # Given a slave linked to its master, which read and reported a moment ago
    ha = HAState(node_id=1, role=Role.SLAVE, sync=True)
    ha.master_ha_addr, ha.master_link_up = "10.0.0.1:10912", True
    ha.last_read_ms, ha.last_report_ms = 1_700_000_000_123, 1_700_000_000_456
    # When its HA status is asked, Then it names its master, its end and its link
    client = runtime_info(ha, 777).ha_client_runtime_info
    assert (client.master_addr, client.max_offset) == ("10.0.0.1:10912", 777)
    assert client.activated
    assert client.last_read_timestamp == 1_700_000_000_123
    lines = status_lines("10.0.0.5:10921", runtime_info(ha, 777))
    assert "#MasterAddr\t10.0.0.1:10912" in lines and "#Linked\tyes" in lines
    # And a broker without HA state answers as a master without slaves
    lone = runtime_info(None, 50)
    assert lone.master and lone.ha_connection_info == [] and lone.in_sync_slave_nums == 0


def test_a_byte_rate_counts_the_last_second_and_falls_to_zero_when_idle() -> None:
    rate = ByteRate()
    rate.note(10_000, 5.0)  # the first note only marks the start
    assert rate.current(5.0) == 0
    rate.note(12_000, 5.5)
    rate.note(14_000, 6.0)  # 4,000 bytes in the second since the mark
    assert rate.current(6.0) == 4000
    assert rate.current(8.5) == 0  # nothing noted for 2.5 s


def test_ha_status_of_a_cluster_goes_on_past_a_master_that_does_not_answer() -> None:
    import argparse

    from actors.client import ClientError
    from runtime.admin_ha import run

    class FakeAdmin:
        def masters(self, cluster: str | None) -> dict[str, str]:
            return {"broker-a": "10.0.0.1:10911", "broker-b": "10.0.0.2:10911"}

        def ha_status(self, address: str) -> HARuntimeInfo:
            if address == "10.0.0.1:10911":
                raise ClientError("connection refused")
            return runtime_info(None, 9)

    # Given a cluster whose first master does not answer
    args = argparse.Namespace(command="haStatus", broker=None, cluster="DefaultCluster")
    lines = run(FakeAdmin(), args)  # type: ignore[arg-type]
    # Then its error is shown and the other master's status follows
    assert lines is not None
    assert "#Error\tconnection refused" in lines
    assert "#MasterAddr\t10.0.0.2:10911" in lines and "#MasterCommitLogMaxOffset\t9" in lines
