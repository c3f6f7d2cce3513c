"""Gevent-backed pykka actors.

`GeventActor` plugs gevent into pykka 4's three hooks: the inbox is a gevent queue, futures are
`GeventFuture` (``runtime.future``: a gevent ``AsyncResult`` that honours pykka's get-hook
semantics, so ``map``, ``join`` and ``filter`` work), and the loop runs on a greenlet.
Everything else — ``ask``/``tell``, proxies, ``stop``, ``on_failure``, the registry — is
pykka's own behaviour.

Differences from ``ThreadingActor``, all on purpose:

* ``gevent.Timeout`` and ``GreenletExit`` raised inside a handler fail *this* actor only. pykka's
  own loop treats any BaseException as "stop every actor", which a stray timeout must not do.
* ``fail_on_error = True`` makes an exception in an ``ask`` handler fail the actor too (after the
  caller got the exception). Actors that own durability set it: they must not keep serving after
  a bug.
* ``send_after`` / ``send_every`` timers tell the actor a message and die with it.
* ``watch(ref, callback)`` calls back once the actor's greenlet has ended, with the failure
  (or None for a clean stop). Supervisors are built on it.
* ``handle_inline(message)`` / ``ask_inline(message)`` (``tell_now`` / ``ask_now`` /
  ``call_now`` on a ref): an idle actor may handle a told or asked message in the caller's
  greenlet (hot paths whose handler never yields: a hub turn and two greenlet switches saved;
  see the docstrings).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import gevent
import gevent.event
import gevent.queue
import pykka
from pykka import ActorRegistry
from pykka import messages as _pykka_messages
from pykka._envelope import Envelope
from pykka.messages import ProxyCall

from runtime.errors import ActorFailure
from runtime.future import GeventFuture, new_future

if TYPE_CHECKING:
    from types import TracebackType

    from pykka._actor import ActorInbox
    from pykka._types import OptExcInfo

# GeventFuture and new_future live in runtime.future; this module stays the actor runtime's
# one import for them (28 importers).
__all__ = [
    "GeventActor",
    "GeventFuture",
    "actor_of",
    "ask_now",
    "call_now",
    "new_future",
    "offload",
    "others_ready",
    "tell_now",
    "watch",
]

T = TypeVar("T")


class _Raised:
    """An exception the offloaded call raised, carried back as its result."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        return _Raised(exc)


def offload(fn: Callable[..., T], *args: Any, pool: Any = None) -> T:
    """Run a blocking call (fsync, a large pread) in the hub's thread pool (or ``pool``: a
    ``gevent.threadpool.ThreadPool`` of the caller's, for writes that must not queue behind
    everyone else's work).

    Blocks only the calling greenlet; the hub keeps serving every other actor. What ``fn``
    raises is raised here, with its traceback, and nowhere else: gevent's pool would also print
    it through the hub's error handler ("... failed with ..."), even when the caller handles it
    (a store that cannot open, an fsync error turned into a StoreError).
    """
    out = (pool or gevent.get_hub().threadpool).apply(_call, (fn, args))
    if isinstance(out, _Raised):
        raise out.exc
    return out  # type: ignore[no-any-return]


def others_ready() -> bool:
    """True when other greenlets are scheduled to run on this hub right now (callbacks queued:
    newly spawned greenlets, woken waiters, actors told a message). A hot path may then prefer
    ``tell`` over ``GeventActor.handle_inline`` so that the receiver batches what they are about
    to send. Reads gevent's loop internals; without them it answers False. ``bool``, not
    ``len``: libev's callback FIFO counts itself by walking its list (2 us at 1,000 queued
    callbacks, what a client's deep pipeline of sends leaves on the broker's hub)."""
    return bool(getattr(gevent.get_hub().loop, "_callbacks", ()))


class _Timer:
    """One libev timer that tells an actor a message; closed when the actor stops."""

    __slots__ = ("_ref", "_repeat", "_watcher", "message")

    def __init__(self, ref: pykka.ActorRef[Any], delay: float, repeat: float, message: Any):
        self._ref = ref
        self._repeat = repeat
        self.message = message
        self._watcher = gevent.get_hub().loop.timer(max(delay, 0.0), repeat)
        self._watcher.start(self._fire)

    def _fire(self) -> None:
        try:
            self._ref.tell(self.message)
        except pykka.ActorDeadError:
            self.cancel()
            return
        if not self._repeat:
            self.cancel()

    def cancel(self) -> None:
        self._watcher.stop()
        self._watcher.close()


