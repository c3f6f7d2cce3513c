"""GeventFuture: pykka's future on gevent, the way actors and edge code reply without blocking.

A ``gevent.event.AsyncResult`` that honours pykka's get-hook semantics (so ``pykka``'s ``map``,
``join`` and ``filter`` work). ``GeventActor`` (``runtime.actor``) creates its ask futures
here; ``new_future`` makes one that another actor sets later.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import gevent
import gevent.event
import pykka

if TYPE_CHECKING:
    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

__all__ = ["GeventFuture", "new_future"]

T = TypeVar("T")


class GeventFuture(pykka.Future[T]):
    """A pykka future backed by ``gevent.event.AsyncResult``.

    ``get(timeout=...)`` blocks only the calling greenlet and raises ``pykka.Timeout`` when the
    timeout passes. Setting a value twice raises ``queue.Full``, as pykka's futures do.
    """

    def __init__(self) -> None:
        super().__init__()
        self._result: gevent.event.AsyncResult = gevent.event.AsyncResult()

    def get(self, *, timeout: float | None = None) -> Any:
        if self._get_hook is not None:  # map/join/filter futures: pykka's own get
            return super().get(timeout=timeout)
        try:
            return self._result.get(timeout=timeout)
        except gevent.Timeout:
            raise pykka.Timeout(f"{timeout} seconds") from None

    def set(self, value: Any | None = None) -> None:
        if self._result.ready() or self._get_hook is not None:
            raise queue.Full
        self._result.set(value)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._result.ready() or self._get_hook is not None:
            raise queue.Full
        exc_type, exc_value, _tb = exc_info
        if exc_value is None:
            assert exc_type is not None
            exc_value = exc_type()
        self._result.set_exception(exc_value, exc_info=exc_info)

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        if self._result.ready():
            raise queue.Full
        super().set_get_hook(func)

    def done(self) -> bool:
        """True once a value or an exception has been set (get-hook futures: never)."""
        return self._result.ready()

    def add_done_callback(self, callback: Callable[[GeventFuture[T]], None]) -> None:
        """Call ``callback(self)`` from the hub once the future is set (at once if it is)."""
        self._result.rawlink(_DoneCallback(callback, self))


class _DoneCallback:
    """``callback(future)`` as the link ``AsyncResult`` calls with itself: one object where a
    closure is four (a client keeps one per request in flight)."""

    __slots__ = ("callback", "future")

    def __init__(self, callback: Callable[[Any], None], future: GeventFuture[Any]) -> None:
        self.callback = callback
        self.future = future

    def __call__(self, _result: gevent.event.AsyncResult) -> None:
        self.callback(self.future)


def new_future() -> GeventFuture[Any]:
    """A future that another actor may ``set`` later: the way to reply without blocking."""
    return GeventFuture()
