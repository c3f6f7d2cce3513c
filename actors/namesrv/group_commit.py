"""GroupCommit: the controller's answers wait for the store's flush that holds their changes.

The controller stages changed groups (``ControllerStore.stage``) while it handles a message.
``answer(value)`` gives ``value`` back at once when nothing is staged or being written, else a
``Flushed`` (an ``AsyncResult``) set to ``value`` after the next flush: an answer never carries
a change the disk lacks (an in-sync set, a term), and one flush (one fsync) covers every
message handled while the previous one ran. A flush that fails sets every waiting answer's
exception and calls ``failed(exc)`` (the controller fails then: its memory is ahead of its
disk; the supervisor restarts it from the files).

    commit = GroupCommit(store, failed)
    commit.answer(value) -> value | Flushed
    settled(answer, timeout) -> the value (waits for a Flushed)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import pykka
from gevent.event import AsyncResult

from actors.namesrv.controller_store import ControllerStore


class Flushed(AsyncResult):
    """An answer waiting for the store's flush (not to be confused with an answer that is
    itself an ``AsyncResult``: a handover's outcome)."""


class GroupCommit:
    """See the module docstring."""

    def __init__(self, store: ControllerStore, failed: Callable[[BaseException], None]) -> None:
        self.store = store
        self.failed = failed
        self._waiting: list[tuple[Flushed, Any]] = []
        self._writer: gevent.Greenlet | None = None

    def answer(self, value: Any) -> Any:
        if not self.store.staged and self._writer is None:
            return value
        done = Flushed()
        self._waiting.append((done, value))
        if self._writer is None:
            self._writer = gevent.spawn(self._run)
        return done

    def later(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the changes staged so far are on disk (now, when none wait): an
        outcome handed to another greenlet (a handover's waiters) must not overtake them."""
        done = self.answer(None)
        if isinstance(done, Flushed):
            done.rawlink(lambda result: fn() if result.successful() else None)
        else:
            fn()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the running flush and flush what is staged (a clean stop keeps every
        change)."""
        writer = self._writer
        if writer is not None:
            writer.join(timeout=timeout)
        if self.store.staged:
            self.store.flush()

    def _run(self) -> None:
        try:
            while self._waiting or self.store.staged:
                # (taken together, with no switch between: every waiter's changes are staged)
                waiting, self._waiting = self._waiting, []
                try:
                    self.store.flush()
                except Exception as exc:
                    for done, _value in waiting + self._waiting:
                        done.set_exception(exc)
                    self._waiting = []
                    self.failed(exc)
                    return
                for done, value in waiting:
                    done.set(value)
        finally:
            self._writer = None


def settled(answer: Any, timeout: float) -> Any:
    """``answer``, or what it is set to when it waits for a flush (``Flushed``; up to
    ``timeout`` seconds: ``pykka.Timeout`` past that, an Exception, as an ask's)."""
    if not isinstance(answer, Flushed):
        return answer
    try:
        return answer.get(timeout=timeout)
    except gevent.Timeout:
        raise pykka.Timeout(f"the controller's store did not flush in {timeout}s") from None
