"""A child whose start raises once its supervisor runs (the new spec of ``replace_child``, or a
restart after a crash): it is started again with backoff, each failure logged as an ERROR with
its reason, and the supervisor fails (escalates) after ``start_retries`` failures in a row."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pykka
import pytest
from loguru import logger

from runtime.actor import GeventActor, watch
from runtime.directory import Directory
from runtime.supervisor import ChildSpec, Restart, Strategy, Supervisor

pytestmark = pytest.mark.timeout(20)

T = 5.0


class Worker(GeventActor):
    """Crashes on "crash"; answers its name otherwise."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} crashed")
        return self.name


class FlakyStart:
    """A start function that raises ``OSError`` the first ``failures`` times it is called
    (every time with ``failures=None``), then starts a Worker."""

    def __init__(self, name: str, failures: int | None) -> None:
        self.name = name
        self.failures = failures
        self.calls: list[float] = []

    def __call__(self) -> pykka.ActorRef[Any]:
        self.calls.append(time.monotonic())
        if self.failures is None or len(self.calls) <= self.failures:
            raise OSError(5, f"disk gone (attempt {len(self.calls)})")
        return Worker.start(self.name)


@pytest.fixture
def errors() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="ERROR")
    yield seen
    logger.remove(sink)


def wait_for(predicate: Any, timeout: float = T) -> None:
    """Poll a condition cooperatively (the hub runs between checks); fail after timeout."""
    with gevent.Timeout(timeout, AssertionError(f"condition not met in {timeout}s")):
        while not predicate():
            gevent.sleep(0.005)


def watch_exit(ref: pykka.ActorRef[Any]) -> tuple[gevent.event.Event, list[Any]]:
    done = gevent.event.Event()
    box: list[Any] = []
    watch(ref, lambda _r, failure: (box.append(failure), done.set()))
    return done, box


def supervisor(directory: Directory, *specs: ChildSpec, **extra: Any) -> pykka.ActorRef[Any]:
    options: dict[str, Any] = {
        "start_retries": 3,
        "start_backoff": 0.02,
        "start_backoff_max": 0.1,
        "backoff_initial": 0.0,
        "max_restarts": 10,
        "within_seconds": 10,
    }
    options.update(extra)
    return Supervisor.start("sup", list(specs), directory=directory, **options)


def test_a_replacement_that_fails_to_start_is_retried_until_it_runs(errors: list[str]) -> None:
    # Given a supervised child, and a replacement whose start fails twice, then succeeds
    directory = Directory()
    downs: list[tuple[str, str | None]] = []
    sup = supervisor(
        directory,
        ChildSpec(name="node", start=lambda: Worker.start("old")),
        on_child_down=lambda name, why: downs.append((name, why)),
    )
    old = directory.require("node")
    flaky = FlakyStart("new", failures=2)
    # When the child is replaced
    returned = sup.proxy().replace_child(ChildSpec(name="node", start=flaky)).get(timeout=T)
    # Then the call says the start did not happen (None), the old child is gone
    assert returned is None
    assert not old.is_alive()
    # and the supervisor starts the new spec again by itself, with backoff, until it runs
    wait_for(lambda: directory.get("node") is not None)
    assert directory.require("node").ask("who", timeout=T) == "new"
    assert len(flaky.calls) == 3
    assert flaky.calls[2] - flaky.calls[1] >= flaky.calls[1] - flaky.calls[0] >= 0.02
    # and each failure was logged as an ERROR naming the child and the reason
    failures = [e for e in errors if "child node failed to start" in e]
    assert len(failures) == 2, errors
    assert "disk gone (attempt 1)" in failures[0] and "retry 1 of 3" in failures[0]
    assert "disk gone (attempt 2)" in failures[1] and "retry 2 of 3" in failures[1]
    # and the parent's on_child_down heard of each (a node that is down, e.g. for the controller)
    assert [name for name, _why in downs] == ["node", "node"]
    assert sup.is_alive()
    sup.stop()


