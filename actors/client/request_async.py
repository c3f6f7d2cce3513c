"""``PendingReply``: one ``Producer.request_async`` waiting for its reply (RocketMQ's
``request(msg, RequestCallback, timeout)``).

It stands where ``request`` puts a hub waiter in the producer's ``ReplyWaiters``: the pushed
reply ``set``s it, the send's failure or the hub timer ``set_error``s it, whichever comes first;
later ones are ignored. It completes a ``concurrent.futures.Future`` and runs the caller's
``callback(reply, error)`` on the producer's callback thread, never on the hub.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from actors.client import completing
from actors.client.message import MessageExt

ReplyCallback = Callable[["MessageExt | None", "BaseException | None"], None]


class PendingReply:
    """See the module docstring. ``set`` / ``set_error`` run on the hub."""

    __slots__ = ("callback", "callbacks", "done", "future", "owner", "timer")

    def __init__(
        self,
        callbacks: concurrent.futures.Executor,
        callback: ReplyCallback | None,
        owner: object = None,
    ) -> None:
        self.future: concurrent.futures.Future[MessageExt] = concurrent.futures.Future()
        self.future.set_running_or_notify_cancel()
        self.callbacks = callbacks
        self.callback = callback
        self.owner = owner
        """The producer: its ``flush`` / ``shutdown`` from the callback must not wait for it."""
        self.timer: Any = None
        """The hub timer that fails the request when no reply came in time."""
        self.done = False

    def set(self, reply: MessageExt) -> None:
        self._complete(reply, None)

    def set_error(self, error: BaseException) -> None:
        self._complete(None, error)

    def _complete(self, reply: MessageExt | None, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.close()
        try:
            self.callbacks.submit(self._finish, reply, error)
        except RuntimeError:  # the executor shut down (the producer did): complete here
            self._finish(reply, error)

    def _finish(self, reply: MessageExt | None, error: BaseException | None) -> None:
        """The callback thread: the future, then the callback."""
        previous = completing.enter(self.owner)
        try:
            if error is not None:
                self.future.set_exception(error)
            else:
                assert reply is not None
                self.future.set_result(reply)
            if self.callback is not None:
                self.callback(reply, error)
        finally:
            completing.leave(previous)
