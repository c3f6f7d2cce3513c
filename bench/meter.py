"""Measuring and reporting a client benchmark: ``Meter`` (a count, latencies, the rate printed
every second, the CPU the client and the broker spent while it ran, the machine's load when it
started), percentiles, and the ``SUMMARY {json}`` line every benchmark ends with."""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import threading
import time
from typing import Any


class Meter:
    """Counts operations and their latencies; a thread prints the rate every second."""

    def __init__(self, label: str, unit: str = "msg", *, broker_pid: int | None = None) -> None:
        self.label = label
        self.unit = unit
        self.broker_pid = broker_pid
        """A broker process (spawned or ``--broker-pid``) whose CPU per message is reported."""
        self.load_1m = 0.0
        self._cpu0 = (0.0, 0.0)
        self._cpu: tuple[float, float] | None = None
        self.count = 0
        self.failed = 0
        self.rts: list[float] = []
        self._window_rts: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.perf_counter()
        self.ended: float | None = None

    def add(self, n: int = 1, rt: float | None = None) -> None:
        self.count += n
        if rt is not None:
            self.rts.append(rt)
            self._window_rts.append(rt)

    def start(self) -> Meter:
        self.load_1m = os.getloadavg()[0]
        if self.load_1m > LOADED:
            print(
                f"[{self.label}] load average {self.load_1m:.2f} at start: other work shares the "
                "CPUs; compare only runs alternated with their baseline",
                flush=True,
            )
        self._cpu0 = self._cpu_now()
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._report, daemon=True, name="bench-meter")
        self._thread.start()
        return self

    def _report(self) -> None:
        last_count, last_t = 0, time.perf_counter()
        while not self._stop.wait(1.0):
            now = time.perf_counter()
            count = self.count
            window, self._window_rts = self._window_rts, []
            rate = (count - last_count) / (now - last_t)
            line = f"[{self.label}] {self.unit} TPS: {rate:,.0f}"
            if window:
                line += (
                    f" | avg RT(ms): {1000 * sum(window) / len(window):.3f}"
                    f" | max RT(ms): {1000 * max(window):.3f}"
                )
            line += f" | total: {count:,} | failed: {self.failed}"
            print(line, flush=True)
            last_count, last_t = count, now

    def _cpu_now(self) -> tuple[float, float]:
        broker = 0.0
        if self.broker_pid:
            try:
                broker = cpu_seconds(self.broker_pid)
            except OSError:  # it ended
                self.broker_pid = None
        return time.process_time(), broker

    def stop(self) -> None:
        self._cpu = self._cpu_now()
        self.ended = time.perf_counter()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def summary(self, **extra: Any) -> dict[str, Any]:
        elapsed = (self.ended or time.perf_counter()) - self.started
        out: dict[str, Any] = {
            "bench": self.label,
            "messages": self.count,
            "failed": self.failed,
            "seconds": round(elapsed, 3),
            "tps": round(self.count / elapsed) if elapsed > 0 else 0,
        }
        if self.rts:
            out.update(_percentiles(self.rts, "rt_ms"))
        out["load_1m_at_start"] = round(self.load_1m, 2)
        if self.count and self._cpu is not None:
            client, broker = (now - then for now, then in zip(self._cpu, self._cpu0, strict=True))
            out["client_cpu_us_per_msg"] = round(1e6 * client / self.count)
            if self.broker_pid:
                out["broker_cpu_us_per_msg"] = round(1e6 * broker / self.count)
        out.update(extra)
        return out


LOADED = 1.0
"""A 1-minute load average above this at the start is announced: on a 2-core machine the
figures then say more about the other work than about this one (session 17's async figures
came out 3-4x low that way, docs/benchmarks.md "Session 18")."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        f"{prefix}_avg": round(1000 * statistics.fmean(ordered), 3),
        f"{prefix}_p50": pct(0.50),
        f"{prefix}_p99": pct(0.99),
        f"{prefix}_max": round(1000 * ordered[-1], 3),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    print("SUMMARY " + json.dumps(summary), flush=True)
