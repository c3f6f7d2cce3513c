"""The chaos workload: producers, consumers, offset probes, the final drain and a verify read.

- ``ProducerThread``: one writer process ``p<n>``; sync sends of unique values
  ``"p<n>-<counter>"`` (monotonic counter, one attempt each: ``retries=0`` so an invoke is one
  request and its completion maps 1:1 to ok / fail / info), round robin over the topic's
  queues, paced at a target rate.
- Consumers of one group: ``InProcessConsumer`` (a thread here) or ``ConsumerProcess`` (a
  subprocess running ``tests.chaos.consumer_worker``, so a nemesis can kill -9 it), push or
  lite-pull mode, every observation recorded in the history.
- ``OffsetProbe``: reads the broker's stored offsets of the group now and then (``offsets``
  events) for the committed-skip checker.
- ``drain``: wait until the group has read every acked value (or a deadline), recording the
  unseen count over time; ``verify_read``: a fresh group reads every queue from offset 0 to
  its max offset, for contiguity and the total-queue check of what the broker holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.client import ConsumeFrom, Message, MessageQueue, Producer, PullConsumer
from runtime.store.msg_id import decode_offset_msg_id
from tests.chaos import admin, transport
from tests.chaos.consumer_worker import run_consumer
from tests.chaos.history import (
    History,
    Read,
    classify_error,
    classify_result,
    queue_key,
)
from tests.harness import REPO


def store_address(offset_msg_id: str) -> str | None:
    """The ``ip:port`` of the broker that stored a message, from its offset message id."""
    try:
        decoded = decode_offset_msg_id(offset_msg_id.split(",")[0])
    except Exception:
        return None
    return f"{decoded.ip}:{decoded.port}"


def chaos_producer(namesrv: str, name: str, send_timeout: float, **options: Any) -> Producer:
    """The harness's producer for process ``name``: no retries, sync or async (one invoke is one
    request), an instance of its own, heartbeats and route refreshes every 2 s (faults heal
    fast)."""
    return Producer(
        "chaos-producers",
        namesrv=namesrv,
        tls=transport.client_tls(),
        retries=0,
        async_retries=0,  # (send_async too: an invoke is one request, stored in invoke order)
        send_timeout=send_timeout,
        instance_name=f"chaos-{name}-{os.getpid()}",
        heartbeat_interval=2.0,
        route_refresh_interval=2.0,
        **options,
    )


def run_paced(stopped: threading.Event, interval: float, step: Callable[[], object]) -> None:
    """Call ``step`` every ``interval`` seconds (at once again when behind) until ``stopped``."""
    next_at = time.monotonic()
    while not stopped.is_set():
        step()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stopped.wait(delay)  # pacing, not synchronisation
        else:
            next_at = time.monotonic()


class ProducerThread:
    """One writer; see the module docstring."""

    def __init__(
        self,
        history: History,
        namesrv: str,
        topic: str,
        name: str,
        *,
        rate: float = 100.0,
        send_timeout: float = 3.0,
    ) -> None:
        self.history = history
        self.topic = topic
        self.name = name
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.send_timeout = send_timeout
        self.counter = 0
        self.stopped = threading.Event()
        self.producer = chaos_producer(namesrv, name, send_timeout)
        self.thread = threading.Thread(target=self._loop, name=f"producer-{name}", daemon=True)

    def start(self) -> ProducerThread:
        self.producer.start()
        self.thread.start()
        return self

    def send_one(self) -> str:
        """One send, recorded; returns the completion type."""
        value = f"{self.name}-{self.counter}"
        self.counter += 1
        op = self.history.invoke_send(self.name, value)
        try:
            result = self.producer.send(Message(self.topic, value), timeout=self.send_timeout)
        except Exception as exc:
            outcome = classify_error(exc)
            self.history.complete_send(self.name, op, value, outcome)
            return outcome.type
        outcome = classify_result(result)
        mq = result.queue
        self.history.complete_send(
            self.name,
            op,
            value,
            outcome,
            queue=queue_key(mq.topic, mq.broker_name, mq.queue_id),
            offset=result.queue_offset,
            broker=store_address(result.offset_msg_id) or mq.broker_name,
        )
        return outcome.type

    def _loop(self) -> None:
        run_paced(self.stopped, self.interval, self.send_one)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(self.send_timeout + 10)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            self.producer.shutdown()


def record_observation(
    history: History, process: str, group: str, mode: str, obj: dict[str, object]
) -> None:
    """Turn one consumer_worker observation into a history entry."""
    mono = obj.get("m")
    mono = float(mono) if isinstance(mono, int | float) else None
    kind = obj.get("t")
    if kind == "read":
        read = Read(str(obj["q"]), int(obj["o"]), str(obj["v"]))  # type: ignore[call-overload]
        history.reads(process, group, mode, [read], f="read", mono=mono)
    elif kind == "poll":
        reads = [Read(str(q), int(o), str(v)) for q, o, v in obj["reads"]]  # type: ignore[union-attr]
        history.reads(process, group, mode, reads, f="poll", mono=mono)
    elif kind == "assign":
        changed = {k: obj[k] for k in ("added", "removed", "queues") if k in obj}
        history.event("assign", process, mono=mono, **changed)
    else:
        history.event("consumer-note", process, what=str(obj.get("what")), mono=mono)


class InProcessConsumer:
    """A consumer of the group on a thread of the test process."""

    def __init__(
        self, history: History, namesrv: str, group: str, topic: str, name: str, mode: str
    ) -> None:
        self.name = name
        self.mode = mode
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

        def emit(obj: dict[str, object]) -> None:
            obj.setdefault("m", time.monotonic())
            record_observation(history, name, group, mode, obj)

        def body() -> None:
            try:
                run_consumer(
                    mode,
                    namesrv,
                    group,
                    topic,
                    name,
                    emit,
                    self.stop_event,
                    started=self.ready.set,
                )
            except BaseException as exc:
                self.error = exc
                self.ready.set()

        self.thread = threading.Thread(target=body, name=f"consumer-{name}", daemon=True)

    def start(self, timeout: float = 60.0) -> InProcessConsumer:
        self.thread.start()
        if not self.ready.wait(timeout):
            raise TimeoutError(f"consumer {self.name} did not start in {timeout}s")
        if self.error is not None:
            raise RuntimeError(f"consumer {self.name} failed to start") from self.error
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


class ConsumerProcess:
    """A consumer of the group in a subprocess; ``kill()`` is kill -9, ``restart()`` starts a
    new incarnation (a new history process ``<name>.<n>``)."""

    def __init__(
        self, history: History, namesrv: str, group: str, topic: str, name: str, mode: str
    ) -> None:
        self.history = history
        self.namesrv = namesrv
        self.group = group
        self.topic = topic
        self.base = name
        self.mode = mode
        self.incarnation = 0
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.base}.{self.incarnation}"

    def start(self, timeout: float = 60.0) -> ConsumerProcess:
        self.incarnation += 1
        name = self.name
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        proc = self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.consumer_worker",
                "--mode",
                self.mode,
                "--namesrv",
                self.namesrv,
                "--group",
                self.group,
                "--topic",
                self.topic,
                "--name",
                name,
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = threading.Event()
        assert proc.stdout is not None and proc.stderr is not None

        def pump_out() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.strip()
                if line == "ready":
                    ready.set()
                elif line.startswith("{"):
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        record_observation(
                            self.history, name, self.group, self.mode, json.loads(line)
                        )
            ready.set()

        def pump_err() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr.append(line.rstrip("\n"))
                del self.stderr[:-200]

        out_thread = threading.Thread(target=pump_out, daemon=True)
        out_thread.start()
        threading.Thread(target=pump_err, daemon=True).start()
        self._pump = out_thread
        if not ready.wait(timeout) or proc.poll() is not None:
            raise RuntimeError(f"consumer {name} did not start: " + "\n".join(self.stderr[-30:]))
        self.history.event("consumer-start", name, pid=proc.pid, mode=self.mode)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._pump.join(10)  # every line it printed is in the history now

    def stop(self, timeout: float = 60.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        self._pump.join(10)


class OffsetProbe:
    """Reads the group's stored offset of every queue from the broker every ``interval``."""

    def __init__(
        self,
        history: History,
        group: str,
        queues: list[MessageQueue],
        broker_address: Callable[[str], str | None],
        interval: float = 0.5,
    ) -> None:
        self.history = history
        self.group = group
        self.queues = queues
        self.broker_address = broker_address
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="offset-probe", daemon=True)

    def start(self) -> OffsetProbe:
        self.thread.start()
        return self

    def probe_once(self) -> None:
        for mq in self.queues:
            address = self.broker_address(mq.broker_name)
            if address is None:
                continue
            try:
                offset = admin.consumer_offset(
                    address, self.group, mq.topic, mq.queue_id, timeout=1.0
                )
            except admin.AdminError:
                continue
            # stamp the time the answer came: the stored offset was at most this by then
            self.history.event(
                "offsets",
                "probe",
                group=self.group,
                queue=queue_key(mq.topic, mq.broker_name, mq.queue_id),
                offset=offset,
                broker=address,
            )

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            self.probe_once()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)


