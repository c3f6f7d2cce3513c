"""Shared by the gRPC clients' interop modules (``test_grpc5_client.py``,
``test_node5_client.py``): their cluster with a proxy, topics made and routed, client scripts
run, and what actormq's own consumer reads of a topic."""

from __future__ import annotations

import contextlib
import pathlib
import ssl
import time
from collections.abc import Iterator

from actors.client import Admin, ClientError, Message, Producer, PullConsumer
from actors.client.rebalance import ConsumeFrom
from tests.harness import REPO
from tests.interop.clients import ClientProcess, Event, run_to_end
from tests.interop.install import Client
from tests.interop.scenarios import Cluster, running_cluster

QUEUES = 4


@contextlib.contextmanager
def proxy_cluster(data: pathlib.Path, *extra: str) -> Iterator[Cluster]:
    """examples/features.toml (transactions checked back after about a second) with a proxy
    (``--consume-from first``: a group new to the brokers reads each fresh topic from its
    start, so no test races a consumer's first rebalance; ``--max-attempts 2`` and
    ``--invisible 3``: redelivery and dead letters within seconds), plus ``extra``."""
    args = ["--proxy", "--consume-from", "first", "--max-attempts", "2", "--invisible", "3"]
    profile = str(REPO / "examples" / "features.toml")
    with running_cluster(data, profile=profile, extra=[*args, *extra]) as cluster:
        yield cluster


def make_topic(cluster: Cluster, name: str, attributes: str | None = None) -> str:
    with Admin(cluster.namesrv) as admin:
        admin.create_topic(name, queues=QUEUES, attributes=attributes)
    await_route(cluster, name)
    return name


def await_route(cluster: Cluster, topic: str, timeout: float = 20) -> None:
    with Admin(cluster.namesrv) as admin:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if admin.topic_route(topic).queue_datas:
                    return
            except ClientError:
                pass
            assert time.monotonic() < deadline, f"{topic} never routed"
            time.sleep(0.2)


def run_script(
    client: Client,
    tmp: pathlib.Path,
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
) -> ClientProcess:
    label = script.rsplit(".", 1)[0]
    home = tmp / f"{label}-{time.monotonic_ns()}"
    return ClientProcess(client, script, list(args), home, label, env=env)


def ended(process: ClientProcess, timeout: float = 60) -> list[Event]:
    """The events of a script run to its end; it must exit 0."""
    code, events = run_to_end(process, timeout)
    assert code == 0, f"{process.label} exited {code}: {process.diagnostics()}"
    return events


