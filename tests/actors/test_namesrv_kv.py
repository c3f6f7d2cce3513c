"""KVConfig's group commit: a flood of puts costs a few file writes, each put is answered only
once a write that holds it is on disk, and reads never wait for a write (the name server asks
the KV table on every broker registration: a registration is answered while a write is held)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import gevent
import gevent.event
import pytest

from actors.namesrv.kv_config import ORDER_TOPIC_CONFIG, KVConfig, write_in_pool
from actors.namesrv.processor import NamesrvProcessor
from actors.namesrv.route_table import RouteTable
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand

pytestmark = pytest.mark.timeout(20)


class GatedWrites:
    """A ``Persist`` seam: counts writes; each waits for ``release`` (when closed) before it
    writes for real; ``fail_next`` makes the next one raise instead."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = gevent.event.Event()
        self.release = gevent.event.Event()
        self.release.set()
        self.fail_next = False

    def hold(self) -> None:
        self.release.clear()
        self.started.clear()

    def __call__(self, path: str, data: bytes) -> None:
        self.calls += 1
        self.started.set()
        assert self.release.wait(timeout=10), "the test never released the write"
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk says no")
        write_in_pool(path, data)


def file_table(path: pathlib.Path) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = json.loads(path.read_text())["configTable"]
    return table


def test_concurrent_puts_share_writes_and_reads_do_not_wait(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kvConfig.json"
    writes = GatedWrites()
    kv = KVConfig.start(str(path), persist=writes).proxy()
    try:
        # Given a write in progress that cannot finish yet
        writes.hold()
        first = kv.put("ns", "first", "0").get(timeout=5)
        assert writes.started.wait(timeout=5)
        # When 200 puts arrive while it runs
        puts = 200
        durable = [kv.put("ns", f"k{i}", str(i)).get(timeout=5) for i in range(puts)]
        # Then each is answered by the actor at once (its future not yet set), and a namespace
        # read is answered with all of them in it, the write still held
        listed = kv.namespace("ns").get(timeout=2)
        assert listed is not None and len(listed) == puts + 1
        assert not writes.release.is_set()
        assert not first.done() and not any(d.done() for d in durable)
        on_disk: dict[int, bool] = {}

        def check(i: int) -> None:  # as soon as put i is answered, the file must hold it
            durable[i].get(timeout=10)
            on_disk[i] = file_table(path)["ns"].get(f"k{i}") == str(i)

        checkers = [gevent.spawn(check, i) for i in range(puts)]
        # When the write is released
        writes.release.set()
        gevent.joinall(checkers, timeout=10, raise_error=True)
        first.get(timeout=5)
        # Then every put was on disk when it was answered, and far fewer writes were made: the
        # held one, then one for all 200
        assert len(on_disk) == puts and all(on_disk.values())
        assert len(file_table(path)["ns"]) == puts + 1
        assert writes.calls < puts
        assert writes.calls == 2
    finally:
        writes.release.set()
        kv.actor_ref.stop(timeout=5)


def test_a_failed_write_undoes_only_the_changes_it_covered(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kvConfig.json"
    writes = GatedWrites()
    kv = KVConfig.start(str(path), persist=writes).proxy()
    try:
        kv.put("ns", "kept", "1").get(timeout=5).get(timeout=5)
        # Given a write of a put that will fail, held
        writes.hold()
        writes.fail_next = True
        doomed = kv.put("ns", "doomed", "x").get(timeout=5)
        assert writes.started.wait(timeout=5)
        # And a put made while it runs
        later = kv.put("ns", "later", "y").get(timeout=5)
        # When the write fails
        writes.release.set()
        # Then the put it covered gets the error and is taken back out of the table
        with pytest.raises(OSError, match="disk says no"):
            doomed.get(timeout=5)
        assert kv.get("ns", "doomed").get(timeout=5) is None
        # And the later put is written by the next write
        later.get(timeout=5)
        assert kv.namespace("ns").get(timeout=5) == {"kept": "1", "later": "y"}
        assert file_table(path) == {"ns": {"kept": "1", "later": "y"}}
    finally:
        writes.release.set()
        kv.actor_ref.stop(timeout=5)


def test_a_second_delete_waits_for_the_write_of_the_first(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kvConfig.json"
    writes = GatedWrites()
    kv = KVConfig.start(str(path), persist=writes).proxy()
    try:
        kv.put("ns", "k", "v").get(timeout=5).get(timeout=5)
        # Given a delete whose write will fail, held
        writes.hold()
        writes.fail_next = True
        first = kv.delete("ns", "k").get(timeout=5)
        assert writes.started.wait(timeout=5)
        # When the key is deleted again meanwhile (absent only in memory)
        second = kv.delete("ns", "k").get(timeout=5)
        # Then that one is not answered before a write holds it
        assert not second.done()
        writes.release.set()
        with pytest.raises(OSError, match="disk says no"):
            first.get(timeout=5)
        second.get(timeout=5)
        # And it took effect: the key is gone, on disk too
        assert kv.get("ns", "k").get(timeout=5) is None
        assert file_table(path).get("ns", {}) == {}
    finally:
        writes.release.set()
        kv.actor_ref.stop(timeout=5)


def test_stop_writes_what_is_pending(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kvConfig.json"
    writes = GatedWrites()
    kv: Any = KVConfig.start(str(path), persist=writes).proxy()
    # Given puts not yet on disk (the first write held, the second pending)
    writes.hold()
    kv.put("ns", "a", "1").get(timeout=5)
    assert writes.started.wait(timeout=5)
    kv.put("ns", "b", "2").get(timeout=5)
    # When the actor begins to stop while the write is held (it waits for its writer)
    stopped = kv.actor_ref.stop(block=False)
    gevent.idle()  # everything runnable has run: the actor is in on_stop
    assert not kv.actor_ref.is_alive()
    # And the write then finishes
    writes.release.set()
    stopped.get(timeout=10)
    # Then both are in the file
    assert file_table(path) == {"ns": {"a": "1", "b": "2"}}


class FakeSession:
    """Stands in for a broker's SessionHandle (the processor reads its id and whether it is
    still open)."""

    session_id = 1
    alive = True


def test_a_registration_is_answered_while_a_kv_write_is_held(tmp_path: pathlib.Path) -> None:
    # Given a name server's processor whose KV table has a write in progress that cannot end
    directory = Directory()
    writes = GatedWrites()
    kv = KVConfig.start(str(tmp_path / "kvConfig.json"), persist=writes)
    routes = RouteTable.start()
    directory.put("ns/kvconfig", kv)
    directory.put("ns/routes", routes)
    processor = NamesrvProcessor(directory, "ns/routes", kv_config="ns/kvconfig")
    try:
        writes.hold()
        put = kv.proxy().put(ORDER_TOPIC_CONFIG, "Orders", "broker-a:4").get(timeout=5)
        assert writes.started.wait(timeout=5)
        # When a broker registers
        header = {
            "brokerName": "broker-a",
            "brokerAddr": "127.0.0.1:10911",
            "clusterName": "DefaultCluster",
            "brokerId": 0,
        }
        request = RemotingCommand.request(RequestCode.REGISTER_BROKER, header)
        with gevent.Timeout(2):
            reply = processor.process(FakeSession(), request)  # type: ignore[arg-type]
        # Then it is answered at once, with the order conf put a moment ago, the write held
        assert reply is not None and reply.code == ResponseCode.SUCCESS
        assert json.loads(reply.body)["table"] == {"Orders": "broker-a:4"}
        assert not put.done()
    finally:
        writes.release.set()
        kv.stop(timeout=5)
        routes.stop(timeout=5)
