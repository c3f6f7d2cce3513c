"""Supervisor fault injection at actor level: restart, escalation, fail-stop, shutdown order."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pykka
import pytest

from runtime.actor import GeventActor, watch
from runtime.directory import Directory
from runtime.supervisor import ChildSpec, Restart, Strategy, Supervisor

pytestmark = pytest.mark.timeout(20)


class Worker(GeventActor):
    """Counts messages; crashes on "crash"; records start/stop in a shared journal."""

    def __init__(self, name: str, journal: list[str]) -> None:
        super().__init__()
        self.name = name
        self.journal = journal
        self.count = 0

    def on_start(self) -> None:
        self.journal.append(f"start {self.name}")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} crashed")
        if message == "inc":
            self.count += 1
        return self.count


def spec(name: str, journal: list[str], restart: Restart = Restart.PERMANENT) -> ChildSpec:
    return ChildSpec(name=name, start=lambda: Worker.start(name, journal), restart=restart)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition cooperatively (the hub runs between checks); fail after timeout."""
    with gevent.Timeout(timeout, AssertionError(f"condition not met in {timeout}s")):
        while not predicate():
            gevent.sleep(0.005)


def watch_exit(ref: pykka.ActorRef[Any]) -> tuple[gevent.event.Event, list[Any]]:
    done = gevent.event.Event()
    box: list[Any] = []
    watch(ref, lambda _r, failure: (box.append(failure), done.set()))
    return done, box


def test_crashed_child_restarts_with_fresh_ref_and_rebuilt_state() -> None:
    # Given a supervisor with one permanent worker that has counted to 3
    journal: list[str] = []
    directory = Directory()
    sup = Supervisor.start("sup", [spec("w", journal)], directory=directory)
    first = directory.require("w")
    for _ in range(3):
        first.tell("inc")
    assert first.ask("get", timeout=5) == 3
    # When the worker crashes on a message
    first.tell("crash")
    # Then a new incarnation appears under the same name with fresh state
    wait_for(lambda: directory.get("w") is not None and directory.get("w") != first)
    second = directory.require("w")
    assert second.actor_urn != first.actor_urn
    assert second.ask("get", timeout=5) == 0
    assert not first.is_alive()
    assert sup.proxy().lookup("w").get(timeout=5) == second
    assert journal.count("start w") == 2


def test_directory_proxy_is_kept_per_incarnation() -> None:
    # Given a supervised worker and the directory's proxy of it
    journal: list[str] = []
    directory = Directory()
    sup = Supervisor.start("sup", [spec("w", journal)], directory=directory)
    first = directory.require("w")
    proxy = directory.proxy("w")
    first.tell("inc")
    # Then the same proxy comes back while that incarnation lives, and it reaches the actor
    assert directory.proxy("w") is proxy
    assert proxy.count.get(timeout=5) == 1
    # When the worker crashes and restarts
    first.tell("crash")
    wait_for(lambda: directory.get("w") is not None and directory.get("w") != first)
    # Then the directory hands out a proxy of the new incarnation (fresh state)
    fresh = directory.proxy("w")
    assert fresh is not proxy
    assert fresh.actor_ref == directory.require("w")
    assert fresh.count.get(timeout=5) == 0
    sup.stop()


def test_repeated_crashes_escalate_to_parent() -> None:
    # Given a root supervising a child supervisor that allows 2 restarts in 10 s
    journal: list[str] = []
    inner_dir = Directory()
    root_dir = Directory()

    def start_inner() -> pykka.ActorRef[Any]:
        return Supervisor.start(
            "inner",
            [spec("w", journal)],
            directory=inner_dir,
            max_restarts=2,
            within_seconds=10,
            backoff_initial=0.0,
        )

    root = Supervisor.start(
        "root",
        [ChildSpec(name="inner", start=start_inner, restart=Restart.TEMPORARY)],
        directory=root_dir,
    )
    inner = root_dir.require("inner")
    inner_done, inner_box = watch_exit(inner)
    # When the worker crashes three times
    for _ in range(3):
        wait_for(lambda: inner_dir.get("w") is not None)
        victim = inner_dir.require("w")
        victim.tell("crash")
        wait_for(lambda v=victim: inner_dir.get("w") not in (None, v) or not inner.is_alive())
    # Then the inner supervisor fails with the intensity reason, its parent sees it
    assert inner_done.wait(5)
    assert "restart intensity exceeded" in str(inner_box[0])
    wait_for(lambda: root_dir.get("inner") is None)
    assert root.is_alive()
    # And no zombie: no worker or inner supervisor is left in the registry
    assert {r.actor_class.__name__ for r in pykka.ActorRegistry.get_all()} == {"Supervisor"}


