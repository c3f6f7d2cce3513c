"""Clock faults for nodes (R20): step a node's wall clock, or strobe it, while monotonic time
runs on.

``ClockShift`` gives every node started with its ``env_for`` the shim in ``clockshift/``
(a ``sitecustomize`` that adds the offset held in the node's clock file to ``time.time()``) and
writes those files. The faults follow the nemesis protocol (``inject`` / ``heal``):

- ``ClockJump(shift, node, seconds)``: the node's clock steps by ``seconds`` for the fault
  window, then steps back;
- ``ClockStrobe(shift, node, seconds, period)``: the node's clock flips between ``+seconds``
  and ``-seconds`` every ``period`` seconds for the window (jepsen's "strobe"), then returns.
"""

from __future__ import annotations

import os
import pathlib
import threading
from typing import Any

SHIM = pathlib.Path(__file__).resolve().parent / "clockshift"


class ClockShift:
    """The clock files of a cluster's nodes under ``workdir/clock``."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.dir = workdir / "clock"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.offsets: dict[str, float] = {}

    def path(self, node: str) -> pathlib.Path:
        return self.dir / f"{node}.offset"

    def env_for(self, node: str) -> dict[str, str]:
        """The environment that makes ``node``'s process read its clock file."""
        self.set(node, 0.0)
        paths = [str(SHIM), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {
            "PYTHONPATH": os.pathsep.join(paths),
            "ACTORMQ_CHAOS_CLOCK_FILE": str(self.path(node)),
        }

    def set(self, node: str, seconds: float) -> None:
        """Step ``node``'s wall clock to the real one plus ``seconds`` (atomically)."""
        tmp = self.path(node).with_suffix(".tmp")
        tmp.write_text(f"{seconds}\n")
        os.replace(tmp, self.path(node))
        self.offsets[node] = seconds


class ClockJump:
    kind = "clock-jump"

    def __init__(self, shift: ClockShift, node: str, seconds: float) -> None:
        self.shift = shift
        self.target = node
        self.seconds = seconds

    def inject(self) -> dict[str, Any]:
        self.shift.set(self.target, self.seconds)
        return {"seconds": self.seconds}

    def heal(self) -> dict[str, Any]:
        self.shift.set(self.target, 0.0)
        return {"seconds": 0.0}


class ClockStrobe:
    kind = "clock-strobe"

    def __init__(self, shift: ClockShift, node: str, seconds: float, period: float = 0.05) -> None:
        self.shift = shift
        self.target = node
        self.seconds = seconds
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flips = 0

    def inject(self) -> dict[str, Any]:
        self._stop.clear()
        self.flips = 0

        def strobe() -> None:
            sign = 1.0
            while not self._stop.is_set():
                self.shift.set(self.target, sign * self.seconds)
                self.flips += 1
                sign = -sign
                self._stop.wait(self.period)

        self._thread = threading.Thread(target=strobe, name=f"strobe-{self.target}", daemon=True)
        self._thread.start()
        return {"seconds": self.seconds, "period": self.period}

    def heal(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.shift.set(self.target, 0.0)
        return {"flips": self.flips}
