"""actors/proxy/telemetry.py: a telemetry stream must send Settings in time, and what waits to
be written to it is bounded (``actors.proxy.outbox``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from actors.proxy import telemetry as telemetry_module
from actors.proxy.proto import ClientType, Code, M
from actors.proxy.settings import ProxySettings
from actors.proxy.telemetry import Telemetry
from tests.client_support import wait_until

pytestmark = pytest.mark.timeout(30)


class _Commands:
    """A client's side of the stream: what the test puts, until ``end()``."""

    def __init__(self) -> None:
        self.waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.read = threading.Event()
        """Set whenever the proxy waits for the next command with none left."""

    def put(self, command: Any) -> None:
        self.read.clear()
        self.waiting.put(command)

    def end(self) -> None:
        self.put(None)

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self.waiting.empty():
                self.read.set()
            command = self.waiting.get()
            if command is None:
                return
            yield command


def _settings(topic: str = "Orders") -> Any:
    command = M.TelemetryCommand()
    command.settings.client_type = ClientType.PRODUCER
    command.settings.publishing.topics.add().name = topic
    return command


def _telemetry() -> Telemetry:
    return Telemetry(ProxySettings(), lambda who, given: (False, 3), lambda exc: None)


def _next(stream: Iterator[Any], timeout: float = 5.0) -> Any:
    """The stream's next answer (StopIteration when it ended) within ``timeout`` seconds."""
    got: list[Any] = []
    done = threading.Event()

    def read() -> None:
        got.append(next(stream, StopIteration))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), "no answer in time"
    return got[0]


def test_a_stream_without_settings_in_time_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry_module, "SETTINGS_TIMEOUT_S", 0.3)
    telemetry = _telemetry()
    # Given a stream whose client sends nothing
    silent = _Commands()
    stream = telemetry.serve(iter(silent), "hog", None)
    # When the settings timeout passes, Then the proxy answers BAD_REQUEST and ends it
    answer = _next(stream)
    assert answer.status.code == Code.BAD_REQUEST and "no Settings" in answer.status.message
    assert _next(stream) is StopIteration
    assert telemetry.streams == {}
    silent.end()
    # And a stream that sent its Settings stays open past it
    talking = _Commands()
    open_stream = telemetry.serve(iter(talking), "client", None)
    talking.put(_settings())
    assert _next(open_stream).HasField("settings")
    with pytest.raises(AssertionError, match="no answer in time"):
        _next(open_stream, timeout=0.6)
    talking.end()


def test_answers_a_client_does_not_read_are_not_kept() -> None:
    telemetry = _telemetry()
    # Given a client that writes 10,000 Settings and reads only the first answer meanwhile
    commands = _Commands()
    stream = telemetry.serve(iter(commands), "flood", None)
    for n in range(10_000):
        commands.put(_settings(f"T{n}"))
    assert _next(stream).HasField("settings")
    assert commands.read.wait(20), "the proxy read every Settings"
    # When it reads again, Then it gets one answer, to its latest Settings, and nothing more
    # waits (each answer kept, 10,000 Settings a second made ~150 MB a minute)
    (state,) = telemetry.streams.values()
    assert len(state.outbox) == 1
    assert _next(stream).HasField("settings")
    assert len(state.outbox) == 0 and state.outbox.replaced >= 9_000
    # And once the client cancels the stream, the proxy holds nothing of it
    stream.close()
    commands.end()
    wait_until(lambda: telemetry.streams == {}, timeout=5, what="the stream dropped")


def test_settings_that_take_long_to_apply_are_answered_not_timed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry_module, "SETTINGS_TIMEOUT_S", 0.3)
    entered, applying = threading.Event(), threading.Event()

    def slow_apply(who: Any, given: Any) -> Any:
        entered.set()
        applying.wait(5)  # (a broker slow to answer the group's config)
        return False, 3

    telemetry = Telemetry(ProxySettings(), slow_apply, lambda exc: None)
    commands = _Commands()
    stream = telemetry.serve(iter(commands), "slow", None)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(next(stream)), daemon=True)
    reader.start()
    # Given Settings sent in time, whose applying outlasts the timeout
    commands.put(_settings())
    assert entered.wait(5)
    reader.join(0.6)
    assert not got  # (not "no Settings within 0.3 s")
    # When it is applied, Then the client gets the answer
    applying.set()
    reader.join(5)
    assert got and got[0].HasField("settings")
    commands.end()


def test_a_late_repeat_never_replaces_a_newer_answer() -> None:
    from actors.proxy.outbox import Outbox

    box = Outbox()
    first, newer = M.TelemetryCommand(), M.TelemetryCommand()
    first.status.message, newer.status.message = "first", "newer"
    box.answer(first)
    assert box.get(timeout=1) is first
    # When newer Settings were answered before the repeat of the first came
    box.answer(newer)
    box.repeat(first)
    # Then only the newer answer is written
    assert box.get(timeout=1) is newer
    with pytest.raises(TimeoutError):
        box.get(timeout=0.05)
    # And a repeat with nothing newer is written again
    box.repeat(newer)
    assert box.get(timeout=1) is newer


class _Call:
    """A gRPC call's context: active until cancelled."""

    def __init__(self) -> None:
        self.active = True
        self.code: Any = None
        self.details = ""

    def is_active(self) -> bool:
        return self.active

    def set_code(self, code: Any) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return []

    def peer(self) -> str:
        return "ipv4:10.0.0.1:1"


def _errors_logged() -> tuple[list[Any], int]:
    records: list[Any] = []
    sink = logger.add(lambda m: records.append(m.record), level="ERROR", format="{message}")
    return records, sink


def test_a_fault_applying_settings_is_logged_as_an_error_with_its_traceback() -> None:
    def broken(who: str, given: Any) -> tuple[bool, int]:
        raise RuntimeError("boom")

    telemetry = Telemetry(ProxySettings(), broken, lambda exc: None)
    records, sink = _errors_logged()
    try:
        commands = _Commands()
        stream = telemetry.serve(iter(commands), "client-1", _Call())
        commands.put(_settings())
        assert _next(stream) is StopIteration  # (the stream ends, as before)
        # before: logged at DEBUG only, as "cancelled or reset"
        (record,) = records
        assert "client-1" in record["message"] and "boom" in record["message"]
        assert record["exception"] is not None and record["exception"].type is RuntimeError
    finally:
        logger.remove(sink)
        commands.end()


class _Cancelled(Exception):
    """What grpcio's request iterator raises once the call was cancelled (an RpcError)."""


def test_a_cancelled_stream_is_not_logged_as_an_error() -> None:
    call = _Call()

    def cancelled() -> Iterator[Any]:
        yield _settings()
        call.active = False
        raise _Cancelled()

    records, sink = _errors_logged()
    try:
        stream = _telemetry().serve(cancelled(), "client-2", call)
        assert _next(stream).HasField("settings")
        assert _next(stream) is StopIteration
        assert records == []
    finally:
        logger.remove(sink)
