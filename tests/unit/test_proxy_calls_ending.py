"""actors/proxy: how a call ends, driven with a real gRPC client over a real socket against the
proxy's handlers (``server.method_handlers``) over a ProxyService whose clients never start,
its group a PopGroup over a (fake) consumer that waits as a real one does."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from actors.client.message import MessageExt
from actors.proxy.pop import PopGroup
from actors.proxy.proto import ClientType, Code, FilterType, M
from actors.proxy.server import SERVICE, Guard, method_handlers
from actors.proxy.service import ProxyService
from tests.client_support import wait_until
from tests.unit.test_proxy_pop import FakeClock, FakeConsumer, _msg

pytestmark = pytest.mark.timeout(60)


class WaitingConsumer(FakeConsumer):
    """A consumer whose ``poll`` waits (real time) for a message or a ``wakeup``, as a
    PullConsumer's does; ``polling`` is set while one waits. ``on_wakeup``: a message that
    arrives with the next wakeup (one the broker delivered just as the receive was cancelled)."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.changed = threading.Condition()
        self.polling = threading.Event()
        self.on_wakeup: MessageExt | None = None

    def poll(self, timeout: float, max_messages: int) -> list[MessageExt]:
        with self.changed:
            woken = self.wakeups
            self.polling.set()
            self.changed.wait_for(lambda: self.queued or self.wakeups != woken, timeout)
            self.polling.clear()
            out: list[MessageExt] = []
            while self.queued and len(out) < max_messages:
                out.append(self.queued.popleft())
            return out

    def wakeup(self) -> None:
        with self.changed:
            self.wakeups += 1
            if self.on_wakeup is not None:
                self.queued.append(self.on_wakeup)
                self.on_wakeup = None
            self.changed.notify_all()


class Proxy:
    """The proxy's gRPC handlers on a loopback port, and a channel to them."""

    def __init__(self, service: ProxyService) -> None:
        self.guard = Guard()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        handlers = method_handlers(service, self.guard)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.receive = self.channel.unary_stream(
            f"/{SERVICE}/ReceiveMessage",
            request_serializer=M.ReceiveMessageRequest.SerializeToString,
            response_deserializer=M.ReceiveMessageResponse.FromString,
        )
        self.telemetry = self.channel.stream_stream(
            f"/{SERVICE}/Telemetry",
            request_serializer=M.TelemetryCommand.SerializeToString,
            response_deserializer=M.TelemetryCommand.FromString,
        )

    def close(self) -> None:
        self.channel.close()
        self.server.stop(grace=0).wait(5)


@pytest.fixture
def service() -> Iterator[ProxyService]:
    proxy = ProxyService("127.0.0.1:1", ("127.0.0.1", 1))
    proxy.topic_types = SimpleNamespace(of=lambda topic, strict=False: "NORMAL")  # type: ignore[assignment]
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(service: ProxyService) -> Iterator[Proxy]:
    served = Proxy(service)
    yield served
    served.close()


def _receive_request(wait_s: int) -> Any:
    request = M.ReceiveMessageRequest()
    request.group.name = "G"
    request.message_queue.topic.name = "T"
    request.filter_expression.type = FilterType.TAG
    request.filter_expression.expression = "*"
    request.batch_size = 4
    request.invisible_duration.seconds = 60
    request.long_polling_timeout.seconds = wait_s
    return request


def test_a_receive_its_client_cancels_ends_at_once_and_loses_nothing(
    service: ProxyService, proxy: Proxy
) -> None:
    consumer = WaitingConsumer()
    pop = PopGroup("G", consumer)  # type: ignore[arg-type]
    pop.subscribe("T", "*")
    service.groups["G"] = pop
    # Given a receive long-polling for 20 s, waiting in its group's poll
    call = proxy.receive(_receive_request(20), timeout=30)
    assert consumer.polling.wait(10), "the receive never polled"
    assert proxy.guard.held == 1
    # When its client cancels it, just as a message comes (the poll that ends takes it)
    consumer.on_wakeup = _msg(7)
    call.cancel()
    # Then the receive ends at once (before: it waited out its 20 s, holding a worker and a
    # place among the proxy's held calls)
    wait_until(lambda: proxy.guard.held == 0, timeout=3, what="the receive ended")
    assert consumer.wakeups >= 1 and consumer.on_wakeup is None
    # And the message it took is visible again at once: the next receive gets it
    answer = list(proxy.receive(_receive_request(5), timeout=10))
    assert answer[0].status.code == Code.OK
    (message,) = [r.message for r in answer if r.WhichOneof("content") == "message"]
    assert message.system_properties.queue_offset == 7


def test_a_lite_receive_waiting_for_its_first_lite_topic_ends_with_its_call() -> None:
    from actors.proxy.lite_groups import LiteGroups
    from actors.proxy.lite_subscriptions import LiteSubscriptions

    lites = LiteGroups(LiteSubscriptions(), dict, None)  # type: ignore[arg-type]
    ended = threading.Event()
    got: list[list[str]] = []
    # Given a lite client's receive waiting 20 s for its first lite topic
    waiting = threading.Thread(
        target=lambda: got.append(lites.receive_topics("G", "lite-1", 20.0, ended.is_set)),
        daemon=True,
    )
    waiting.start()
    # When its call ends (``_CallEnd`` marks it ended, then wakes the waits)
    ended.set()
    lites.wake()
    # Then it stops waiting at once, with no topic
    waiting.join(3)
    assert not waiting.is_alive() and got == [[]]


def _settings_command() -> Any:
    command = M.TelemetryCommand()
    command.settings.client_type = ClientType.PRODUCER
    command.settings.publishing.topics.add().name = "Orders"
    return command


def _telemetry_ends(proxy: Proxy) -> grpc.RpcError:
    """How a telemetry stream that sent one Settings ends (its client keeps it open)."""
    hold = threading.Event()

    def commands() -> Iterator[Any]:
        yield _settings_command()
        hold.wait(10)

    try:
        with pytest.raises(grpc.RpcError) as ended:
            for _ in proxy.telemetry(commands(), timeout=10):
                pass
    finally:
        hold.set()
    return ended.value


def test_a_telemetry_stream_a_fault_ends_gets_grpcs_status_internal(
    service: ProxyService, proxy: Proxy
) -> None:
    # Given a proxy whose applying of a client's Settings fails (a fault of its own)
    def broken(who: str, given: Any) -> tuple[bool, int]:
        raise RuntimeError("boom")

    service.telemetry_streams.apply = broken
    # When a client's telemetry stream sends its Settings
    ended = _telemetry_ends(proxy)
    # Then the stream ends with gRPC's status INTERNAL and what failed (before: OK, as if the
    # proxy had closed it on purpose)
    assert ended.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError: boom" in (ended.details() or "")


def test_a_telemetry_call_that_fails_outright_gets_grpcs_status_internal(
    service: ProxyService, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a proxy whose telemetry call itself fails
    def broken(commands: Any, who: str, context: Any) -> Iterator[Any]:
        raise RuntimeError("no stream")

    monkeypatch.setattr(service.telemetry_streams, "serve", broken)
    # When a client opens a stream, Then it ends with INTERNAL, not a status command and OK
    ended = _telemetry_ends(proxy)
    assert ended.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError: no stream" in (ended.details() or "")