def read_natively(
    cluster: Cluster, topic: str, group: str, count: int, seconds: float = 20
) -> list:
    """Up to ``count`` messages of ``topic`` read by actormq's own consumer (a new group, from
    the first offset), ``seconds`` at most."""
    consumer = PullConsumer(group, cluster.namesrv, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(topic)
    out: list = []
    with consumer:
        deadline = time.monotonic() + seconds
        while len(out) < count and time.monotonic() < deadline:
            out.extend(consumer.poll(timeout=1.0))
    return out


def native_producer_to_simple_consumer(
    client: Client, cluster: Cluster, tmp: pathlib.Path, script: str, name: str, keys: int
) -> list[Event]:
    """The scenario both gRPC clients run: 4 messages from actormq's producer (2 tagged TagB,
    each with ``keys`` keys and a property), the client's SimpleConsumer (``script``) receives
    TagB through the proxy and acks. Checks what both clients must show; returns the
    received events for the caller's own checks."""
    topic = make_topic(cluster, f"NativeTo{name}")
    group = f"{name.lower()}_simple"
    # Given a topic holding 4 messages from actormq's producer, 2 of them tagged TagB
    with Producer(f"native_to_{name.lower()}", cluster.namesrv) as producer:
        ids = [
            producer.send(
                Message(
                    topic,
                    f"n{i}".encode(),
                    tags="TagB" if i % 2 else "TagA",
                    keys=[f"key{i}", f"other{i}"][:keys],
                    properties={"i": str(i)},
                )
            ).msg_id
            for i in range(4)
        ]
    # When the SimpleConsumer receives TagB through the proxy and acks
    proxy = cluster.ready["proxy"]
    args = [proxy, group, topic, "--expect", "2", "--expression", "TagB"]
    events = ended(run_script(client, tmp, script, *args))
    # Then it got exactly the TagB ones, fields intact, first delivery, digest checked
    received = [e for e in events if e["event"] == "received"]
    assert sorted(e["body"] for e in received) == ["n1", "n3"]
    assert {e["message_id"] for e in received} == {ids[1], ids[3]}
    assert all(e["tag"] == "TagB" and e["attempt"] == 1 for e in received)
    assert all(e["corrupted"] is False for e in received)
    assert all(e["properties"] == {"i": e["body"][1:]} for e in received)
    # And the group's offsets reach the end of every queue (acked: nothing held back)
    with Admin(cluster.namesrv) as admin:
        deadline = time.monotonic() + 20
        while True:
            progress = admin.consume_stats(group, topic)
            if progress and all(p.consumer_offset == p.broker_offset for p in progress):
                break
            assert time.monotonic() < deadline, f"offsets held back: {progress}"
            time.sleep(0.5)
    return received


def priorities_stored_and_received(
    client: Client, cluster: Cluster, tmp: pathlib.Path, name: str, ext: str
) -> None:
    """A PRIORITY topic ``name``; the client's ``producer<ext>`` sends priorities 3, 1, 2, 0:
    each is stored in its priority's queue with its priority property, and the client's
    ``simple_consumer<ext>`` receives each with its priority."""
    topic = make_topic(cluster, name, attributes="+message.type=PRIORITY")
    proxy = cluster.ready["proxy"]
    args = (proxy, topic, "4", "--priorities", "3,1,2,0")
    events = ended(run_script(client, tmp, f"producer{ext}", *args))
    assert len([e for e in events if e["event"] == "sent"]) == 4
    got = read_natively(cluster, topic, f"native_reads_{name.lower()}", 4)
    stored = {m.body: (m.queue_id, m.properties["_SYS_MSG_PRIORITY_"]) for m in got}
    want = {b"body-0": 3, b"body-1": 1, b"body-2": 2, b"body-3": 0}
    assert stored == {body: (p, str(p)) for body, p in want.items()}
    group = f"{name.lower()}_group"
    received = ended(
        run_script(client, tmp, f"simple_consumer{ext}", proxy, group, topic, "--expect", "4")
    )
    priorities = {e["body"]: e["priority"] for e in received if e["event"] == "received"}
    assert priorities == {body.decode(): p for body, p in want.items()}


def tls_environment(cluster: Cluster, tmp: pathlib.Path) -> dict[str, str]:
    """A gRPC script's environment for TLS to the cluster's proxy, trusting the certificate
    it presents (made at its start): read off the port into a file grpc reads."""
    host, port = cluster.ready["proxy"].rsplit(":", 1)
    roots = tmp / "proxy.pem"
    roots.write_text(ssl.get_server_certificate((host, int(port))))
    return {"ACTORMQ_TLS": "1", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(roots)}


def sent_over_tls(
    client: Client, cluster: Cluster, tmp: pathlib.Path, name: str, ext: str
) -> tuple[str, dict[str, str]]:
    """(topic, TLS environment): a topic ``name`` made, the client's ``producer<ext>`` run
    over TLS to the proxy's default port, its 3 messages sent."""
    topic = make_topic(cluster, name)
    tls = tls_environment(cluster, tmp)
    proxy = cluster.ready["proxy"]
    events = ended(run_script(client, tmp, f"producer{ext}", proxy, topic, "3", env=tls))
    assert len([e for e in events if e["event"] == "sent"]) == 3
    return topic, tls


LITE_WANTED = {"chat-1:0", "chat-1:3", "chat-1:6", "chat-2:1", "chat-2:4", "chat-2:7"}
"""What a lite consumer of chat-1 and chat-2 gets of ``lite_messages_consumed_in_order``'s."""


def lite_messages_consumed_in_order(
    client: Client, tmp: pathlib.Path, ext: str, topic: str, consumer: ClientProcess, proxy: str
) -> list[Event]:
    """The client's ``producer<ext>`` sends 9 lite messages of ``topic`` over chat-1, chat-2
    and chat-3 (bodies ``<lite>:<i>``); ``consumer``, a lite consumer of chat-1 and chat-2,
    consumes its six (``LITE_WANTED``), each lite topic in order, none of chat-3. Its
    ``consumed`` events."""
    args = (proxy, topic, "9", "--lite", "chat-1,chat-2,chat-3", "--body-prefix", "")
    sent = ended(run_script(client, tmp, f"producer{ext}", *args))
    assert len([e for e in sent if e["event"] == "sent"]) == 9
    consumer.wait_until(
        lambda evs: {e["body"] for e in evs if e["event"] == "consumed"} >= LITE_WANTED,
        timeout=40,
        what="both lite topics consumed",
    )
    consumed = consumer.events("consumed")
    for lite in ("chat-1", "chat-2"):
        mine = [e["body"] for e in consumed if e["lite_topic"] == lite]
        assert mine == sorted(b for b in LITE_WANTED if b.startswith(lite)), consumed
    assert not [e for e in consumed if e["lite_topic"] == "chat-3"]
    return consumed
