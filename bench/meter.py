"""Measuring and reporting a client benchmark: ``Meter`` (a count, latencies, the rate printed
every second), percentiles, and the ``SUMMARY {json}`` line every benchmark ends with."""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any


class Meter:
    """Counts operations and their latencies; a thread prints the rate every second."""

    def __init__(self, label: str, unit: str = "msg") -> None:
        self.label = label
        self.unit = unit
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

    def stop(self) -> None:
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
        out.update(extra)
        return out


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
