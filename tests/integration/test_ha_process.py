"""Failover across processes with the shipped broker files: ``python -m runtime namesrv -c
config/brokers/2m-2s-*/namesrv.properties`` (the controller) and two ``python -m runtime broker
-c`` processes (broker-a and broker-a-s). A producer (``actors.client.Producer``) keeps sending
while the master is killed with SIGKILL.

- ASYNC_MASTER: the first SEND_OK after the kill comes within 5 s (the measured time is
  printed); every message acknowledged after the kill is consumable from the new master, and
  of those acknowledged before it only a tail of the last ones may be missing (the replication
  lag window that ASYNC_MASTER allows to lose), counted and printed.
- SYNC_MASTER: writes are stored again within 5 s (SLAVE_NOT_AVAILABLE: the new master has no
  slave yet), the old master restarts and rejoins as a slave, SEND_OK resumes, every message
  ever acknowledged SEND_OK is consumable (zero loss, R9) and the rejoined node's commit log is
  byte-identical to the new master's (lost-on-node).
"""

from __future__ import annotations

import filecmp
import os
import pathlib
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from actors.client import ClientError, Message, Producer, SendStatus
from tests.harness import REPO, RuntimeProcess
from tests.integration.test_broker_wire import pull, records
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)

TOPIC = "HA-FAILOVER"
FILES = REPO / "config" / "brokers"


class Proc(RuntimeProcess):
    """A RuntimeProcess whose stderr lines can be waited for."""

    def __init__(self, args: list[str]) -> None:
        self.seen = threading.Condition()
        super().__init__(["--log-level", "INFO", *args])

    def _pump(self, stream, is_stdout):  # type: ignore[no-untyped-def]
        if is_stdout:
            return super()._pump(stream, is_stdout)
        for line in stream:
            with self.seen:
                self.stderr.append(line.rstrip("\n"))
                self.seen.notify_all()
        return None

    def wait_line(self, pattern: str, timeout: float, after: int = 0) -> int:
        """Wait for a stderr line matching ``pattern`` (index >= ``after``); its index."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.seen:
            while True:
                for i in range(after, len(self.stderr)):
                    if regex.search(self.stderr[i]):
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no line /{pattern}/ in {timeout}s:\n{self.stderr_text()}")
                self.seen.wait(remaining)


@dataclass
class Sent:
    body: str
    at: float
    status: str  # a SendStatus name, or "error"
    broker: str = ""


@dataclass
class Workload:
    producer: Producer
    log: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            body = f"m-{i:06d}"
            i += 1
            try:
                result = self.producer.send(Message(TOPIC, body.encode()), timeout=2.0)
                entry = Sent(body, time.monotonic(), result.status.name, result.queue.broker_name)
            except ClientError:
                entry = Sent(body, time.monotonic(), "error")
            self.log.append(entry)
            time.sleep(0.004)  # pacing (about 200 sends/s), not synchronisation

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def ok_count(self) -> int:
        return sum(1 for s in self.log if s.status == SendStatus.SEND_OK.name)

    def wait(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        """Wait (on the producer's own progress: each check follows a real send) for ``what``."""
        deadline = time.monotonic() + timeout
        seen = -1
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            while len(self.log) == seen and time.monotonic() < deadline:
                time.sleep(0.01)  # the producer thread appends at least every 2 s
            seen = len(self.log)

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=10)


class Cluster:
    def __init__(self, tmp: pathlib.Path, mode: str) -> None:
        self.tmp = tmp
        self.mode = mode
        self.procs: list[Proc] = []
        # The shipped namesrv.properties, plus: this cluster is brand new (no broker can hold a
        # lease from an earlier controller), so its controller need not wait the 4 s grace
        conf = tmp / "namesrv.properties"
        shipped = (FILES / mode / "namesrv.properties").read_text()
        conf.write_text(
            shipped + "controllerStartupGraceMillis=300\n"
            f"controllerStorePath={tmp / 'controller'}\n"
        )
        self.ns = self.spawn(["namesrv", "-c", str(conf)])
        self.namesrv = self.ns.wait_ready()["namesrv"]
        self.ns.wait_line(r"controller: started \(grants nothing for 0\.3s\)", 10)

    def spawn(self, args: list[str]) -> Proc:
        proc = Proc([*args, "--ephemeral-ports"])
        self.procs.append(proc)
        return proc

    def broker(self, file: str, data: str) -> tuple[Proc, str]:
        proc = self.spawn(
            [
                "broker",
                "-c",
                str(FILES / self.mode / file),
                "--namesrv-addr",
                self.namesrv,
                "--data-dir",
                str(self.tmp / data),
            ]
        )
        addresses = proc.wait_ready()
        return proc, next(v for k, v in addresses.items() if k.startswith("broker-a/"))

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()


@pytest.fixture
def clusters() -> Iterator[list[Cluster]]:
    made: list[Cluster] = []
    yield made
    for c in made:
        c.close()


