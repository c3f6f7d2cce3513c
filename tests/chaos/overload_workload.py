"""Workload pieces of R23 (overload / slow consumer), beside ``workload``'s.

- Bodies are large (``body_of``: the value, a newline, then padding up to the size asked), so
  the broker's memory shows what it holds; readers take the value back with ``value_of``.
- ``AsyncProducer``: one writer ``p<n>`` sending as fast as it may: ``send_async`` with up to
  ``window`` sends in flight (a new one as soon as one completes), ``retries=0`` (one invoke,
  one request), compression off (the padding must reach the broker). Every invoke and
  completion is recorded as ``ProducerThread`` records them; a SYSTEM_BUSY answer is a ``fail``
  with status ``SYSTEM_BUSY`` and the broker's remark in ``error``.
- ``FloodProducer``: a raw connection that writes a burst of sends at once, more than the
  broker lets one connection have in flight (``runtime.in_flight.MAX_IN_FLIGHT``), and reads
  the answers as they come: what the broker refuses must be refused SYSTEM_BUSY and never
  stored (how many it refuses depends on how fast it serves the burst while reading it).
- ``SlowConsumer``: an in-process push consumer whose listener records each message and then,
  until ``speed_up()``, waits ``delay`` seconds per message (the slow consumer is the workload:
  an ``Event.wait`` with a timeout that returns at once after ``speed_up``); each read carries
  the message's store timestamp (``data["store"]``, ms). Small client caches
  (``max_cached_messages`` / ``max_cached_bytes`` per queue), so its flow control pauses
  pulling while the backlog grows on the broker.
- ``SlowReader``: a raw connection that sends a burst of requests and reads nothing until
  ``collect()``: long polls the broker parks, PULLs whose answers fill the socket buffers,
  then sends, more in all than the broker lets one connection have in flight
  (``runtime.in_flight.MAX_IN_FLIGHT``). ``collect`` reads every answer, records the sends'
  completions and counts the answers by code (and SYSTEM_BUSY by remark).
- ``ProbeProcess``: ``overload_probe`` as a subprocess; its lines become ``probe`` events.
- ``RssSampler``: the broker process's VmRSS / RssAnon / VmHWM from ``/proc/<pid>/status`` every
  ``interval``, as ``rss`` events (MiB).
- ``drain_all``: wait until the group has read every acked value and every queue up to its max
  offset.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.client import (
    ConsumeFrom,
    ConsumeResult,
    Message,
    MessageExt,
    PushConsumer,
)
from actors.client.message import SendStatus
from actors.client.send_answer import STATUS_BY_CODE
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import FrameDecoder, encode
from tests.chaos import admin
from tests.chaos.history import (
    History,
    Outcome,
    Read,
    classify_error,
    classify_result,
    queue_key,
)
from tests.chaos.workload import chaos_producer, store_address
from tests.harness import REPO
from tests.wire import send_v2_header

MIB = 1024 * 1024
SEPARATOR = b"\n"


def body_of(value: str, size: int) -> bytes:
    """``value``, a newline, then padding: ``size`` bytes in all (at least the value's)."""
    head = value.encode() + SEPARATOR
    return head + b"." * max(0, size - len(head))


def value_of(body: bytes) -> str:
    """The value a ``body_of`` body carries."""
    return body.split(SEPARATOR, 1)[0].decode(errors="replace")


# -- producers -------------------------------------------------------------------------------


class AsyncProducer:
    """One writer with up to ``window`` async sends in flight; see the module docstring."""

    def __init__(
        self,
        history: History,
        namesrv: str,
        topic: str,
        name: str,
        *,
        window: int,
        size_of: Callable[[int], int],
        send_timeout: float = 3.0,
    ) -> None:
        self.history = history
        self.topic = topic
        self.name = name
        self.window = window
        self.size_of = size_of
        self.send_timeout = send_timeout
        self.counter = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent_bytes = 0
        self.cond = threading.Condition()
        self.stopped = threading.Event()
        # the client's own window as wide as this one: ``window`` sends reach the broker at once
        # (its default, 128 since 2026-11-23, would hold the rest back in ``send_async``)
        self.producer = chaos_producer(
            namesrv,
            name,
            send_timeout,
            compress_over=-1,
            max_async_sends=window,
            max_async_bytes=window * 64 * 1024,
        )
        self.thread = threading.Thread(target=self._loop, name=f"producer-{name}", daemon=True)

    def start(self) -> AsyncProducer:
        self.producer.start()
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stopped.is_set():
            with self.cond:
                # a free slot in the window, or the stop (both notify)
                self.cond.wait_for(
                    lambda: self.in_flight < self.window or self.stopped.is_set(), 1.0
                )
                if self.stopped.is_set() or self.in_flight >= self.window:
                    continue
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._send_one()

    def _send_one(self) -> None:
        value = f"{self.name}-{self.counter}"
        body = body_of(value, self.size_of(self.counter))
        self.counter += 1
        self.sent_bytes += len(body)
        op = self.history.invoke_send(self.name, value)

        def done(result: Any, error: BaseException | None) -> None:
            self._complete(op, value, result, error)

        try:
            self.producer.send_async(Message(self.topic, body), done, timeout=self.send_timeout)
        except Exception as exc:  # refused before it left (e.g. the client stopped)
            self._complete(op, value, None, exc)

    def _complete(self, op: int, value: str, result: Any, error: BaseException | None) -> None:
        try:
            if error is not None:
                self.history.complete_send(self.name, op, value, classify_error(error))
            else:
                mq = result.queue
                self.history.complete_send(
                    self.name,
                    op,
                    value,
                    classify_result(result),
                    queue=queue_key(mq.topic, mq.broker_name, mq.queue_id),
                    offset=result.queue_offset,
                    broker=store_address(result.offset_msg_id) or mq.broker_name,
                )
        finally:
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def stop(self) -> bool:
        """Stop sending and wait until every send in flight completed (each within its
        timeout, which the client enforces); False if some did not within timeout + 10 s."""
        self.stopped.set()
        with self.cond:
            self.cond.notify_all()
        self.thread.join(self.send_timeout + 10)
        with self.cond:
            return self.cond.wait_for(lambda: self.in_flight == 0, self.send_timeout + 10)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            self.producer.shutdown()


class FloodProducer:
    """A producer that pipelines a burst of sends on one connection, more than the broker lets
    one connection have in flight (RocketMQ's Java producer has no async limit by default).

    ``flood(n)`` records ``n`` invokes (values ``<name>-<counter>``, bodies of ``size`` bytes,
    round robin over ``queues`` queues), writes all their SEND_MESSAGE_V2 frames at once, and
    a reader thread completes each send from its answer: SUCCESS -> ok, a stored status
    (FLUSH_*, SLAVE_NOT_AVAILABLE) -> info, any other code -> fail with the code's name and the
    remark. A send unanswered after ``send_timeout`` is completed as ``info`` CLIENT_TIMEOUT,
    as a client would give up on it (its late answer is only counted: ``late``). Times are the
    client's, not this test process's: invokes when the burst is written, answers when read
    off the socket, timeouts at their deadline."""

    def __init__(
        self,
        history: History,
        broker: str,
        topic: str,
        name: str,
        *,
        broker_name: str,
        queues: int,
        size: int,
        send_timeout: float = 3.0,
    ) -> None:
        self.history = history
        self.broker = broker
        self.broker_name = broker_name
        self.topic = topic
        self.name = name
        self.queues = queues
        self.size = size
        self.send_timeout = send_timeout
        self.counter = 0
        self.late = 0
        self.pending: dict[int, tuple[int, str, float]] = {}  # opaque -> (op, value, invoked)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sock = socket.create_connection(admin.split_address(broker), timeout=30.0)
        self.thread: threading.Thread | None = None

    def flood(self, n: int) -> int:
        """Send ``n`` sends in one burst; returns the bytes written. The frames are built
        first and the sends invoked together right before the burst is written (their timeout
        counts from then, as a client's from its write)."""
        frames = []
        sends: list[tuple[int, str]] = []  # (opaque, value)
        for _ in range(n):
            value = f"{self.name}-{self.counter}"
            queue_id = self.counter % self.queues
            self.counter += 1
            ext = send_v2_header(self.topic, group="chaos-flood", queue_id=queue_id)
            cmd = RemotingCommand.request(
                RequestCode.SEND_MESSAGE_V2, ext, body_of(value, self.size)
            )
            sends.append((cmd.opaque, value))
            frames.append(encode(cmd))
        data = b"".join(frames)
        ops, invoked = self.history.invoke_sends(self.name, [value for _, value in sends])
        with self.lock:
            for op, (opaque, value) in zip(ops, sends, strict=True):
                self.pending[opaque] = (op, value, invoked)
        self.thread = threading.Thread(target=self._read, name=f"flood-{self.name}", daemon=True)
        self.thread.start()
        self.sock.sendall(data)
        return len(data)

    def _read(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                # wait for answers at most 0.2 s; read what is there before expiring what
                # timed out, so an answer that arrived in time is not expired because this
                # thread was slow to read it (one read's worth at most). select, not
                # settimeout: the socket's timeout is shared with the writing thread.
                if select.select([self.sock], [], [], 0.2)[0]:
                    data = self.sock.recv(1 << 20)
                    if not data:
                        return
                    received = time.monotonic()
                    for cmd in decoder.feed(data):
                        if cmd.is_response:
                            self._answer(cmd, received)
                self._expire()
                with self.lock:
                    if not self.pending:
                        return
        except OSError:
            pass
        finally:
            with self.lock:
                left, self.pending = self.pending, {}
            for op, value, _ in left.values():
                outcome = Outcome("info", "CONNECTION_LOST", "flood connection closed")
                self.history.complete_send(self.name, op, value, outcome)
            self.done.set()

    def _expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            expired = [o for o, (_, _, t) in self.pending.items() if now - t > self.send_timeout]
            gone = [self.pending.pop(o) for o in expired]
        for op, value, invoked in gone:
            # completed when a client's timer would have fired, however late this thread
            # (sharing the GIL with the producers' client) got here
            outcome = Outcome("info", "CLIENT_TIMEOUT", f"no answer in {self.send_timeout}s")
            mono = invoked + self.send_timeout
            self.history.complete_send(self.name, op, value, outcome, mono=mono)

    def _answer(self, cmd: RemotingCommand, received: float) -> None:
        with self.lock:
            sent = self.pending.pop(cmd.opaque, None)
        if sent is None:
            self.late += 1
            return
        op, value, _ = sent
        record_send_answer(
            self.history, self.name, op, value, cmd, self.topic, self.broker_name, mono=received
        )

    def wait(self, timeout: float) -> bool:
        """Every send completed (answered or timed out); False after ``timeout``."""
        return self.done.wait(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.thread is not None:
            self.thread.join(5)


# -- the slow consumer -----------------------------------------------------------------------


class SlowConsumer:
    """A push consumer of the group, slow until ``speed_up()``; see the module docstring."""

    def __init__(
        self,
        history: History,
        namesrv: str,
        group: str,
        topic: str,
        name: str,
        *,
        delay: float,
        max_cached_messages: int = 64,
        max_cached_bytes: int = 4 * MIB,
    ) -> None:
        self.history = history
        self.group = group
        self.name = name
        self.delay = delay
        self.fast = threading.Event()
        self.consumer = PushConsumer(
            group,
            namesrv=namesrv,
            instance_name=name,
            consume_from=ConsumeFrom.FIRST,
            consume_threads=4,
            max_cached_messages=max_cached_messages,
            max_cached_bytes=max_cached_bytes,
            rebalance_interval=2.0,
            commit_interval=1.0,
            suspend_timeout=2.0,
            pull_error_delay=0.5,
            heartbeat_interval=2.0,
            route_refresh_interval=2.0,
        )
        self.consumer.subscribe(topic, "*", self.listener)

    def listener(self, msg: MessageExt) -> ConsumeResult:
        q = queue_key(msg.topic, msg.broker_name, msg.queue_id)
        read = Read(q, msg.queue_offset, value_of(msg.body))
        self.history.append(
            "ok",
            "read",
            self.name,
            group=self.group,
            mode="push",
            reads=[read],
            data={"store": msg.store_timestamp},
        )
        self.fast.wait(self.delay)  # the slow consumer (the workload), not synchronisation
        return ConsumeResult.CONSUME_SUCCESS

    def start(self) -> SlowConsumer:
        self.consumer.start()
        self.history.event("consumer-start", self.name, mode="push", delay=self.delay)
        return self

    def speed_up(self) -> None:
        self.fast.set()
        self.history.event("consumer-fast", self.name)

    def stop(self, timeout: float = 30.0) -> None:
        self.fast.set()
        self.consumer.shutdown(timeout)


# -- the slow reader -------------------------------------------------------------------------


class SlowReader:
    """A connection that sends a burst of requests and reads nothing until ``collect``.

    ``flood(parked, pulls, sends)`` writes, in this order: ``parked`` long-poll PULLs of queue 0
    of ``idle_topic``, which nobody writes to (the broker parks each up to 60 s: they stay in
    flight until ``wake()`` stores a message there); ``pulls`` PULLs of queue 0 of ``topic``
    from offset 0 (32 messages each: answers of ~1 MiB, which fill the socket buffers, the
    receive buffer made small, so the broker's writes to this connection block and every
    later answer waits behind them); then ``sends`` SEND_MESSAGE_V2 of ``size`` bytes (values
    ``<name>-<counter>``, round robin over ``queues``), recorded as invokes. With ``parked +
    pulls`` close to the broker's in-flight cap, the sends past it must be answered
    SYSTEM_BUSY (and never stored), whatever the timing. ``collect`` records each send's
    completion as it reads it (ok / info / fail, as ``FloodProducer``), long after its
    invoke: this client did not read."""

    def __init__(
        self,
        history: History,
        broker: str,
        topic: str,
        idle_topic: str,
        name: str,
        *,
        broker_name: str,
        queues: int,
        size: int,
        rcvbuf: int = 64 * 1024,
    ) -> None:
        self.history = history
        self.broker = broker
        self.topic = topic
        self.idle_topic = idle_topic
        self.name = name
        self.broker_name = broker_name
        self.queues = queues
        self.size = size
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: small
        sock.settimeout(10.0)
        sock.connect(admin.split_address(broker))
        self.sock = sock
        self.sent: dict[int, tuple[str, int, str]] = {}  # opaque -> (kind, op, value)
        self.counter = 0

    @staticmethod
    def _pull_ext(topic: str, suspend_ms: int) -> dict[str, Any]:
        return {
            "consumerGroup": "chaos-slow-reader",
            "topic": topic,
            "queueId": 0,
            "queueOffset": 0,
            "maxMsgNums": 32,
            "sysFlag": 4 | (2 if suspend_ms else 0),  # SUBSCRIPTION (+ SUSPEND: long poll)
            "commitOffset": 0,
            "suspendTimeoutMillis": suspend_ms,
            "subscription": "*",
            "subVersion": 0,
            "expressionType": "TAG",
        }

    def flood(self, parked: int, pulls: int, sends: int) -> int:
        """Send the burst (see the class docstring); returns the bytes written."""
        frames = []
        for kind, count, ext in (
            ("parked", parked, self._pull_ext(self.idle_topic, 60_000)),
            ("pull", pulls, self._pull_ext(self.topic, 0)),
        ):
            for _ in range(count):
                cmd = RemotingCommand.request(RequestCode.PULL_MESSAGE, ext)
                self.sent[cmd.opaque] = (kind, -1, "")
                frames.append(encode(cmd))
        for _ in range(sends):
            value = f"{self.name}-{self.counter}"
            ext = send_v2_header(
                self.topic, group="chaos-slow-reader", queue_id=self.counter % self.queues
            )
            self.counter += 1
            cmd = RemotingCommand.request(
                RequestCode.SEND_MESSAGE_V2, ext, body_of(value, self.size)
            )
            op = self.history.invoke_send(self.name, value)
            self.sent[cmd.opaque] = ("send", op, value)
            frames.append(encode(cmd))
        data = b"".join(frames)
        self.sock.sendall(data)
        return len(data)

    def wake(self) -> None:
        """Store one message in the idle topic: the parked pulls answer."""
        ext = send_v2_header(self.idle_topic, group="chaos-slow-reader", queue_id=0)
        cmd = admin.call(self.broker, RequestCode.SEND_MESSAGE_V2, ext, b"wake")
        if cmd.code != ResponseCode.SUCCESS:
            raise admin.AdminError(f"wake: code {cmd.code} {cmd.remark}")

    def collect(self, timeout: float) -> dict[str, Any]:
        """Read every answer (or until ``timeout``), recording the sends' completions; returns
        counts by request kind and code name, SYSTEM_BUSY answers by remark, the requests
        never answered (their sends are completed ``info``)."""
        decoder = FrameDecoder()
        waiting = dict(self.sent)
        codes: collections.Counter[str] = collections.Counter()
        busy: collections.Counter[str] = collections.Counter()
        received = 0
        deadline = time.monotonic() + timeout
        error = None
        try:
            while waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.sock.settimeout(remaining)
                data = self.sock.recv(1 << 20)
                if not data:
                    error = "closed by the broker"
                    break
                received += len(data)
                for cmd in decoder.feed(data):
                    sent = waiting.pop(cmd.opaque, None)
                    if not cmd.is_response or sent is None:
                        continue
                    kind, op, value = sent
                    codes[f"{kind}:{_code_name(cmd.code)}"] += 1
                    if cmd.code == ResponseCode.SYSTEM_BUSY:
                        busy[(cmd.remark or "")[:60]] += 1
                    if kind == "send":
                        record_send_answer(
                            self.history, self.name, op, value, cmd, self.topic, self.broker_name
                        )
        except OSError as exc:
            error = str(exc)
        for kind, op, value in waiting.values():
            if kind == "send":
                outcome = Outcome("info", "CONNECTION_LOST", f"no answer: {error or 'timeout'}")
                self.history.complete_send(self.name, op, value, outcome)
        return {
            "sent": len(self.sent),
            "answered": len(self.sent) - len(waiting),
            "unanswered": len(waiting),
            "codes": dict(sorted(codes.items())),
            "busy": dict(busy),
            "received_mib": round(received / MIB, 1),
            "error": error,
        }

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def record_send_answer(
    history: History,
    process: str,
    op: int,
    value: str,
    cmd: RemotingCommand,
    topic: str,
    broker_name: str,
    *,
    mono: float | None = None,
) -> None:
    """Complete a raw send from the broker's answer (read at ``mono``, now when None):
    SUCCESS -> ok, a stored status (FLUSH_*, SLAVE_NOT_AVAILABLE) -> info, any other code ->
    fail (the code's name, the remark)."""
    status = STATUS_BY_CODE.get(cmd.code)
    if status is None:
        outcome = Outcome("fail", _code_name(cmd.code), f"code {cmd.code}: {cmd.remark}")
        history.complete_send(process, op, value, outcome, mono=mono)
        return
    ext = cmd.ext_fields
    history.complete_send(
        process,
        op,
        value,
        Outcome("ok" if status is SendStatus.SEND_OK else "info", status.value),
        queue=queue_key(topic, broker_name, int(ext.get("queueId", -1))),
        offset=int(ext.get("queueOffset", -1)),
        broker=store_address(str(ext.get("msgId", ""))) or broker_name,
        mono=mono,
    )


def _code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"CODE_{code}"


# -- the probe and the RSS sampler -----------------------------------------------------------


class ProbeProcess:
    """``tests.chaos.overload_probe`` as a subprocess; each line a ``probe`` event."""

    def __init__(
        self, history: History, broker: str, topic: str, probe_topic: str, interval: float = 0.1
    ) -> None:
        self.history = history
        self.args = [
            sys.executable,
            "-m",
            "tests.chaos.overload_probe",
            "--broker",
            broker,
            "--topic",
            topic,
            "--probe-topic",
            probe_topic,
            "--interval",
            str(interval),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.ready = threading.Event()

    def start(self, timeout: float = 30.0) -> ProbeProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        proc = self.proc = subprocess.Popen(
            self.args,
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

        def pump_out() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.strip()
                if line == "ready":
                    self.ready.set()
                elif line.startswith("{"):
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        obj = json.loads(line)
                        mono = obj.pop("m")
                        obj.pop("t", None)
                        self.history.event("probe", "probe", mono=mono, **obj)
            self.ready.set()

        def pump_err() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr.append(line.rstrip("\n"))
                del self.stderr[:-100]

        self._pump = threading.Thread(target=pump_out, daemon=True)
        self._pump.start()
        threading.Thread(target=pump_err, daemon=True).start()
        if not self.ready.wait(timeout) or proc.poll() is not None:
            raise RuntimeError("probe did not start: " + "\n".join(self.stderr[-30:]))
        return self

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._pump.join(10)


def read_status(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of a process, in MiB (empty when it is gone)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[key] = round(int(rest.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return {}
    return out


class RssSampler:
    """The broker's memory every ``interval`` seconds, as ``rss`` events."""

    def __init__(self, history: History, pid: Callable[[], int | None], interval: float = 0.1):
        self.history = history
        self.pid = pid
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self.thread.start()
        return self

    def sample(self) -> dict[str, float]:
        pid = self.pid()
        status = read_status(pid) if pid is not None else {}
        if status:
            self.history.event("rss", "rss", pid=pid, **status)
        return status

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):  # the sampling rate
            self.sample()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)


# -- drain and verify --------------------------------------------------------------------------


def drain_all(
    history: History,
    group: str,
    max_offsets: Callable[[], dict[str, int]],
    timeout: float,
    tick: float = 0.25,
) -> bool:
    """Wait until ``group`` read every acked value and, in every queue, every offset below the
    queue's max offset (everything stored, acked or not); the count still unread is recorded
    each tick (``drain`` events). Each tick reads only the history entries added since the
    previous one."""
    deadline = time.monotonic() + timeout
    ends = max_offsets()
    tick_event = threading.Event()
    acked: set[str] = set()
    read: set[str] = set()
    offsets: dict[str, set[int]] = collections.defaultdict(set)
    seen = 0
    while True:
        entries = history.snapshot()
        for e in entries[seen:]:
            if e.f == "send" and e.type == "ok" and e.value:
                acked.add(e.value)
            elif e.type == "ok" and e.group == group and e.reads:
                for r in e.reads:
                    read.add(r.value)
                    offsets[r.queue].add(r.offset)
        seen = len(entries)
        unseen = acked - read
        behind = {q: end - len(offsets[q]) for q, end in ends.items() if len(offsets[q]) < end}
        history.event("drain", "workload", group=group, unseen=len(unseen), behind=behind)
        if not unseen and not behind:
            return True
        if time.monotonic() > deadline:
            history.event("drain-timeout", "workload", group=group, sample=sorted(unseen)[:20])
            return False
        tick_event.wait(tick)  # re-reading the history, not synchronisation


def busy_kinds(entries: list[Any]) -> dict[str, int]:
    """SYSTEM_BUSY send completions by the broker's remark (the text after the code)."""
    out: collections.Counter[str] = collections.Counter()
    for e in entries:
        if e.f == "send" and e.type == "fail" and e.status == "SYSTEM_BUSY":
            remark = (e.error or "").partition("code 2:")[2].strip()
            out[remark[:60] or "?"] += 1
    return dict(out)
