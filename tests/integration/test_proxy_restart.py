"""A proxy killed (SIGKILL) while messages are out loses none of them: the group's next proxy
hands out everything not acked (at least once), from the offsets the brokers keep."""

from __future__ import annotations

import pathlib
import signal

import pytest

from actors.client import Admin, Message, Producer
from actors.proxy.proto import Code, M
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration import test_proxy_topic_types as lite
from tests.integration.test_proxy import Stub, _message, _receive_request, _routed

pytestmark = pytest.mark.timeout(120)

TOPIC = "ProxyOrders"  # the names _receive_request uses
COUNT = 20


def _proxy(namesrv: str) -> RuntimeProcess:
    args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports", "--consume-from", "first"]
    return RuntimeProcess([*args, "--invisible", "30", "--long-polling", "1"])


def _receive_all(stub: Stub, want: set[bytes]) -> list:
    """Messages received (not acked) until every body of ``want`` came, or nothing more."""
    got: list = []
    while not want <= {m.body for m in got}:
        items = stub.receive(_receive_request(invisible_s=30, batch=32))
        fresh = [i.message for i in items if i.WhichOneof("content") == "message"]
        if not fresh:
            break
        got.extend(fresh)
    return got


def _ack(stub: Stub, messages: list) -> None:
    request = M.AckMessageRequest()
    request.group.name, request.topic.name = "proxy-billing", TOPIC
    for m in messages:
        entry = request.entries.add()
        entry.message_id = m.system_properties.message_id
        entry.receipt_handle = m.system_properties.receipt_handle
    assert stub.unary("AckMessage", request, M.AckMessageResponse).status.code == Code.OK


def test_a_killed_proxy_loses_no_unacked_message(tmp_path: pathlib.Path) -> None:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=4)
            wait_until(lambda: _routed(admin, TOPIC), what="routed")
        # Given 20 messages, all received through a proxy, the first 5 acked
        with Producer("restart-producer", namesrv) as producer:
            for i in range(COUNT):
                producer.send(Message(TOPIC, f"m{i:02d}".encode(), tags="paid"))
        with _proxy(namesrv) as first:
            stub = Stub(first.wait_ready(timeout=30)["proxy"])
            bodies = {f"m{i:02d}".encode() for i in range(COUNT)}
            received = _receive_all(stub, bodies)
            assert {m.body for m in received} == bodies
            acked = sorted(received, key=lambda m: m.body)[:5]
            _ack(stub, acked)
            # When the proxy is killed with 15 messages out, unacked
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            stub.channel.close()
        # Then a new proxy hands out every one of the 15 (and perhaps some acked ones again:
        # at least once), long before their 30 s invisible duration would have passed
        with _proxy(namesrv) as second:
            stub = Stub(second.wait_ready(timeout=30)["proxy"])
            unacked = bodies - {m.body for m in acked}
            again = _receive_all(stub, unacked)
            assert unacked <= {m.body for m in again}, sorted(unacked - {m.body for m in again})
            stub.channel.close()


def _send(stub: Stub, body: bytes, msg_id: str) -> int:
    request = M.SendMessageRequest()
    request.messages.append(_message(body, msg_id))
    return stub.unary("SendMessage", request, M.SendMessageResponse).status.code


def test_the_proxy_serves_on_after_its_broker_restarts(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "broker-a.properties"
    conf.write_text("brokerClusterName=ProxyCluster\nbrokerName=broker-a\nbrokerId=0\n")
    with RuntimeProcess(["namesrv", "--ephemeral-ports"]) as namesrv_process:
        namesrv = namesrv_process.wait_ready()["namesrv"]
        broker_args = ["broker", "-c", str(conf), "--namesrv-addr", namesrv, "--ephemeral-ports"]
        broker_args += ["--data-dir", str(tmp_path / "store")]
        broker = RuntimeProcess(broker_args)
        broker.wait_ready(timeout=30)
        with Admin(namesrv) as admin:
            wait_until(lambda: admin.cluster_info().broker_addr_table, what="registered")
            admin.create_topic(TOPIC, queues=2)
            wait_until(lambda: _routed(admin, TOPIC), what="routed")
        with _proxy(namesrv) as proxy:
            stub = Stub(proxy.wait_ready(timeout=30)["proxy"])
            # Given a message sent and received through the proxy
            assert _send(stub, b"before", "01B0") == Code.OK
            assert [m.body for m in _receive_all(stub, {b"before"})] == [b"before"]
            # When the broker restarts (on another port, its store kept)
            assert broker.terminate() == 0, broker.stderr_text()
            broker.__exit__(None, None, None)
            broker = RuntimeProcess(broker_args)
            broker.wait_ready(timeout=30)
            # Then the proxy's sends and receives find it again (its clients re-route)
            wait_until(lambda: _send(stub, b"after", "01A0") == Code.OK, timeout=60, what="send")
            # (the group's pulls resume after their error delay, 3 s)
            got: list = []
            wait_until(
                lambda: (
                    got.extend(_receive_all(stub, {b"after"})) or b"after" in {m.body for m in got}
                ),
                timeout=30,
                what="received after the restart",
            )
            stub.channel.close()
        assert broker.terminate() == 0, broker.stderr_text()
        broker.__exit__(None, None, None)


def test_a_killed_proxy_loses_no_lite_message_and_keeps_their_order(
    tmp_path: pathlib.Path,
) -> None:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(lite.PARENT, queues=2, attributes="+message.type=LITE")
            wait_until(lambda: _routed(admin, lite.PARENT), what="routed")
        # Given a lite consumer's lite topic of 5 messages through a proxy, the first acked and
        # the second out
        with _proxy(namesrv) as first:
            stub = Stub(first.wait_ready(timeout=30)["proxy"])
            lite._settings(stub, "agent-r")
            assert lite._sync(stub, "agent-r", 0, ["chat"]).status.code == Code.OK
            for i in range(5):
                sent = lite._send(stub, lite._lite_message(f"c{i}".encode(), "chat"))
                assert sent.status.code == Code.OK
            out = []
            wait_until(lambda: out.extend(lite._receive(stub, "agent-r", 1)) or out, what="c0")
            assert [m.body for m in out] == [b"c0"]
            lite._ack(stub, "agent-r", out)
            second_out = []
            wait_until(
                lambda: second_out.extend(lite._receive(stub, "agent-r", 1)) or second_out,
                what="c1",
            )
            assert [m.body for m in second_out] == [b"c1"]
            # When the proxy is killed
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            stub.channel.close()
        # Then the client's next proxy (its settings and whole set sent again, as the client
        # does every 30 s) hands out c1 .. c4, in order (c0 perhaps again first: at least once)
        with _proxy(namesrv) as second:
            stub = Stub(second.wait_ready(timeout=30)["proxy"])
            lite._settings(stub, "agent-r")
            assert lite._sync(stub, "agent-r", 2, ["chat"]).status.code == Code.OK
            got: list = []

            def more() -> bool:
                batch = lite._receive(stub, "agent-r")
                if batch:
                    lite._ack(stub, "agent-r", batch)
                got.extend(m.body for m in batch)
                return b"c4" in got

            wait_until(more, timeout=60, what="c4 again")
            assert [b for b in got if b != b"c0"] == [b"c1", b"c2", b"c3", b"c4"]
            stub.channel.close()
