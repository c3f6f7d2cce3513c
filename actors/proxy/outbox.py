"""Outbox: what a telemetry stream has yet to write to its client, bounded.

A client writing Settings faster than it reads the answers (a probe wrote 300,000 and read
none) made an unbounded queue hold every answer: RSS 70 -> 218 MB. Only the latest answer to
a client's Settings matters (each one answers the whole of the client's settings), so it is
one slot, replaced by the next; the proxy's own commands (a transaction check) are queued up
to ``MAX_COMMANDS``, past which ``command`` says False (the broker asks again later).

``get`` is called by the stream's response generator (the gRPC worker), the others by the
stream's reader and by the proxy's other calls.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

MAX_COMMANDS = 64


class Outbox:
    """``answer`` / ``command`` / ``close`` from any thread; ``get`` from the stream's writer."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._answer: Any = None
        self._answered: Any = None
        """The last answer given (``repeat`` writes it again only if none came since)."""
        self._commands: collections.deque[Any] = collections.deque()
        self._closed = False
        self.replaced = 0
        """Answers never written: a newer one came first."""

    def answer(self, item: Any) -> None:
        """The answer to the client's latest Settings (replaces one not written yet)."""
        with self._cond:
            if self._answer is not None:
                self.replaced += 1
            self._answer = self._answered = item
            self._cond.notify()

    def repeat(self, item: Any) -> None:
        """``item`` (an answer written before) once more, unless a newer answer is waiting or
        was written since: a late repeat must not replace the answer to newer Settings."""
        with self._cond:
            if self._answer is None and self._answered is item:
                self._answer = item
                self._cond.notify()

    def command(self, item: Any) -> bool:
        """A command of the proxy's own; False when ``MAX_COMMANDS`` wait already."""
        with self._cond:
            if self._closed or len(self._commands) >= MAX_COMMANDS:
                return False
            self._commands.append(item)
            self._cond.notify()
            return True

    def close(self) -> None:
        """No more: ``get`` returns None once what waits is written."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._commands) + (self._answer is not None)

    def get(self, timeout: float | None = None) -> Any:
        """The next item to write (the answer first); None once closed and empty; raises
        TimeoutError when nothing came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._answer is not None:
                    item, self._answer = self._answer, None
                    return item
                if self._commands:
                    return self._commands.popleft()
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("nothing to write")
                self._cond.wait(left)