def read_all(address: str, queues: int = 4) -> list[str]:
    """Every message of TOPIC on the broker at ``address`` (pulls until each queue's end)."""
    client = WireClient(address)
    bodies: list[str] = []
    try:
        for q in range(queues):
            offset = 0
            while True:
                reply = pull(client, TOPIC, q, offset, max_nums=256)
                if reply.code != 0:
                    break
                bodies += [r.body.decode() for r in records(reply.body)]
                offset = int(reply.ext_fields["nextBeginOffset"])
    finally:
        client.close()
    return bodies


def start_group(tmp: pathlib.Path, mode: str, clusters: list[Cluster]) -> tuple[Cluster, Proc, str]:
    c = Cluster(tmp, mode)
    clusters.append(c)
    master, master_addr = c.broker("broker-a.properties", "a0")
    c.broker("broker-a-s.properties", "a1")
    # The controller knows the slave is in sync (else there is nobody to elect)
    c.ns.wait_line(r"broker-a in-sync set now \[1\]", 30)
    return c, master, master_addr


def test_async_master_killed_writes_resume_within_5s(
    tmp_path: pathlib.Path, clusters: list[Cluster]
) -> None:
    c, master, _ = start_group(tmp_path, "2m-2s-async", clusters)
    producer = Producer("ha-pg", c.namesrv, send_timeout=2.0).start()
    load = Workload(producer)
    load.start()
    try:
        load.wait(lambda: load.ok_count() >= 200, 30, "200 acks before the kill")
        # When the master is killed
        master.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        master.wait(10)
        # Then the producer gets SEND_OK again within 5 s, from the promoted slave
        load.wait(
            lambda: any(s.at > killed_at and s.status == "SEND_OK" for s in load.log),
            20,
            "a SEND_OK after the kill",
        )
        first = next(s for s in load.log if s.at > killed_at and s.status == "SEND_OK")
        rto = first.at - killed_at
        print(f"\nASYNC_MASTER failover: first SEND_OK {rto:.2f}s after kill -9")
        assert rto <= 5.0
        load.wait(lambda: sum(s.at > first.at for s in load.log) >= 50, 20, "50 more sends")
    finally:
        load.finish()
        producer.shutdown()
    promoted = c.procs[2]
    promoted.wait_line(r"master of epoch 2", 5)
    new_master = c.procs[2].addresses["broker-a/1"]
    read = set(read_all(new_master))
    acked = [s for s in load.log if s.status == "SEND_OK"]
    after = [s.body for s in acked if s.at > killed_at]
    before = [s.body for s in acked if s.at <= killed_at]
    assert set(after) <= read, "a message acked after the failover is missing"
    lost = [b for b in before if b not in read]
    # Only a tail of the acks before the kill may be lost (the replication lag at the kill)
    assert lost == before[len(before) - len(lost) :], f"lost in the middle: {lost}"
    print(f"acked before the kill: {len(before)}, lost (lag window): {len(lost)}")
    assert len(lost) <= 5


def test_sync_master_killed_zero_loss_and_the_old_master_rejoins(
    tmp_path: pathlib.Path, clusters: list[Cluster]
) -> None:
    c, master, _ = start_group(tmp_path, "2m-2s-sync", clusters)
    producer = Producer("ha-pg", c.namesrv, send_timeout=2.0).start()
    load = Workload(producer)
    load.start()
    try:
        load.wait(lambda: load.ok_count() >= 200, 30, "200 acks before the kill")
        master.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        master.wait(10)
        # Then writes are stored again within 5 s (no slave yet: SLAVE_NOT_AVAILABLE)
        load.wait(
            lambda: any(s.at > killed_at and s.status != "error" for s in load.log),
            20,
            "a stored send after the kill",
        )
        first = next(s for s in load.log if s.at > killed_at and s.status != "error")
        print(f"\nSYNC_MASTER failover: first stored send {first.at - killed_at:.2f}s after kill")
        assert first.at - killed_at <= 5.0
        # (a reply in flight at the kill can be that first send: restart the old master only
        # once the slave was promoted, or it may come back as the master it was)
        c.procs[2].wait_line(r"master of epoch 2", 10)
        # When the old master restarts, Then it rejoins as a slave and SEND_OK comes back
        c.broker("broker-a.properties", "a0")
        load.wait(
            lambda: any(s.at > first.at and s.status == "SEND_OK" for s in load.log),
            30,
            "SEND_OK with the old master back as a slave",
        )
        resumed = next(s for s in load.log if s.at > first.at and s.status == "SEND_OK")
        load.wait(lambda: sum(s.at > resumed.at for s in load.log) >= 50, 20, "50 more sends")
    finally:
        load.finish()
        producer.shutdown()
    new_master = c.procs[2].addresses["broker-a/1"]
    read = read_all(new_master)
    acked = {s.body for s in load.log if s.status == "SEND_OK"}
    assert acked <= set(read), f"lost: {sorted(acked - set(read))[:10]}"
    assert len(read) == len(set(read)), "a message stored twice"
    # lost-on-node: the rejoined old master holds exactly the new master's log
    mine, theirs = tmp_path / "a1" / "commitlog", tmp_path / "a0" / "commitlog"
    names = sorted(os.listdir(mine))
    assert names == sorted(os.listdir(theirs))
    _same, different, errors = filecmp.cmpfiles(mine, theirs, names, shallow=False)
    assert not different and not errors