def test_fail_stop_child_stops_subtree_and_says_why() -> None:
    journal: list[str] = []
    directory = Directory()
    sup = Supervisor.start(
        "broker",
        [spec("writer", journal, Restart.FAIL_STOP), spec("queue", journal)],
        directory=directory,
    )
    done, box = watch_exit(sup)
    # When the fail-stop child crashes
    directory.require("writer").tell("crash")
    # Then the whole subtree stops and the reason names the child and its error
    assert done.wait(5)
    assert "fail-stop child writer failed" in str(box[0])
    assert "writer crashed" in str(box[0])
    assert "stop queue" in journal
    assert pykka.ActorRegistry.get_all() == []
    assert directory.names() == []


def test_rest_for_one_restarts_later_siblings_in_order() -> None:
    journal: list[str] = []
    directory = Directory()
    Supervisor.start(
        "sup",
        [spec("a", journal), spec("b", journal), spec("c", journal)],
        strategy=Strategy.REST_FOR_ONE,
        directory=directory,
    )
    a, c = directory.require("a"), directory.require("c")
    wait_for(lambda: journal.count("start c") == 1)
    journal.clear()
    # When b crashes
    directory.require("b").tell("crash")
    wait_for(lambda: journal.count("start c") == 1)
    # Then c is stopped, b and c restart in order, a is untouched
    assert journal == ["stop c", "start b", "start c"]
    assert directory.require("a") == a
    assert directory.require("c") != c


def test_transient_and_temporary_policies() -> None:
    journal: list[str] = []
    directory = Directory()
    Supervisor.start(
        "sup",
        [spec("transient", journal, Restart.TRANSIENT), spec("temp", journal, Restart.TEMPORARY)],
        directory=directory,
    )
    transient = directory.require("transient")
    # A clean stop of a transient child is not restarted
    transient.stop(timeout=5)
    gevent.sleep(0.05)
    assert directory.get("transient") is None
    # A crash of a temporary child is not restarted either
    directory.require("temp").tell("crash")
    wait_for(lambda: directory.get("temp") is None)
    gevent.sleep(0.05)
    assert journal.count("start temp") == 1


def test_backoff_delays_consecutive_restarts() -> None:
    journal: list[str] = []
    directory = Directory()
    Supervisor.start(
        "sup",
        [spec("w", journal)],
        directory=directory,
        backoff_initial=0.2,
        max_restarts=10,
        within_seconds=10,
    )
    directory.require("w").tell("crash")
    wait_for(lambda: journal.count("start w") == 2)  # first restart is immediate
    directory.require("w").tell("crash")
    gevent.sleep(0.05)
    # The second consecutive restart waits for the backoff
    assert journal.count("start w") == 2
    wait_for(lambda: journal.count("start w") == 3)


def test_ordered_shutdown_is_reverse_start_order() -> None:
    journal: list[str] = []
    sup = Supervisor.start("sup", [spec(n, journal) for n in "abc"])
    sup.stop(timeout=5)
    assert journal == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_replace_child_is_the_promotion_hook() -> None:
    journal: list[str] = []
    directory = Directory()
    sup = Supervisor.start("sup", [spec("broker-a-1", journal)], directory=directory)
    old = directory.require("broker-a-1")
    # When failover swaps the slave's spec for a master's
    new_ref = (
        sup.proxy()
        .replace_child(
            ChildSpec(name="broker-a-1", start=lambda: Worker.start("promoted", journal))
        )
        .get(timeout=5)
    )
    # Then the old incarnation stopped and the directory points at the new one
    assert not old.is_alive()
    assert directory.require("broker-a-1") == new_ref
    assert journal[-1] == "start promoted"


def test_child_failing_in_on_start_counts_as_crash() -> None:
    attempts: list[int] = []

    class Flaky(GeventActor):
        def on_start(self) -> None:
            attempts.append(1)
            if len(attempts) < 3:
                raise RuntimeError("not yet")

    directory = Directory()
    Supervisor.start(
        "sup",
        [ChildSpec(name="f", start=Flaky.start)],
        directory=directory,
        backoff_initial=0.01,
        max_restarts=5,
    )
    wait_for(lambda: len(attempts) == 3 and directory.get("f") is not None)
    assert directory.require("f").is_alive()


class SlowStopper(GeventActor):
    """Its stop waits until ``release`` is set."""

    def __init__(self, release: gevent.event.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        self.release.wait(10)


def test_a_child_that_does_not_stop_in_time_is_recorded_in_the_directory() -> None:
    # Given a tree with a child whose stop outlasts its 0.1 s shutdown timeout, and one that
    # stops at once
    journal: list[str] = []
    release = gevent.event.Event()
    directory = Directory()
    sup = Supervisor.start(
        "root",
        [
            spec("quick", journal),
            ChildSpec(name="slow", start=lambda: SlowStopper.start(release), shutdown_timeout=0.1),
        ],
        directory=directory,
    )
    # When the tree stops
    sup.stop(block=True, timeout=5)
    # Then the slow child is named as not stopped in time, the quick one still stopped
    assert directory.stop_timeouts == ["slow"]
    assert journal[-1] == "stop quick"
    release.set()
