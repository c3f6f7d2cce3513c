"""One behaviour suite, run on pykka's ThreadingActor and on our GeventActor.

GeventActor must be a drop-in: ask/tell, proxies, future map/join/filter, stop, on_failure,
registry, and timeouts raising pykka.Timeout.
"""

from __future__ import annotations

from typing import Any

import gevent
import pykka
import pytest

from runtime.actor import (
    GeventActor,
    GeventFuture,
    actor_of,
    ask_now,
    call_now,
    new_future,
    offload,
    others_ready,
    tell_now,
    watch,
)
from tests.actors.conftest import Runtime

pytestmark = pytest.mark.timeout(20)


def make_actor(runtime: Runtime) -> type[pykka.Actor]:
    class Counter(runtime.actor_class):  # type: ignore[misc, valid-type]
        def __init__(self, stopped: Any = None, failed: Any = None) -> None:
            super().__init__()
            self.count = 0
            self.stopped = stopped
            self.failed = failed
            self.nested = {"value": 1}

        def on_receive(self, message: Any) -> Any:
            if message == "boom":
                raise RuntimeError("boom")
            if message == "inc":
                self.count += 1
                return self.count
            return super().on_receive(message)

        def add(self, n: int) -> int:
            self.count += n
            return self.count

        def fail(self) -> None:
            raise ValueError("bad")

        def slow(self, seconds: float) -> str:
            if runtime.name == "gevent":
                gevent.sleep(seconds)
            else:
                import time

                time.sleep(seconds)
            return "done"

        def on_stop(self) -> None:
            if self.stopped is not None:
                self.stopped.set()

        def on_failure(self, *_exc: Any) -> None:
            if self.failed is not None:
                self.failed.set()

    return Counter


def test_ask_and_tell_preserve_order(runtime: Runtime) -> None:
    ref = make_actor(runtime).start()
    for _ in range(10):
        ref.tell("inc")
    # Given ten tells, When we ask, Then the ask is handled after all of them.
    assert ref.ask("inc", timeout=5) == 11


def test_proxy_calls_attributes_and_nested_attributes(runtime: Runtime) -> None:
    proxy = make_actor(runtime).start().proxy()
    assert proxy.add(5).get(timeout=5) == 5
    assert proxy.count.get(timeout=5) == 5
    proxy.count = 42
    assert proxy.count.get(timeout=5) == 42
    assert proxy.nested.get(timeout=5) == {"value": 1}


def test_exception_in_ask_reaches_caller_and_actor_survives(runtime: Runtime) -> None:
    proxy = make_actor(runtime).start().proxy()
    with pytest.raises(ValueError, match="bad"):
        proxy.fail().get(timeout=5)
    assert proxy.add(1).get(timeout=5) == 1


def test_exception_in_tell_calls_on_failure_and_unregisters(runtime: Runtime) -> None:
    failed = runtime.event_factory()
    ref = make_actor(runtime).start(failed=failed)
    ref.tell("boom")
    assert failed.wait(5)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("inc", timeout=5)
    assert ref not in pykka.ActorRegistry.get_all()


def test_future_map_join_filter(runtime: Runtime) -> None:
    proxy = make_actor(runtime).start().proxy()
    doubled = proxy.add(3).map(lambda v: v * 2)
    assert doubled.get(timeout=5) == 6
    joined = pykka.get_all([proxy.add(1), proxy.add(1)], timeout=5)
    assert joined == [4, 5]
    both = proxy.add(0).join(proxy.add(0)).get(timeout=5)
    assert both == [5, 5]
    futures = runtime.future_factory()
    futures.set([1, 2, 3, 4])
    assert futures.filter(lambda v: v % 2 == 0).get(timeout=5) == [2, 4]


def test_get_timeout_raises_pykka_timeout(runtime: Runtime) -> None:
    proxy = make_actor(runtime).start().proxy()
    with pytest.raises(pykka.Timeout):
        proxy.slow(0.3).get(timeout=0.05)
    future = runtime.future_factory()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)


