"""ClientHub: the gevent hub the client's actors run on, and the bridge to the caller's threads.

Two modes, chosen when the hub is made:

* **plain** (the program did not monkey-patch ``threading``): the hub runs on its own OS thread,
  ``actormq-client-hub``. gevent objects are not thread-safe, so other threads never touch the
  actors directly: they hand work to the hub with ``loop.run_callback_threadsafe`` and wait on
  real locks that the hub releases.
* **patched** (``gevent.monkey.patch_all()`` ran first): ``threading`` is greenlets, so the
  "hub thread" is a greenlet on the caller's own hub; waits yield to that hub and nothing can
  deadlock as long as the caller waits through the client's API.

Work from another OS thread reaches the hub through an inbox (a deque) and one async watcher
that the hub drains. Not ``loop.run_callback_threadsafe``: under libev it increments the loop's
reference count from the foreign thread while the hub runs ``ev_run`` without the GIL and stops
expired timers (a decrement), so increments get lost; the count then reaches zero with work
still pending and the hub thread dies of ``LoopExit`` (tests/unit/test_client_threading.py).
``ev_async_send`` is the one libev call made for other threads.

The public client objects are synchronous and thread-safe; every one of them goes through
``call`` (run a function in a fresh greenlet on the hub and wait for its result), ``post`` (run a
non-blocking function as a hub callback) or a ``Waiter`` completed from the hub.

One hub is shared by every client object in the process (``acquire_shared``/``release_shared``);
tests may make private hubs (e.g. for a fake broker that must not share the client's thread).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.lock
import gevent.monkey

from actors.client.errors import ClientStateError, RequestTimeoutError
from runtime import workers

T = TypeVar("T")

_real_allocate_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_real_get_ident = gevent.monkey.get_original("_thread", "get_ident")
_RealThread = gevent.monkey.get_original("threading", "Thread")


def threading_is_patched() -> bool:
    """True when gevent monkey-patched ``threading`` in this process."""
    return gevent.monkey.is_module_patched("threading")


class Waiter:
    """A one-shot result slot: the hub sets it, any thread waits on it (a light future).

    ``set``/``set_error`` must run on the hub (one at a time); the first one wins.
    """

    __slots__ = ("_done", "_lock", "error", "value")

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        lock.acquire()
        self._done = False
        self.value: Any = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done

    def set(self, value: Any = None) -> None:
        if not self._done:
            self._done = True
            self.value = value
            self._lock.release()

    def set_error(self, error: BaseException) -> None:
        if not self._done:
            self._done = True
            self.error = error
            self._lock.release()

    def wait(self, timeout: float | None, what: str = "request") -> Any:
        """The value, or raise the error; RequestTimeoutError when nothing came in time."""
        if not self._done:
            acquired = self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0))
            if not acquired:
                raise RequestTimeoutError(what, timeout or 0.0)
            self._lock.release()
        if self.error is not None:
            raise self.error
        return self.value


class ClientHub:
    """A gevent hub plus the thread-safe bridge to it. See the module docstring."""

    def __init__(self, name: str = "actormq-client-hub", *, patched: bool | None = None) -> None:
        self.name = name
        self.patched = threading_is_patched() if patched is None else patched
        self._hub: Any = None
        self._loop: Any = None
        self._thread_ident: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped: gevent.event.Event | None = None
        self._inbox: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._wake: Any = None  # the async watcher that drains the inbox on the hub
        self._post_lock = _real_allocate_lock()  # posts vs stop: no send to a closed watcher
        self._running = False
        self._patched_thread: int | None = None  # patched mode: the OS thread of the hub

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> ClientHub:
        if self._running:
            return self
        if self.patched:
            # Same OS thread as the caller: the caller's hub is ours.
            self._hub = gevent.get_hub()
            self._loop = self._hub.loop
            self._thread_ident = None
            self._patched_thread = _real_get_ident()
            # Not a reference: the caller's hub may exit when only this watcher is left.
            self._wake = self._loop.async_(ref=False)
            self._wake.start(self._drain)
            self._running = True
            return self
        ready = _real_allocate_lock()  # a real lock even if threading is patched later
        ready.acquire()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._hub = gevent.get_hub()
                self._loop = self._hub.loop
                self._thread_ident = _real_get_ident()
                self._stopped = gevent.event.Event()
                self._wake = self._loop.async_()  # a reference: keeps the hub's loop running
                self._wake.start(self._drain)
            except BaseException as exc:  # pragma: no cover - hub creation failed
                failure.append(exc)
                ready.release()
                return
            ready.release()
            self._stopped.wait()
            self._wake.close()
            # Let greenlets that were told to finish run their last steps.
            with contextlib.suppress(Exception):
                gevent.sleep(0)
            with contextlib.suppress(Exception):
                self._hub.destroy(destroy_loop=True)

        thread = _RealThread(target=run, name=self.name, daemon=True)
        thread.start()
        if not ready.acquire(timeout=10):
            raise ClientStateError(self.name, "not starting (hub thread did not come up)")
        if failure:
            raise failure[0]
        self._thread = thread
        self._running = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the hub thread (plain mode). Actors must have been stopped before."""
        with self._post_lock:
            if not self._running:
                return
            self._running = False
            if self.patched:
                # What other threads posted still runs, as hub callbacks; the watcher is
                # closed where it lives (left to the hub's end when stop() runs elsewhere).
                if self._on_hub_thread():
                    while self._inbox:
                        fn, args = self._inbox.popleft()
                        self._loop.run_callback(fn, *args)
                    self._wake.close()
                return
            self._inbox.append((self._stopped.set, ()))  # type: ignore[union-attr]
            self._wake.send()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._running

    def in_hub_thread(self) -> bool:
        """True when the caller runs on the hub's OS thread (plain mode only)."""
        return self._thread_ident is not None and _real_get_ident() == self._thread_ident

    # -- bridge ------------------------------------------------------------------------

    def new_waiter(self) -> Waiter:
        """A Waiter that a caller of this hub's mode can block on."""
        if self.patched:
            return Waiter(gevent.lock.Semaphore(1))
        return Waiter(_real_allocate_lock())

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the hub as a callback (it must not block). Any thread."""
        if self._on_hub_thread():
            if not self._running:
                raise ClientStateError("hub", "stopped")
            self._loop.run_callback(fn, *args)
            return
        with self._post_lock:
            if not self._running:
                raise ClientStateError("hub", "stopped")
            self._inbox.append((fn, args))
            self._wake.send()

    def _on_hub_thread(self) -> bool:
        if self.patched:
            return _real_get_ident() == self._patched_thread
        return _real_get_ident() == self._thread_ident

    def _drain(self) -> None:
        """On the hub (the async watcher's callback): run what other threads posted, in order.
        An error is the hub's to report, as for a callback; the rest still run."""
        inbox = self._inbox
        while inbox:
            fn, args = inbox.popleft()
            try:
                fn(*args)
            except Exception:
                self._hub.handle_error(fn, *sys.exc_info())

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a non-blocking ``fn(*args)`` on the hub: at once when the caller is a greenlet of
        this hub (patched mode, on the hub's OS thread: a hub callback and an extra turn of the
        loop saved, e.g. per send), else as a callback (``post``). Any thread."""
        if not self._running:
            raise ClientStateError("hub", "stopped")
        if (
            self.patched
            and _real_get_ident() == self._patched_thread  # not a thread-pool thread
            and gevent.getcurrent() is not self._hub
        ):
            fn(*args)
        else:
            self.post(fn, *args)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a greenlet of its own on the hub (may block; a reused one:
        ``runtime.workers``). Any thread."""
        self.post(workers.submit, fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> Waiter:
        """Run ``fn(*args)`` in a greenlet of its own on the hub; the Waiter gets its result."""
        waiter = self.new_waiter()
        self.post(workers.submit, _run_into, waiter, fn, args)
        return waiter

    def call(
        self, fn: Callable[..., T], *args: Any, timeout: float | None = 30.0, what: str = "call"
    ) -> T:
        """Run ``fn(*args)`` in a greenlet on the hub and return its result (or raise its error).

        From the hub's own thread in plain mode this would deadlock: ClientStateError instead.
        In patched mode, or from a greenlet already on the hub, it runs ``fn`` in a greenlet and
        waits cooperatively.
        """
        if self.in_hub_thread():
            raise ClientStateError(
                what, "being called from its own hub thread (a callback must not block on it)"
            )
        return self.submit(fn, *args).wait(timeout, what)

    def executor(self, workers: int, name: str) -> concurrent.futures.Executor:
        """A pool for user code (listeners, callbacks): real threads in plain mode, greenlets
        when ``threading`` is patched. Submitting from a hub greenlet never blocks."""
        return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)


def _run_into(waiter: Waiter, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        value = fn(*args)
    except BaseException as exc:
        waiter.set_error(exc)
    else:
        waiter.set(value)


# -- the shared hub ------------------------------------------------------------------------

_shared_lock = threading.Lock()
_shared: ClientHub | None = None
_shared_users = 0


def acquire_shared() -> ClientHub:
    """The process-wide client hub, started on first use; pair with ``release_shared``."""
    global _shared, _shared_users
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = ClientHub().start()
        _shared_users += 1
        return _shared


def release_shared(hub: ClientHub) -> None:
    """Drop one user of the shared hub; the last one stops its thread."""
    global _shared, _shared_users
    with _shared_lock:
        if hub is not _shared:
            return
        _shared_users -= 1
        if _shared_users <= 0:
            _shared_users = 0
            _shared = None
            hub.stop()
