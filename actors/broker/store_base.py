"""What every part of the ``BrokerStore`` facade shares: its context, and futures that answer at
once when an actor is not running.

The facade (``actors.broker.store_service.BrokerStore``) is put together from
``StoreReads`` (``store_reads``) and ``StoreMetadata`` (``store_metadata``); both build on
``StoreFacadeBase`` here, which declares what they need of the facade and asks an actor by its
directory name without ever blocking on one that is gone.
"""

from __future__ import annotations

from typing import Any

import pykka

from runtime.actor import ask_now, new_future
from runtime.errors import ActorFailure
from runtime.store.context import StoreContext, StoreNames
from runtime.store.settings import StoreSettings

Future = pykka.Future[Any]


def resolved_future(value: Any) -> Future:
    """A future that already holds ``value``."""
    fut = new_future()
    fut.set(value)
    return fut


def failed_future(name: str, reason: str) -> Future:
    """A future whose ``get`` raises ``ActorFailure(name, reason)``."""
    fut = new_future()
    try:
        raise ActorFailure(name, reason)
    except ActorFailure:
        fut.set_exception()
    return fut


class StoreFacadeBase:
    """The base of the facade's parts; ``BrokerStore.__init__`` sets these attributes."""

    ctx: StoreContext
    settings: StoreSettings
    names: StoreNames

    @property
    def running(self) -> bool:
        """The store is open and its queues are served (False from the moment it begins to
        stop: its Dispatcher stopped every Queue actor)."""
        return self.ctx.opened is not None and not self.ctx.queues.closed

    def _ask(self, name: str, message: Any, inline: bool = False) -> Future:
        """Ask the actor ``name``; ``inline``: in this greenlet when it is idle (``ask_now``:
        only for handlers that never yield)."""
        ref = self.ctx.directory.get(name)
        if ref is None:
            return failed_future(name, "not running")
        try:
            return ask_now(ref, message) if inline else ref.ask(message, block=False)
        except pykka.ActorDeadError:
            return failed_future(name, "stopped")