def acked_values(history: History) -> set[str]:
    return {e.value for e in history.snapshot() if e.f == "send" and e.type == "ok" and e.value}


def read_values(history: History, group: str) -> set[str]:
    out: set[str] = set()
    for e in history.snapshot():
        if e.type == "ok" and e.group == group and e.reads:
            out.update(r.value for r in e.reads)
    return out


FAST_DRAIN_S = 2.0


def drain(history: History, group: str, timeout: float, tick: float = 1.0) -> bool:
    """Wait until ``group`` has read every acked value; record the unseen count each tick.

    Ticks are 50 ms for the first ``FAST_DRAIN_S`` seconds, then ``tick``: the group is usually
    a few records behind when the producers stop and catches up within a few hundred ms, which
    a first 1 s tick turned into a second of waiting in most scenarios; a long drain still
    ticks every ``tick``.
    """
    start = time.monotonic()
    deadline = start + timeout
    stop = threading.Event()
    while True:
        unseen = acked_values(history) - read_values(history, group)
        history.event("drain", "workload", group=group, unseen=len(unseen))
        if not unseen:
            return True
        if time.monotonic() > deadline:
            history.event("drain-timeout", "workload", group=group, sample=sorted(unseen)[:20])
            return False
        wait = 0.05 if time.monotonic() - start < FAST_DRAIN_S else tick
        # re-reading the history, not synchronisation
        stop.wait(min(wait, max(0.05, deadline - time.monotonic())))


