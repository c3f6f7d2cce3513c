"""Supervisor: starts children from specs, restarts them by policy, escalates, shuts down in order.

Messages (all internal, sent by the runtime or by tests):
- ``ChildExited(name, urn, reason)`` — told by the watcher when a child's greenlet ends.
- ``RestartChild(name)`` — told by the backoff timer (a restart, or the retry of a failed start).
Proxy methods: ``lookup(name)``, ``children()``, ``replace_child(spec)`` (the hook failover uses
to swap a slave broker for a promoted master), ``stop_child(name)``.

State owned: the ordered child specs, each child's current ref, restart timestamps.
Durability point: none of its own; a FAIL_STOP child (an actor that owns durability) stops the
whole subtree and the supervisor fails with the child's reason, so nothing keeps acknowledging.

Restart policies mirror Erlang/OTP: PERMANENT always restarts; TRANSIENT restarts after a failure
only; TEMPORARY never restarts; FAIL_STOP never restarts and takes the supervisor down with it.
More than ``max_restarts`` restarts within ``within_seconds`` makes the supervisor fail, which
its own parent sees as a child failure: escalation.

A child whose start function raises once the supervisor runs (a restart, or the new spec of
``replace_child``) is not running: the failure is logged as an ERROR with its reason, reported
to ``on_child_down``, and the start is tried again after ``start_backoff`` (doubling up to
``start_backoff_max``). More than ``start_retries`` failed starts of one child in a row make
the supervisor fail (escalation; the root's failure ends the process with status 1), so a
child that cannot be started is never left stopped for good while its supervisor lives on.
``replace_child`` does not fall back to the old spec: it was replaced because it was wrong (a
role the controller took away; a log the master cut), and what fails a start (the store's
disk, a file) fails both alike. The supervisor's own start still raises (nothing started).
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import pykka
from loguru import logger

from runtime.actor import GeventActor, watch
from runtime.directory import Directory
from runtime.errors import ActorFailure


class Restart(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"
    FAIL_STOP = "fail_stop"


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"


class ChildSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How to start one child. ``start`` must return a started GeventActor's ref."""

    name: str
    start: Callable[[], pykka.ActorRef[Any]]
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0


class ChildExited(msgspec.Struct, frozen=True, tag=True):
    name: str
    urn: str
    reason: str | None  # None: clean stop


class RestartChild(msgspec.Struct, frozen=True, tag=True):
    name: str
    urn: str | None  # the incarnation that died; None: whatever is there


class _ResetBackoff(msgspec.Struct, frozen=True, tag=True):
    name: str


class _GiveUp(msgspec.Struct, frozen=True, tag=True):
    """Internal: fail the supervisor (told, so that a proxy call's failure escalates too)."""

    reason: str


class _Child:
    __slots__ = ("failed_starts", "ref", "retry", "spec", "stopping")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: pykka.ActorRef[Any] | None = None
        self.stopping = False
        self.failed_starts = 0
        """Starts of this child that raised, in a row (a start that returns resets it)."""
        self.retry: Any = None
        """The timer of the pending retry of a failed start, if any."""