_PYKKA_MESSAGES = frozenset(
    {
        _pykka_messages._ActorStop,
        _pykka_messages.ProxyCall,
        _pykka_messages.ProxyGetAttr,
        _pykka_messages.ProxySetAttr,
    }
)
"""The messages pykka's own ``_handle_receive`` interprets; everything else is ``on_receive``'s."""


class GeventActor(pykka.Actor):
    """A pykka actor that runs on a greenlet. See the module docstring for the differences."""

    inline_capable: ClassVar[bool] = True
    """Marks the actors ``ask_now``/``tell_now`` may run inline (cheaper than an isinstance
    against pykka's ABC-based ``Actor`` on every hot-path message)."""

    fail_on_error: ClassVar[bool] = False
    """True: an exception in an ``ask`` handler also fails the actor (durability actors)."""

    actor_failure: BaseException | None = None
    """Why the actor failed, once it has; None while running or after a clean stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timers: list[_Timer] = []
        self._greenlet: gevent.Greenlet | None = None
        self._handling = True  # a message is being handled (by the loop or inline); until
        # the loop runs (after on_start), nothing may be handled inline
        self._inline_done: gevent.event.Event | None = None

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox: gevent.queue.Queue[Any] = gevent.queue.Queue()
        return inbox

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return GeventFuture()

    def _handle_receive(self, message: Any) -> Any:
        # pykka's version tries four isinstance checks first; only its own messages need them
        if message.__class__ in _PYKKA_MESSAGES:
            return super()._handle_receive(message)
        return self.on_receive(message)

    def _start_actor_loop(self) -> None:
        self._greenlet = gevent.spawn(self._actor_loop)
        self._greenlet.name = f"{self.__class__.__name__}-{self.actor_urn[-8:]}"

    # -- timers ---------------------------------------------------------------------------

    def send_after(self, delay: float, message: Any) -> _Timer:
        """Tell this actor ``message`` once, after ``delay`` seconds."""
        timer = _Timer(self.actor_ref, delay, 0.0, message)
        self._timers = [t for t in self._timers if t._watcher.active]
        self._timers.append(timer)
        return timer

    def send_every(self, interval: float, message: Any) -> _Timer:
        """Tell this actor ``message`` every ``interval`` seconds until it stops."""
        timer = _Timer(self.actor_ref, interval, interval, message)
        self._timers.append(timer)
        return timer

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- the loop ---------------------------------------------------------------------------

    def handle_inline(self, message: Any) -> bool:
        """Handle the told ``message`` now, in the caller's greenlet, if this actor is idle.

        Idle: started, not stopped, nothing in its inbox and no handler running. Then handling
        the message here is exactly what the actor's own greenlet would do next — one message
        at a time, in order — minus the two greenlet switches of a ``tell``. Only for messages
        whose handler never yields (no blocking call, ``ask``, ``offload`` or sleep) and only
        from greenlets of this actor's hub (checked). Returns False, having done nothing, when
        the actor is busy or the caller is on another hub: the caller then tells it as usual.
        An exception fails the actor as in its own loop (the exception is handed to the loop);
        the caller is not told.
        """
        if not self._idle_here():
            return False
        self._run_inline(message, None)
        return True

    def ask_inline(self, message: Any) -> GeventFuture[Any] | None:
        """Answer the asked ``message`` now, in the caller's greenlet, if this actor is idle.

        ``handle_inline`` for an ask (same conditions): returns a future already resolved with
        the handler's result or exception — a hub turn and two greenlet switches saved per ask —
        or None, having done nothing, when the actor is busy (the caller then asks as usual). A
        ``fail_on_error`` actor fails after an exception as in its own loop (the caller gets the
        exception too).
        """
        if not self._idle_here():
            return None
        future: GeventFuture[Any] = GeventFuture()
        self._run_inline(message, future)
        return future

    def _idle_here(self) -> bool:
        """Idle (see ``handle_inline``), and the caller runs on this actor's hub."""
        if self._handling or self.actor_stopped.is_set() or self.actor_inbox.qsize():
            return False
        greenlet = self._greenlet
        return greenlet is not None and greenlet.parent is gevent.get_hub()

    def _run_inline(self, message: Any, reply: GeventFuture[Any] | None) -> None:
        self._handling = True
        try:
            result = self._handle_receive(message)
        except Exception:
            exc_info = sys.exc_info()
            if reply is not None:
                reply.set_exception(exc_info)
            if reply is None or self.fail_on_error:  # the loop fails the actor, as its own would
                self.actor_inbox.put(Envelope(_InlineFailure(exc_info)))
        else:
            if reply is not None:
                reply.set(result)
        finally:
            self._handling = False
            done, self._inline_done = self._inline_done, None
            if done is not None:
                done.set()

    def _actor_loop_running(self) -> None:
        self._handling = False  # on_start has run
        while not self.actor_stopped.is_set():
            envelope = self.actor_inbox.get()
            if self._handling:  # an inline handler yielded after all: wait for it to finish
                done = self._inline_done = self._inline_done or gevent.event.Event()
                done.wait()
            self._handling = True
            try:
                message = envelope.message
                if message.__class__ is _InlineFailure:
                    raise message.exc_info[1].with_traceback(message.exc_info[2])
                response = self._handle_receive(message)
            except Exception:
                exc_info = sys.exc_info()
                if envelope.reply_to is not None:
                    envelope.reply_to.set_exception(exc_info)
                    if not self.fail_on_error:
                        continue
                self._fail(exc_info)
            except (gevent.Timeout, gevent.GreenletExit) as exc:
                # A BaseException must not reach pykka's loop, which would stop every actor.
                failure = ActorFailure(str(self), f"{exc.__class__.__name__} escaped a handler")
                failure.__cause__ = exc
                exc_info = (ActorFailure, failure, exc.__traceback__)
                if envelope.reply_to is not None:
                    envelope.reply_to.set_exception(exc_info)
                self._fail(exc_info)
            else:
                if envelope.reply_to is not None:
                    envelope.reply_to.set(response)
            finally:
                self._handling = False

    def _fail(self, exc_info: OptExcInfo) -> None:
        self._handle_failure(*exc_info)
        try:
            self.on_failure(*exc_info)
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.actor_failure is None:
            self.actor_failure = exception_value or (exception_type or ActorFailure)(
                "unknown failure"
            )
        self._cancel_timers()
        super()._handle_failure(exception_type, exception_value, traceback)

    def _stop(self) -> None:
        self._cancel_timers()
        super()._stop()

    def _actor_loop_teardown(self) -> None:
        self._cancel_timers()
        super()._actor_loop_teardown()


