"""Helpers for in-process HA tests: one ``runtime.node.Node`` per role (name server, each
broker), wire sends, fake slaves speaking the HA protocol, and event-based waits on a broker's
store (no sleeps: every wait is a future or a socket read with a deadline)."""

from __future__ import annotations

import filecmp
import os
import pathlib
import socket
import tempfile
import time
from typing import Any

import gevent
import gevent.event
import gevent.socket

from actors.broker.messages import GetMessages, WaitArrival
from config import BrokerConfig, NamesrvConfig, with_overrides
from runtime.actor import actor_of, new_future, watch
from runtime.ha import protocol as P
from runtime.hostport import parse_address
from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.store import record as R
from runtime.store.context import StoreContext
from tests.wire import WireClient, send_v2_header

SEGMENT = 64 * 1024
T = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_namesrv(*, controller: bool = False, port: int = 0, store: str | None = None) -> Node:
    """A name server Node (with the failover controller when asked; a fixed ``port`` lets a
    test restart it where the brokers look for it). Its controller grants leases 0.3 s after
    it starts (``controllerStartupGraceMillis``; tests that restart one inside the process patch
    ``GRACE_S`` too) and keeps its decisions in ``store`` (a restart given the same directory
    remembers them), by default a new temporary directory (never ``~/actormq/controller``)."""
    node = Node(
        namesrvs=[
            NamesrvConfig(
                listen_port=port,
                controller_enable=controller,
                controller_startup_grace_millis=300,
                controller_store_path=store or tempfile.mkdtemp(prefix="actormq-controller-"),
            )
        ],
        brokers=[],
        data_dir=None,
        cluster_mode=False,
        ephemeral_ports=not port,
    )
    node.start()
    return node


def wait_until(predicate: Any, timeout: float = T, what: str = "") -> None:
    """Poll ``predicate`` on this hub (yielding to the actors) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        gevent.sleep(0.01)


def broker_node(node: Node, broker: str | None = None) -> Any:
    """The live supervisor of the node's (or the named) broker subtree (a role change
    replaces it)."""
    assert node._root is not None
    return node._root.proxy().lookup(broker or label(node)).get(timeout=T)


def wait_rebuilt(node: Node, before: Any, timeout: float = T, broker: str | None = None) -> Any:
    """Wait until the broker subtree ``before`` ended and a new one runs; return the new one."""
    ended = gevent.event.Event()
    watch(before, lambda _ref, _failure: ended.set())
    assert ended.wait(timeout), "the broker subtree was not rebuilt"
    again = broker_node(node, broker)
    assert again is not None and again.actor_urn != before.actor_urn
    return again


def broker_config(name: str, broker_id: int, role: str, namesrv: str, **extra: Any) -> BrokerConfig:
    values: dict[str, Any] = {
        "broker_name": name,
        "broker_id": broker_id,
        "broker_role": role,
        "listen_port": 0,
        "ha_listen_port": 0,
        "namesrv_addr": namesrv,
        "mapped_file_size_commit_log": SEGMENT,
        "slave_timeout": 1000,
        "ha_send_heartbeat_interval": 500,
        "register_name_server_period": 1000,
    }
    values.update(extra)
    return with_overrides(BrokerConfig(), **values)


def start_broker(cfg: BrokerConfig, data: pathlib.Path) -> Node:
    node = Node(namesrvs=[], brokers=[cfg], data_dir=data, cluster_mode=False, ephemeral_ports=True)
    node.start()
    return node


def stop_node(node: Node) -> None:
    """Stop the tree and release the node's sockets and data-directory lock."""
    node.stop()
    node._close()


def label(node: Node) -> str:
    return next(k for k in node.addresses if "/" in k)


def store_ctx(node: Node) -> StoreContext:
    ref = node.directory.require(f"{label(node)}/store/commitlog")
    actor = actor_of(ref)
    assert actor is not None
    return actor.ctx  # type: ignore[attr-defined]


def ha_state(node: Node, broker: str | None = None) -> Any:
    """The HAState of the node's (or the named) broker, through its HA actor."""
    broker = broker or label(node)
    for name in (f"{broker}/ha-service", f"{broker}/ha-client"):
        actor = actor_of(node.directory.require(name)) if name in node.directory else None
        if actor is not None:
            return actor.ha.state  # type: ignore[attr-defined]
    raise AssertionError("no HA actor")