def test_a_replacement_that_never_starts_fails_the_supervisor(errors: list[str]) -> None:
    # Given a supervised child, and a replacement whose start always fails
    directory = Directory()
    sup = supervisor(directory, ChildSpec(name="node", start=lambda: Worker.start("old")))
    done, box = watch_exit(sup)
    flaky = FlakyStart("new", failures=None)
    started = time.monotonic()
    # When the child is replaced
    assert sup.proxy().replace_child(ChildSpec(name="node", start=flaky)).get(timeout=T) is None
    # Then after the first start and start_retries (3) retries, the supervisor fails (its
    # parent, or the process, sees it), with a reason naming the child and the last error
    assert done.wait(T), "the supervisor lived on with its child stopped for good"
    assert len(flaky.calls) == 4
    assert "child node failed to start 4 times in a row" in str(box[0])
    assert "disk gone (attempt 4)" in str(box[0])
    assert time.monotonic() - started < T
    assert any("giving up" in e for e in errors)
    # and nothing is left running
    assert pykka.ActorRegistry.get_all() == []


def test_a_restart_that_fails_to_start_is_retried_not_escalated_at_once(
    errors: list[str],
) -> None:
    # Given a child whose start works once, then fails twice, then works again
    directory = Directory()
    calls: list[int] = []

    def start() -> pykka.ActorRef[Any]:
        calls.append(1)
        if len(calls) in (2, 3):
            raise OSError(24, "Too many open files")
        return Worker.start("w")

    sup = supervisor(directory, ChildSpec(name="w", start=start))
    first = directory.require("w")
    # When the child crashes (its restart's start raises twice)
    first.tell("crash")
    # Then the supervisor keeps retrying and the child comes back; the supervisor lives
    wait_for(lambda: directory.get("w") not in (None, first))
    assert len(calls) == 4
    assert sup.is_alive()
    assert sum("child w failed to start" in e for e in errors) == 2
    sup.stop()


def test_a_restart_that_never_starts_escalates_after_the_retries() -> None:
    # Given a child that starts once, then never again
    directory = Directory()
    calls: list[int] = []

    def start() -> pykka.ActorRef[Any]:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(5, "Input/output error")
        return Worker.start("w")

    sup = supervisor(directory, ChildSpec(name="w", start=start), start_retries=2)
    done, box = watch_exit(sup)
    # When it crashes
    directory.require("w").tell("crash")
    # Then the supervisor fails after the restart and 2 retries, naming the child
    assert done.wait(T)
    assert len(calls) == 4
    assert "child w failed to start 3 times in a row" in str(box[0])


def test_rest_for_one_retries_a_later_sibling_that_fails_to_start() -> None:
    # Given a, b under REST_FOR_ONE, b's start failing once on its second start
    directory = Directory()
    b_calls: list[int] = []

    def start_b() -> pykka.ActorRef[Any]:
        b_calls.append(1)
        if len(b_calls) == 2:
            raise OSError(5, "Input/output error")
        return Worker.start("b")

    sup = supervisor(
        directory,
        ChildSpec(name="a", start=lambda: Worker.start("a")),
        ChildSpec(name="b", start=start_b),
        strategy=Strategy.REST_FOR_ONE,
    )
    a, b = directory.require("a"), directory.require("b")
    # When a crashes (b is stopped and restarted after it; b's start fails once)
    a.tell("crash")
    # Then both run again
    wait_for(lambda: directory.get("a") not in (None, a) and directory.get("b") not in (None, b))
    assert len(b_calls) == 3
    assert sup.is_alive()
    sup.stop()


def test_a_stopped_child_is_not_retried() -> None:
    # Given a replacement whose start fails, its retry pending (0.2 s away)
    directory = Directory()
    sup = supervisor(
        directory,
        ChildSpec(name="node", start=lambda: Worker.start("old"), restart=Restart.PERMANENT),
        start_backoff=0.2,
    )
    flaky = FlakyStart("new", failures=1)
    assert sup.proxy().replace_child(ChildSpec(name="node", start=flaky)).get(timeout=T) is None
    # When the child is stopped for good
    sup.proxy().stop_child("node").get(timeout=T)
    # Then the pending retry does not bring it back (twice its delay later)
    gevent.sleep(0.4)
    assert directory.get("node") is None
    assert len(flaky.calls) == 1
    sup.stop()