def test_future_cannot_be_set_twice(runtime: Runtime) -> None:
    import queue

    future = runtime.future_factory()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set(2)
    assert future.get(timeout=1) == 1


def test_stop_runs_on_stop_and_unregisters(runtime: Runtime) -> None:
    stopped = runtime.event_factory()
    ref = make_actor(runtime).start(stopped=stopped)
    assert ref.is_alive()
    assert ref in pykka.ActorRegistry.get_all()
    assert ref.stop(timeout=5) is True
    assert stopped.wait(5)
    assert not ref.is_alive()
    assert pykka.ActorRegistry.get_all() == []
    assert ref.stop(timeout=5) is False


def test_registry_lookup_by_class(runtime: Runtime) -> None:
    cls = make_actor(runtime)
    a, b = cls.start(), cls.start()
    found = pykka.ActorRegistry.get_by_class(cls)
    assert {r.actor_urn for r in found} == {a.actor_urn, b.actor_urn}
    assert pykka.ActorRegistry.get_by_urn(a.actor_urn) == a


def test_stop_all_stops_everything(runtime: Runtime) -> None:
    cls = make_actor(runtime)
    refs = [cls.start() for _ in range(5)]
    pykka.ActorRegistry.stop_all(block=True, timeout=5)
    assert not any(r.is_alive() for r in refs)


# --- GeventActor only ---------------------------------------------------------------------


class Sleeper(GeventActor):
    def __init__(self, log: list[Any] | None = None) -> None:
        super().__init__()
        self.log = log if log is not None else []

    def nap(self) -> None:
        with gevent.Timeout(0.01):
            gevent.sleep(1)

    def ping(self) -> str:
        return "pong"

    def on_receive(self, message: Any) -> Any:
        self.log.append(message)
        return None


class Durable(GeventActor):
    fail_on_error = True

    def bad(self) -> None:
        raise OSError("fsync failed")


def test_gevent_timeout_escaping_a_handler_fails_only_that_actor() -> None:
    bystander = Sleeper.start()
    victim = Sleeper.start()
    # When a gevent.Timeout (a BaseException) escapes a handler
    with pytest.raises(Exception, match="Timeout escaped a handler"):
        victim.proxy().nap().get(timeout=5)
    # Then only that actor stopped: the bystander still answers
    assert bystander.proxy().ping().get(timeout=5) == "pong"
    assert not victim.is_alive()


def test_fail_on_error_stops_actor_after_replying() -> None:
    ref = Durable.start()
    with pytest.raises(OSError, match="fsync failed"):
        ref.proxy().bad().get(timeout=5)
    done = gevent.event.Event()
    failures: list[BaseException | None] = []
    watch(ref, lambda _r, f: (failures.append(f), done.set()))
    assert done.wait(5)
    assert isinstance(failures[0], OSError)
    assert not ref.is_alive()


def test_watch_reports_clean_stop_as_none() -> None:
    ref = Sleeper.start()
    done = gevent.event.Event()
    seen: list[BaseException | None] = [RuntimeError("unset")]
    watch(ref, lambda _r, f: (seen.__setitem__(0, f), done.set()))
    ref.stop(timeout=5)
    assert done.wait(5)
    assert seen[0] is None


def test_send_every_ticks_and_stops_with_actor() -> None:
    log: list[Any] = []
    ref = Sleeper.start(log)
    actor = actor_of(ref)
    assert isinstance(actor, Sleeper)
    actor.send_every(0.01, "tick")
    actor.send_after(0.0, "once")
    deadline = gevent.Timeout(5)
    with deadline:
        while log.count("tick") < 3 or "once" not in log:
            gevent.sleep(0.01)
    ref.stop(timeout=5)
    assert actor._timers == []
    assert log.count("once") == 1