def wait_in_sync(master: Node, *nodes: int) -> None:
    state = ha_state(master)
    assert state.wait_until(lambda s: set(nodes) <= s.in_sync, T), state.in_sync


def send(client: WireClient, topic: str, body: bytes, queue_id: int = 0) -> Any:
    ext = send_v2_header(topic, group="ha-pg", queue_id=queue_id, born_ms=int(time.time() * 1000))
    return client.call(RequestCode.SEND_MESSAGE_V2, ext, body)


def send_until_not_busy(client: WireClient, topic: str, body: bytes) -> Any:
    """``send``, sent again while the broker answers SYSTEM_BUSY (a loaded machine: the send
    waited past waitTimeMillsInSendQueue; nothing was stored), as a client retries, until
    ``T`` has passed; the last answer."""
    deadline = time.monotonic() + T
    while True:
        reply = send(client, topic, body)
        if reply.code != ResponseCode.SYSTEM_BUSY or time.monotonic() > deadline:
            return reply


def wait_queue(ctx: StoreContext, topic: str, queue_id: int, count: int) -> int:
    """Wait (a future, deadline ``T``) until the queue holds ``count`` entries."""
    ref = ctx.queues.get(topic, queue_id, create=True)
    assert ref is not None
    reply = new_future()
    ref.tell(WaitArrival(count - 1, reply, time.monotonic() + T))
    got = reply.get(timeout=T + 1)
    assert got >= count, f"{topic}/{queue_id} has {got} entries, want {count}"
    return got


def queue_records(ctx: StoreContext, topic: str, queue_id: int, n: int) -> list[R.StoredRecord]:
    ref = ctx.queues.get(topic, queue_id)
    assert ref is not None
    result = ref.ask(GetMessages(0, n, 1 << 30, None), timeout=T)
    return [R.decode_record(m) for m in result.messages]


def same_commit_log(a: StoreContext, b: StoreContext) -> None:
    da = os.path.join(a.settings.root, "commitlog")
    db = os.path.join(b.settings.root, "commitlog")
    names = sorted(os.listdir(da))
    assert names == sorted(os.listdir(db))
    _match, mismatch, errors = filecmp.cmpfiles(da, db, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


class FakeSlave:
    """A slave speaking the HA protocol by hand: HELLO, read frames, REPORT when told."""

    def __init__(
        self,
        address: str,
        node: int,
        max_offset: int = 0,
        group: str = "",
        version: int = P.VERSION,
    ) -> None:
        self.sock = gevent.socket.create_connection(parse_address(address), timeout=T)
        self.decoder = P.MasterStreamDecoder()
        self.frames: list[P.MasterFrame] = []
        self.confirms: list[int] = []
        """The offsets of the master's CONFIRM frames so far."""
        hello = P.Hello(
            node=node,
            segment_size=SEGMENT,
            epochs=(),
            max_offset=max_offset,
            group=group,
            version=version,
        )
        self.sock.sendall(P.encode_hello(hello))

    def next_frame(self) -> P.MasterFrame:
        """The master's next frame but a CONFIRM (those go to ``confirms``)."""
        while True:
            while not self.frames:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("master closed the link")
                self.frames += self.decoder.feed(data)
            frame = self.frames.pop(0)
            if not isinstance(frame, P.Confirm):
                return frame
            self.confirms.append(frame.offset)

    def data_until(self, end: int) -> int:
        """Read DATA frames until the stream reaches ``end``; returns where it got to."""
        at = -1
        while at < end:
            frame = self.next_frame()
            if isinstance(frame, P.Data) and frame.data:
                at = frame.offset + len(frame.data)
        return at

    def confirm_until(self, offset: int) -> int:
        """Read the stream until a CONFIRM reaches ``offset``; the highest one."""
        while not self.confirms or max(self.confirms) < offset:
            if self.frames:
                frame = self.frames.pop(0)
                if isinstance(frame, P.Confirm):
                    self.confirms.append(frame.offset)
                continue
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("master closed the link")
            frames = self.decoder.feed(data)
            self.confirms += [f.offset for f in frames if isinstance(f, P.Confirm)]
        return max(self.confirms)

    def report(self, offset: int) -> None:
        self.sock.sendall(P.encode_report(offset))

    def closed_by_master(self) -> bool:
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    return True
                self.frames += self.decoder.feed(data)
        except TimeoutError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()
