"""Directory: name -> the current ref of a supervised actor.

Supervisors update it on every (re)start, so a dependent that holds the directory always reaches
the live incarnation of a child, never a dead ref. It is a plain in-process object: all actors of
a process share one hub thread, so there is nothing to lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pykka

from runtime.errors import ActorFailure


class Directory:
    """Maps names to current actor refs. Names are usually paths: ``broker-a/commitlog``."""

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._proxies: dict[str, pykka.ActorProxy[Any]] = {}
        self.stop_timeouts: list[str] = []
        """Children that did not stop within their shutdown timeout (any supervisor of the
        tree): the process's stop was not clean (``runtime.node`` exits 1)."""
        self.stopping = False
        """The process is shutting down (SIGINT / SIGTERM), not replacing a subtree: acceptors
        let the requests in service finish first (``runtime.net.Acceptor``)."""

    def get(self, name: str) -> pykka.ActorRef[Any] | None:
        """The current ref, or None when the actor is not running (e.g. between restarts)."""
        ref = self._refs.get(name)
        if ref is not None and not ref.is_alive():
            return None
        return ref

    def require(self, name: str) -> pykka.ActorRef[Any]:
        """The current ref; raises ActorFailure naming the actor when it is not running."""
        ref = self.get(name)
        if ref is None:
            raise ActorFailure(name, "not running")
        return ref

    def proxy(self, name: str) -> pykka.ActorProxy[Any]:
        """A proxy of the current incarnation; raises ActorFailure when it is not running.

        One proxy per incarnation, kept: building a pykka proxy introspects every attribute of
        the actor (~0.2 ms here), far more than the call it is built for."""
        ref = self.require(name)
        proxy = self._proxies.get(name)
        if proxy is None or proxy.actor_ref is not ref:
            try:
                proxy = self._proxies[name] = ref.proxy()
            except pykka.ActorDeadError as exc:
                raise ActorFailure(name, "stopped") from exc
        return proxy

    def tell(self, name: str, message: Any) -> None:
        """Tell the current incarnation; raises ActorFailure when it is not running."""
        try:
            self.require(name).tell(message)
        except pykka.ActorDeadError as exc:
            raise ActorFailure(name, "stopped") from exc

    def ask(self, name: str, message: Any, timeout: float | None = None) -> Any:
        """Ask the current incarnation and wait up to ``timeout`` seconds (edge code only)."""
        return self.require(name).ask(message, timeout=timeout)

    def put(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        self._refs[name] = ref

    def remove(self, name: str, ref: pykka.ActorRef[Any] | None = None) -> None:
        """Forget ``name``; with ``ref``, only if it still points at that incarnation."""
        current = self._refs.get(name)
        if current is not None and (ref is None or current.actor_urn == ref.actor_urn):
            del self._refs[name]
            self._proxies.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._refs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