def test_offload_runs_in_a_thread_and_keeps_hub_free() -> None:
    import threading
    import time

    main_ident = threading.get_ident()
    ticks: list[int] = []

    def ticker() -> None:
        for i in range(5):
            ticks.append(i)
            gevent.sleep(0.01)

    g = gevent.spawn(ticker)
    # When a blocking call is offloaded, Then the hub keeps running other greenlets meanwhile.
    ident = offload(lambda: (time.sleep(0.1), threading.get_ident())[1])
    assert ident != main_ident
    assert len(ticks) == 5
    g.join(timeout=5)


def test_offload_raises_in_the_caller_only(capfd: pytest.CaptureFixture[str]) -> None:
    def broken() -> None:
        raise ValueError("disk on fire")

    # When an offloaded call raises, Then the caller gets the exception with its traceback
    with pytest.raises(ValueError, match="disk on fire") as raised:
        offload(broken)
    assert raised.traceback[-1].name == "broken"
    # And the hub printed nothing (gevent's pool reports a failed task through the hub's error
    # handler before it hands the caller the result, so it would be out by now)
    assert "failed with" not in capfd.readouterr().err


def test_new_future_done_callback() -> None:
    future: GeventFuture[int] = new_future()
    seen: list[int] = []
    future.add_done_callback(lambda f: seen.append(f.get(timeout=0)))
    assert not future.done()
    future.set(7)
    gevent.sleep(0)
    assert seen == [7]