def verify_read(
    history: History,
    namesrv: str,
    queues: list[MessageQueue],
    broker_address: Callable[[str], str | None],
    *,
    group: str = "chaos-verify",
    timeout: float = 60.0,
) -> dict[str, int]:
    """A fresh group reads each queue from 0 to the max offset its master reports; returns
    {queue: max offset}. Reads are recorded under ``group`` in pull mode."""
    ends: dict[str, int] = {}
    for mq in queues:
        address = broker_address(mq.broker_name)
        assert address is not None, f"no master for {mq.broker_name}"
        ends[queue_key(mq.topic, mq.broker_name, mq.queue_id)] = admin.max_offset(
            address, mq.topic, mq.queue_id
        )
    history.event("verify-start", "workload", ends=ends)
    got: dict[str, int] = dict.fromkeys(ends, 0)  # next offset expected per queue
    consumer = PullConsumer(
        group,
        namesrv=namesrv,
        tls=transport.client_tls(),
        consume_from=ConsumeFrom.FIRST,
        auto_commit=False,
        instance_name=f"{group}-{os.getpid()}",
        pull_batch_size=256,
        max_poll_messages=512,
        suspend_timeout=1.0,
        pull_error_delay=0.5,
    )
    consumer.assign(queues)
    consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while any(got[q] < ends[q] for q in ends) and time.monotonic() < deadline:
            msgs = consumer.poll(0.5)
            if not msgs:
                continue
            reads = []
            for m in msgs:
                q = queue_key(m.topic, m.broker_name, m.queue_id)
                reads.append(Read(q, m.queue_offset, m.body.decode(errors="replace")))
                got[q] = max(got.get(q, 0), m.queue_offset + 1)
            history.reads("verify", group, "pull", reads)
    finally:
        consumer.shutdown()
    history.event("verify-end", "workload", reached=got)
    return ends
