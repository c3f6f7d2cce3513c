"""A gRPC producer's send to a system topic is refused by the proxy as RocketMQ 5's proxy
refuses it (ILLEGAL_TOPIC "cannot access system topic"), and nothing is stored. A hostile-input
probe sent 1,000 messages to SCHEDULE_TOPIC_XXXX without REAL_TOPIC through the proxy: each was
put back into that topic every second, forever."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import pytest

from actors.client import Admin
from actors.proxy.proto import Code, M
from runtime.remoting.codes import RequestCode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.integration.test_proxy import TOPIC, Stub, _message, _routed
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[tuple[Stub, WireClient]]:
    """A cluster (name server + one broker), a proxy process over it, and a remoting client
    of the broker."""
    cluster_args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess(cluster_args) as cluster:
        addresses = cluster.wait_ready(timeout=30)
        namesrv = addresses["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=4)
            wait_until(lambda: _routed(admin, TOPIC), what=f"{TOPIC} routed")
        args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports"]
        with RuntimeProcess(args) as process:
            stub = Stub(process.wait_ready(timeout=30)["proxy"])
            broker = WireClient(addresses["broker-a/0"])
            try:
                yield stub, broker
            finally:
                broker.close()
                stub.channel.close()


def _stored(broker: WireClient, topic: str, queues: int) -> int:
    total = 0
    for queue_id in range(queues):
        got = broker.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": queue_id})
        total += int(got.ext_fields.get("offset", 0)) if got.code == 0 else 0
    return total


def test_a_send_to_a_system_topic_is_refused_and_nothing_is_stored(
    proxy: tuple[Stub, WireClient],
) -> None:
    stub, broker = proxy
    for topic in (
        "SCHEDULE_TOPIC_XXXX",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "TBW102",
        "rmq_sys_wheel_timer",
    ):
        # When a gRPC producer sends 50 messages to a system topic in one request
        request = M.SendMessageRequest()
        for i in range(50):
            request.messages.append(_message(b"loop", f"{i:016X}"))
            request.messages[-1].topic.name = topic
        got = stub.unary("SendMessage", request, M.SendMessageResponse)
        # Then each is refused as RocketMQ 5's proxy refuses it
        assert got.status.code == Code.ILLEGAL_TOPIC, (topic, got.status.message)
        assert got.status.message == "cannot access system topic"
        assert {e.status.code for e in got.entries} == {Code.ILLEGAL_TOPIC}
    # And nothing reached the broker's own topics, nor comes round again
    time.sleep(1.5)
    assert _stored(broker, "SCHEDULE_TOPIC_XXXX", 18) == 0
    assert _stored(broker, "rmq_sys_wheel_timer", 1) == 0
    assert _stored(broker, "TBW102", 8) == 0
    # And an ordinary send is served
    ok = M.SendMessageRequest()
    ok.messages.append(_message(b"fine", "01FF"))
    assert stub.unary("SendMessage", ok, M.SendMessageResponse).status.code == Code.OK