class Recorder(GeventActor):
    """Records which greenlet handled each message; "boom" raises, "nap" yields."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, Any]] = []

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "nap":
            gevent.sleep(0.01)
        self.seen.append((message, gevent.getcurrent()))
        return None


def test_handle_inline_runs_in_the_caller_when_idle_and_in_order_otherwise() -> None:
    ref = Recorder.start()
    actor = actor_of(ref)
    assert isinstance(actor, Recorder)
    ref.ask("sync", timeout=5)  # on_start has run and the loop is waiting
    # When the actor is idle, Then the message is handled here, before handle_inline returns
    assert actor.handle_inline("inline")
    assert actor.seen[-1] == ("inline", gevent.getcurrent())
    # When its inbox holds a message, Then nothing is done inline: order is kept
    ref.tell("queued")
    assert not actor.handle_inline("late")
    assert [m for m, _g in actor.seen] == ["sync", "inline"]
    ref.tell("late")
    ref.ask("sync", timeout=5)
    assert [m for m, _g in actor.seen] == ["sync", "inline", "queued", "late", "sync"]
    ref.stop(timeout=5)
    # When it has stopped, Then nothing is handled inline
    assert not actor.handle_inline("after")


def test_handle_inline_is_refused_before_on_start_ran() -> None:
    ready = gevent.event.Event()

    class Slow(Recorder):
        def on_start(self) -> None:
            ready.wait(5)

    ref = Slow.start()
    actor = actor_of(ref)
    assert isinstance(actor, Slow)
    assert not actor.handle_inline("early")
    ready.set()
    ref.ask("sync", timeout=5)
    assert actor.handle_inline("now")
    ref.stop(timeout=5)


def test_an_exception_in_an_inline_handler_fails_the_actor_in_its_own_loop() -> None:
    ref = Recorder.start()
    actor = actor_of(ref)
    assert isinstance(actor, Recorder)
    ref.ask("sync", timeout=5)
    done = gevent.event.Event()
    failures: list[BaseException | None] = []
    watch(ref, lambda _r, f: (failures.append(f), done.set()))
    # When an inline handler raises, Then the caller is not told, and the actor fails
    assert actor.handle_inline("boom")
    assert done.wait(5)
    assert isinstance(failures[0], RuntimeError)
    assert not ref.is_alive()


def test_a_yielding_inline_handler_still_handles_one_message_at_a_time() -> None:
    ref = Recorder.start()
    actor = actor_of(ref)
    assert isinstance(actor, Recorder)
    ref.ask("sync", timeout=5)
    # When an inline handler yields and a message arrives meanwhile
    g = gevent.spawn(actor.handle_inline, "nap")
    gevent.sleep(0)
    ref.tell("during")
    assert not actor.handle_inline("refused")
    # Then the loop waits for the inline handler before handling the next message
    assert g.get(timeout=5)
    ref.ask("sync", timeout=5)
    assert [m for m, _g in actor.seen] == ["sync", "nap", "during", "sync"]
    ref.stop(timeout=5)


class Answerer(Recorder):
    """Recorder that answers asks with (message, handling greenlet) and has a method."""

    def on_receive(self, message: Any) -> Any:
        super().on_receive(message)
        return self.seen[-1]

    def where(self, tag: str) -> tuple[str, Any]:
        return tag, gevent.getcurrent()


def test_ask_now_answers_in_the_caller_when_idle_and_through_the_inbox_otherwise() -> None:
    ref = Answerer.start()
    ref.ask("sync", timeout=5)
    here = gevent.getcurrent()
    # When the actor is idle, Then the future comes back resolved, handled in this greenlet
    future = ask_now(ref, "inline")
    assert future.get(timeout=0) == ("inline", here)
    # And a method call without a proxy works the same way
    assert call_now(ref, "where", "m").get(timeout=0) == ("m", here)
    # When its inbox holds a message, Then the ask waits its turn (the actor's greenlet answers)
    ref.tell("queued")
    message, greenlet = ask_now(ref, "late").get(timeout=5)
    assert message == "late" and greenlet is not here
    actor = actor_of(ref)
    assert isinstance(actor, Answerer)
    assert [m for m, _g in actor.seen] == ["sync", "inline", "queued", "late"]
    # When the handler raises, Then the caller gets the exception and (not fail_on_error)
    # the actor keeps serving
    with pytest.raises(RuntimeError):
        ask_now(ref, "boom").get(timeout=5)
    assert ref.ask("sync", timeout=5)[0] == "sync"
    # When the actor has stopped, Then the future fails as ask's does
    ref.stop(timeout=5)
    with pytest.raises(pykka.ActorDeadError):
        ask_now(ref, "after").get(timeout=5)


def test_ask_now_fails_a_fail_on_error_actor_after_answering() -> None:
    class Strict(Answerer):
        fail_on_error = True

    ref = Strict.start()
    ref.ask("sync", timeout=5)
    done = gevent.event.Event()
    watch(ref, lambda _r, _f: done.set())
    # When an inline-answered handler raises, Then the caller gets it and the actor fails
    with pytest.raises(RuntimeError):
        ask_now(ref, "boom").get(timeout=0)
    assert done.wait(5)
    assert not ref.is_alive()


def test_tell_now_handles_inline_when_idle_and_queues_otherwise() -> None:
    ref = Recorder.start()
    actor = actor_of(ref)
    assert isinstance(actor, Recorder)
    ref.ask("sync", timeout=5)
    # When idle, Then handled before tell_now returns, in this greenlet
    tell_now(ref, "now")
    assert actor.seen[-1] == ("now", gevent.getcurrent())
    # When busy, Then queued behind what is already there
    ref.tell("queued")
    tell_now(ref, "later")
    ref.ask("sync", timeout=5)
    assert [m for m, _g in actor.seen] == ["sync", "now", "queued", "later", "sync"]
    ref.stop(timeout=5)


def test_others_ready_sees_a_spawned_greenlet_waiting_to_run() -> None:
    # (reads gevent's loop internals: this fails if an upgrade removes them)
    gevent.sleep(0)
    g = gevent.spawn(lambda: None)
    assert others_ready()
    g.join(timeout=5)
    deadline = gevent.Timeout(5)
    with deadline:
        while others_ready():
            gevent.sleep(0)
    assert not others_ready()
