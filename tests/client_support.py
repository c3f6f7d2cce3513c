"""Helpers for the client tests: waiting on what another thread or process makes true, and a
push-consumer listener that records what it got."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from actors.client import ConsumeResult


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "", interval: float = 0.01
) -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(interval)


class Collector:
    """A listener that keeps every message and sets ``done`` once ``expect`` arrived."""

    def __init__(self, expect: int) -> None:
        self.messages: list = []
        self.lock = threading.Lock()
        self.expect = expect
        self.done = threading.Event()

    def __call__(self, msg: object) -> ConsumeResult:
        with self.lock:
            self.messages.append(msg)
            if len(self.messages) >= self.expect:
                self.done.set()
        return ConsumeResult.CONSUME_SUCCESS

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [m.body for m in self.messages]  # type: ignore[attr-defined]
