"""Nemeses: faults a schedule injects and heals, every step recorded in the history.

A ``Fault`` has ``inject()`` and ``heal()``; both return a dict of facts for the history.
- ``KillRestart(node)``: SIGKILL a ``python -m runtime`` process; heal restarts it with the same
  arguments and waits for its ready line;
- ``Pause(node)``: SIGSTOP; heal is SIGCONT;
- ``Partition(proxy, how)``: cut a link through its ``TcpProxy`` (blackhole / reset / delay);
  heal restores it;
- ``CrashConsumer(consumer)``: kill -9 a consumer subprocess; heal starts a new incarnation.

``Schedule`` runs faults from a seeded ``random.Random``: wait ``interval``, pick a fault,
inject (``fault`` event), hold it ``window``, heal (``heal`` event); every event carries the
seed, so a run is replayed by its seed (timings vary with the machine, the choices do not).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tests.chaos.cluster import Node
from tests.chaos.history import History
from tests.chaos.proxy import TcpProxy
from tests.chaos.workload import ConsumerProcess


class Fault(Protocol):
    kind: str
    target: str

    def inject(self) -> dict[str, Any]: ...

    def heal(self) -> dict[str, Any]: ...


class KillRestart:
    kind = "kill"

    def __init__(self, node: Node, after_restart: Callable[[], None] | None = None) -> None:
        self.node = node
        self.target = node.name
        self.after_restart = after_restart

    def inject(self) -> dict[str, Any]:
        pid = self.node.pid
        self.node.kill()
        return {"pid": pid, "incarnation": self.node.incarnation}

    def heal(self) -> dict[str, Any]:
        start = time.monotonic()
        self.node.start()
        took = time.monotonic() - start
        if self.after_restart is not None:
            self.after_restart()
        return {"pid": self.node.pid, "ready_after": round(took, 3)}


class Pause:
    kind = "pause"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.target = node.name

    def inject(self) -> dict[str, Any]:
        self.node.pause()
        return {"pid": self.node.pid}

    def heal(self) -> dict[str, Any]:
        self.node.resume()
        return {"pid": self.node.pid}


class Partition:
    def __init__(self, proxy: TcpProxy, how: str = "blackhole", delay_ms: float = 500.0) -> None:
        if how not in ("blackhole", "reset", "delay"):
            raise ValueError(f"unknown partition mode {how!r}")
        self.proxy = proxy
        self.how = how
        self.delay_ms = delay_ms
        self.kind = f"partition-{how}"
        self.target = proxy.name

    def inject(self) -> dict[str, Any]:
        if self.how == "blackhole":
            self.proxy.blackhole()
        elif self.how == "reset":
            self.proxy.reset()
        else:
            self.proxy.delay(self.delay_ms, self.delay_ms / 5)
        return {"link": self.proxy.name, "connections": self.proxy.connections}

    def heal(self) -> dict[str, Any]:
        self.proxy.heal()
        return {"link": self.proxy.name, "dropped": self.proxy.stats.dropped}


class CrashConsumer:
    kind = "crash-consumer"

    def __init__(self, consumer: ConsumerProcess) -> None:
        self.consumer = consumer
        self.target = consumer.base

    def inject(self) -> dict[str, Any]:
        name = self.consumer.name
        self.consumer.kill()
        return {"incarnation": name}

    def heal(self) -> dict[str, Any]:
        self.consumer.start()
        return {"incarnation": self.consumer.name}


@dataclass(frozen=True)
class Timing:
    interval: tuple[float, float] = (2.0, 4.0)  # quiet time before each fault
    window: tuple[float, float] = (1.0, 3.0)  # how long each fault lasts


class Schedule:
    """Runs faults for ``duration`` seconds on a thread; see the module docstring."""

    def __init__(
        self,
        history: History,
        faults: Sequence[Fault],
        seed: int,
        timing: Timing = Timing(),
    ) -> None:
        if not faults:
            raise ValueError("a schedule needs at least one fault")
        self.history = history
        self.faults = list(faults)
        self.seed = seed
        self.timing = timing
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.injected = 0
        self.thread: threading.Thread | None = None

    def run(self, duration: float) -> None:
        """Inject and heal until ``duration`` has passed (always ending healed)."""
        end = time.monotonic() + duration
        self.history.event("nemesis-start", seed=self.seed, duration=duration)
        while not self.stopped.is_set():
            quiet = self.rng.uniform(*self.timing.interval)
            if time.monotonic() + quiet >= end:
                break
            if self.stopped.wait(quiet):
                break
            fault = self.rng.choice(self.faults)
            window = self.rng.uniform(*self.timing.window)
            self.apply(fault, window)
        self.history.event("nemesis-end", seed=self.seed, faults=self.injected)

    def apply(self, fault: Fault, window: float) -> None:
        """One fault: inject, hold ``window`` seconds, heal; both recorded."""
        facts = fault.inject()
        self.injected += 1
        self.history.event(
            "fault", kind=fault.kind, target=fault.target, seed=self.seed, window=window, **facts
        )
        try:
            self.stopped.wait(window)  # the fault window: the point of a nemesis
        finally:
            healed = fault.heal()
            self.history.event("heal", kind=fault.kind, target=fault.target, **healed)

    def start(self, duration: float) -> Schedule:
        def body() -> None:
            try:
                self.run(duration)
            except BaseException as exc:
                self.error = exc
                self.history.event("nemesis-error", error=repr(exc)[:500])

        self.thread = threading.Thread(target=body, name="nemesis", daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"nemesis still running after {timeout}s")
        if self.error is not None:
            raise RuntimeError("nemesis failed") from self.error

    def stop(self) -> None:
        self.stopped.set()