class _InlineFailure:
    """An exception raised by an inline handler, re-raised in the actor's loop to fail it."""

    __slots__ = ("exc_info",)

    def __init__(self, exc_info: OptExcInfo) -> None:
        self.exc_info = exc_info


def ask_now(ref: pykka.ActorRef[Any], message: Any) -> pykka.Future[Any]:
    """``ref.ask(message, block=False)``, answered in the calling greenlet when the actor is an
    idle ``GeventActor`` of this hub (``GeventActor.ask_inline``). Only for messages whose
    handler never yields. A stopped actor's future fails with ``pykka.ActorDeadError``, as
    ``ask``'s does."""
    actor = ref._actor_weakref()
    if getattr(actor, "inline_capable", False):
        future = actor.ask_inline(message)  # type: ignore[union-attr]
        if future is not None:
            return future
    return ref.ask(message, block=False)


def tell_now(ref: pykka.ActorRef[Any], message: Any) -> None:
    """``ref.tell(message)``, handled in the calling greenlet when the actor is an idle
    ``GeventActor`` (``GeventActor.handle_inline``). Only for messages whose handler never
    yields. Raises ``pykka.ActorDeadError`` as ``tell`` does."""
    actor = ref._actor_weakref()
    if not (getattr(actor, "inline_capable", False) and actor.handle_inline(message)):  # type: ignore[union-attr]
        ref.tell(message)


def call_now(ref: pykka.ActorRef[Any], method: str, *args: Any) -> pykka.Future[Any]:
    """``ref.proxy().method(*args)`` without building a proxy, answered inline like
    ``ask_now`` when the actor is idle. Only for methods that never yield."""
    return ask_now(ref, ProxyCall(attr_path=(method,), args=args, kwargs={}))


def watch(
    ref: pykka.ActorRef[Any], callback: Callable[[pykka.ActorRef[Any], BaseException | None], None]
) -> None:
    """Call ``callback(ref, failure)`` from the hub once the actor's greenlet has ended.

    ``failure`` is the exception that failed the actor, or None after a clean stop. If the actor
    has already ended, the callback runs on the next turn of the hub.
    """
    actor = actor_of(ref)
    if not isinstance(actor, GeventActor) or actor._greenlet is None:
        raise TypeError(f"{ref} is not a started GeventActor")
    actor._greenlet.rawlink(lambda _g: callback(ref, actor.actor_failure))


def actor_of(ref: pykka.ActorRef[Any]) -> pykka.Actor | None:
    """The actor object behind a ref (runtime internals and tests only), or None once collected."""
    return ref._actor_weakref()


def is_registered(ref: pykka.ActorRef[Any]) -> bool:
    """True while the registry still lists the actor."""
    return any(r.actor_urn == ref.actor_urn for r in ActorRegistry.get_all())
