"""AsyncWindow: how many async sends, and how many body bytes, a producer has waiting for their
answers; ``send_async`` waits for room (back-pressure) instead of piling requests on a broker.

Without it a loop of ``send_async`` calls queues every message at once: the broker answers
SYSTEM_BUSY past its per-connection bounds (4,096 requests, 64 MiB of bodies) or past
``waitTimeMillsInSendQueue``, and the client holds every body until then. RocketMQ 5's producer
has the same knobs (``backPressureForAsyncSendNum`` / ``backPressureForAsyncSendSize``), its 4.x
clients a semaphore of 65,535 async requests; Kafka's producer blocks ``send()`` for
``max.block.ms`` when ``buffer.memory`` is full.

``enter`` blocks the caller (a thread, or a greenlet in a monkey-patched program: the condition
is ``threading``'s, which gevent patches) until the send fits, up to a timeout; a send always
fits when nothing is in flight, so a body larger than the byte bound still goes, alone.
``leave`` is called once per entered send when its answer (or failure) arrives, and
``finished`` once its future and callback have completed (``wait_finished``: a flush): in a plain
program on the client hub's own thread, before the send's callback is scheduled (the callback
thread may itself be waiting in ``enter``); in a monkey-patched one from a greenlet, never as a
hub callback (it may wait for the condition's lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_ASYNC_SENDS = 128
"""Async sends a producer may have in flight: what stores the most from one ``send_async``
loop on a 2-core machine (14,000-16,000 msg/s of 1 KiB; 10,500-11,800 at 1,024, where each
side spends more per send), and few enough that the broker answers the last of a full window
inside its 200 ms ``waitTimeMillsInSendQueue`` even on a loaded machine with several producers
at once: there, a window of 1,024 had 10-40 % of a loop's sends answered SYSTEM_BUSY
(docs/benchmarks.md, "Session 17", "Session 18"). ``Producer(auto_batch=True)`` is what
stores more."""
MAX_ASYNC_BYTES = 32 << 20
"""Body bytes of async sends a producer may have in flight (half the broker's 64 MiB per
connection)."""


class AsyncWindow:
    """The in-flight bounds of one producer's async sends."""

    def __init__(self, max_sends: int = MAX_ASYNC_SENDS, max_bytes: int = MAX_ASYNC_BYTES) -> None:
        self.max_sends = max_sends
        self.max_bytes = max_bytes
        self.sends = 0
        self.bytes = 0
        self.peak_sends = 0
        """The most sends ever in flight at once (for tests and tools)."""
        self.unfinished = 0
        """Sends entered whose future and callback have not completed yet (``finished``): what
        ``Producer.flush`` waits for. A send leaves the window before its callback runs."""
        self._room = threading.Condition()

    def _fits(self, size: int) -> bool:
        return self.sends == 0 or (
            self.sends < self.max_sends and self.bytes + size <= self.max_bytes
        )

    def enter(self, size: int, timeout: float, on_full: Callable[[], None] | None = None) -> bool:
        """Count a send of ``size`` body bytes in flight once it fits; False when it did not fit
        within ``timeout`` seconds (nothing counted). ``on_full`` is called (without the lock)
        before waiting: what auto batching holds is then sent at once, as Kafka's accumulator
        sends every batch while a sender waits for memory (held sends count in flight here, and
        would otherwise wait out their batch delay while the caller waits for them)."""
        with self._room:
            if self._fits(size):
                self._count(size)
                return True
        if on_full is not None:
            on_full()
        with self._room:
            if not self._room.wait_for(lambda: self._fits(size), timeout):
                return False
            self._count(size)
            return True

    def _count(self, size: int) -> None:
        """(Under the lock.)"""
        self.sends += 1
        self.bytes += size
        self.unfinished += 1
        self.peak_sends = max(self.peak_sends, self.sends)

    def leave(self, size: int) -> None:
        """A send entered with ``size`` got its answer or failed."""
        with self._room:
            self.sends -= 1
            self.bytes -= size
            self._room.notify_all()

    def finished(self) -> None:
        """An entered send's future and callback have completed (after ``leave``)."""
        with self._room:
            self.unfinished -= 1
            if not self.unfinished:
                self._room.notify_all()

    def wait_finished(self, timeout: float | None) -> bool:
        """Wait until every entered send has finished (sends entered meanwhile count too);
        False when some had not within ``timeout`` seconds (None: no limit)."""
        with self._room:
            return self._room.wait_for(lambda: self.unfinished == 0, timeout)