class Supervisor(GeventActor):
    """A supervisor actor. See the module docstring for messages, policies and escalation."""

    def __init__(
        self,
        name: str,
        children: list[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within_seconds: float = 5.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        start_retries: int = 3,
        start_backoff: float = 0.5,
        start_backoff_max: float = 8.0,
        directory: Directory | None = None,
        on_child_down: Callable[[str, str | None], None] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.within_seconds = within_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.start_retries = start_retries
        self.start_backoff = start_backoff
        self.start_backoff_max = start_backoff_max
        self.directory = directory if directory is not None else Directory()
        self.on_child_down = on_child_down
        self._children: list[_Child] = [_Child(spec) for spec in children]
        self._restarts: deque[float] = deque()
        self._consecutive: dict[str, int] = {}
        if len({c.spec.name for c in self._children}) != len(self._children):
            raise ValueError(f"{name}: duplicate child names")
        # Children start here, in the caller's context, so that they are in the directory by the
        # time ``Supervisor.start`` returns. A factory that raises aborts the whole start.
        try:
            for child in self._children:
                self._start_child(child)
        except Exception:
            self._stop_children(self._children)
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def on_stop(self) -> None:
        self._stop_children(self._children)

    def on_failure(self, *_exc_info: Any) -> None:
        self._stop_children(self._children)

    # -- public proxy API ---------------------------------------------------------------------

    def lookup(self, name: str) -> pykka.ActorRef[Any] | None:
        return self.directory.get(name)

    def children(self) -> list[str]:
        return [c.spec.name for c in self._children]

    def replace_child(self, spec: ChildSpec) -> pykka.ActorRef[Any] | None:
        """Stop the child named ``spec.name`` and start ``spec`` in its place (failover hook).
        None when that start raised: it is retried (see the module docstring)."""
        child = self._find(spec.name)
        if child is None:
            raise ActorFailure(spec.name, f"no such child of {self.name}")
        self._stop_children([child])
        self._cancel_retry(child)
        child.spec = spec
        child.stopping = False
        child.failed_starts = 0
        self._try_start(child)
        return child.ref

    def stop_child(self, name: str) -> None:
        """Stop a child for good (it is not restarted) and forget its spec."""
        child = self._find(name)
        if child is not None:
            self._cancel_retry(child)
            self._stop_children([child])
            self._children.remove(child)

    # -- messages -----------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            self._child_exited(message)
        elif isinstance(message, RestartChild):
            self._restart_child(message)
        elif isinstance(message, _ResetBackoff):
            child = self._find(message.name)
            if child is not None and child.ref is not None and child.ref.is_alive():
                self._consecutive.pop(message.name, None)
        elif isinstance(message, _GiveUp):
            self._escalate(message.reason)
        else:
            return super().on_receive(message)
        return None

    def _child_exited(self, msg: ChildExited) -> None:
        child = self._find(msg.name)
        if child is None or child.ref is None or child.ref.actor_urn != msg.urn:
            return  # an older incarnation, or a child we already forgot
        self.directory.remove(self._path(child), child.ref)
        if child.stopping:
            return
        child.ref = None
        failed = msg.reason is not None
        if self.on_child_down is not None:
            self.on_child_down(msg.name, msg.reason)
        policy = child.spec.restart
        if policy is Restart.FAIL_STOP and failed:
            self._escalate(f"fail-stop child {msg.name} failed: {msg.reason}")
            return
        if policy is Restart.TEMPORARY or (policy is not Restart.PERMANENT and not failed):
            logger.info("{}: child {} ended ({}), not restarted", self.name, msg.name, msg.reason)
            return
        if policy is Restart.FAIL_STOP:
            return  # a clean stop of a fail-stop child is not restarted either
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > self.within_seconds:
            self._restarts.popleft()
        if len(self._restarts) > self.max_restarts:
            self._escalate(
                f"restart intensity exceeded: {len(self._restarts)} restarts within "
                f"{self.within_seconds:g}s (last: {msg.name}: {msg.reason})"
            )
            return
        logger.warning("{}: child {} exited ({}); restarting", self.name, msg.name, msg.reason)
        if self.strategy is Strategy.REST_FOR_ONE:
            later = self._children[self._children.index(child) + 1 :]
            self._stop_children(later)
            for other in later:
                other.stopping = False
        attempt = self._consecutive.get(msg.name, 0)
        self._consecutive[msg.name] = attempt + 1
        delay = min(self.backoff_initial * (2**attempt), self.backoff_max) if attempt else 0.0
        if delay:
            self.send_after(delay, RestartChild(msg.name, msg.urn))
        else:
            self._restart_child(RestartChild(msg.name, msg.urn))

    def _restart_child(self, msg: RestartChild) -> None:
        child = self._find(msg.name)
        if child is None or child.ref is not None:
            return
        self._cancel_retry(child)
        if not self._try_start(child):
            return
        if self.strategy is Strategy.REST_FOR_ONE:
            for other in self._children[self._children.index(child) + 1 :]:
                if other.ref is None and not self._try_start(other):
                    break  # its retry starts the ones after it
        self.send_after(self.within_seconds, _ResetBackoff(msg.name))

    def _try_start(self, child: _Child) -> bool:
        """Start ``child``; a start that raises leaves it stopped and schedules a retry (or,
        past ``start_retries`` in a row, fails this supervisor)."""
        try:
            self._start_child(child)
        except Exception as exc:
            child.ref = None
            self._start_failed(child, f"{exc.__class__.__name__}: {exc}")
            return False
        child.failed_starts = 0
        return True

    def _start_failed(self, child: _Child, reason: str) -> None:
        name = child.spec.name
        child.failed_starts += 1
        failed = child.failed_starts
        if self.on_child_down is not None:
            self.on_child_down(name, f"start failed: {reason}")
        if failed > self.start_retries:
            logger.error("{}: child {} failed to start ({}); giving up", self.name, name, reason)
            # (told: from a proxy call, raising would only fail the caller's future)
            self.actor_ref.tell(
                _GiveUp(f"child {name} failed to start {failed} times in a row (last: {reason})")
            )
            return
        delay = min(self.start_backoff * (2 ** (failed - 1)), self.start_backoff_max)
        logger.error(
            "{}: child {} failed to start ({}); retry {} of {} in {:g}s",
            self.name,
            name,
            reason,
            failed,
            self.start_retries,
            delay,
        )
        self._cancel_retry(child)
        child.retry = self.send_after(delay, RestartChild(name, None))

    def _cancel_retry(self, child: _Child) -> None:
        if child.retry is not None:
            child.retry.cancel()
            child.retry = None

    # -- helpers --------------------------------------------------------------------------------

    def _find(self, name: str) -> _Child | None:
        return next((c for c in self._children if c.spec.name == name), None)

    def _path(self, child: _Child) -> str:
        return child.spec.name

    def _start_child(self, child: _Child) -> None:
        ref = child.spec.start()
        child.ref = ref
        child.stopping = False
        self.directory.put(self._path(child), ref)
        me = self.actor_ref
        name = child.spec.name

        def exited(dead: pykka.ActorRef[Any], failure: BaseException | None) -> None:
            reason = None if failure is None else f"{failure.__class__.__name__}: {failure}"
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(ChildExited(name, dead.actor_urn, reason))

        watch(ref, exited)

    def _stop_children(self, children: list[_Child]) -> None:
        """Stop in reverse start order, each within its shutdown timeout."""
        for child in reversed(children):
            ref = child.ref
            if ref is None:
                continue
            child.stopping = True
            try:
                ref.stop(block=True, timeout=child.spec.shutdown_timeout)
            except pykka.Timeout:
                logger.error(
                    "{}: child {} did not stop within {:g}s",
                    self.name,
                    child.spec.name,
                    child.spec.shutdown_timeout,
                )
                self.directory.stop_timeouts.append(child.spec.name)
            except pykka.ActorDeadError:
                pass
            self.directory.remove(self._path(child), ref)
            child.ref = None

    def _escalate(self, reason: str) -> None:
        logger.error("{}: escalating: {}", self.name, reason)
        raise ActorFailure(self.name, reason)
