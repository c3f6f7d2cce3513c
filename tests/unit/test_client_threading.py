"""The client's threading model: its own hub thread in plain programs, the caller's hub in
monkey-patched gevent programs, and no deadlock in either."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import gevent
import gevent.event
import gevent.monkey
import pytest

from actors.client import ClientStateError, Message, Producer, SendStatus
from actors.client.hub import ClientHub, acquire_shared, release_shared
from actors.client.testing import FakeCluster
from tests.harness import REPO

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


def test_a_plain_program_gets_a_hub_thread_that_ends_with_the_last_client(
    cluster: FakeCluster,
) -> None:
    # Given a program that never monkey-patched
    assert not gevent.monkey.is_module_patched("threading")

    def hub_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "actormq-client-hub"]

    before = len(hub_threads())
    # When a producer runs, Then its actors live on a background hub thread
    with Producer("p", namesrv=cluster.namesrv) as p:
        assert len(hub_threads()) == max(before, 1)
        assert p.send(Message("Orders", b"x")).status is SendStatus.SEND_OK
    # And the thread ends when the last client shuts down (none left from other tests)
    if before == 0:
        assert hub_threads() == [] or not hub_threads()[0].is_alive()


def test_blocking_on_the_hub_from_the_hub_thread_is_refused_not_deadlocked() -> None:
    hub = acquire_shared()
    try:
        waiter = hub.submit(lambda: hub.call(lambda: 1, timeout=1))
        with pytest.raises(ClientStateError) as err:
            waiter.wait(5)
        assert "own hub thread" in str(err.value)
    finally:
        release_shared(hub)


def test_hub_run_runs_at_once_from_a_greenlet_of_a_patched_hub_and_posts_otherwise() -> None:
    # Given a hub in patched mode (the caller's own hub) and one in plain mode (its own thread)
    patched = ClientHub("test-patched", patched=True).start()
    plain = acquire_shared()
    try:
        ran: list[str] = []
        # When a greenlet of the patched hub runs something, Then it ran before run() returned
        patched.run(ran.append, "now")
        assert ran == ["now"]
        # When the hub itself does (a callback), Then it is posted, not run inside the callback
        patched.post(patched.run, ran.append, "posted")
        assert ran == ["now"]
        gevent.sleep(0)
        gevent.sleep(0)
        assert ran == ["now", "posted"]
        # When another OS thread posts to the patched hub, Then it runs on the hub's own thread
        arrived = gevent.event.Event()
        poster = threading.Thread(
            target=patched.post,
            args=(lambda: (ran.append(threading.get_ident()), arrived.set()),),
        )
        poster.start()
        assert arrived.wait(5)
        poster.join(5)
        assert ran[-1] == threading.get_ident() != poster.ident
        # When another thread asks the plain hub, Then it runs on the hub's thread
        where = plain.submit(lambda: threading.get_ident())
        done = threading.Event()
        idents: list[int] = []
        plain.run(lambda: (idents.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        assert idents[0] == where.wait(5) != threading.get_ident()
    finally:
        patched.stop()
        release_shared(plain)


def test_posts_from_many_threads_while_the_hub_runs_timers_all_run_and_the_hub_lives() -> None:
    # Given a plain hub whose loop keeps starting and expiring timers (as a busy client does)
    hub = ClientHub("test-posts", patched=False).start()
    stop_ticking = threading.Event()

    def tick() -> None:
        while not stop_ticking.is_set():
            gevent.sleep(0.00001)

    hub.spawn(tick)
    per_thread, threads = 60_000, 3
    ran = [0]
    order: dict[int, list[int]] = {n: [] for n in range(threads)}
    all_ran = threading.Event()

    def count(n: int, i: int) -> None:
        ran[0] += 1
        if i % 1000 == 0:
            order[n].append(i)
        if ran[0] == per_thread * threads:
            all_ran.set()

    def poster(n: int) -> None:
        for i in range(per_thread):
            hub.post(count, n, i)
            if i % 100 == 99:
                time.sleep(0)  # let the hub thread into its loop between bursts

    try:
        # When three other threads post callbacks as fast as they can
        posters = [threading.Thread(target=poster, args=(n,)) for n in range(threads)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(30)
        # Then every callback ran, each thread's in its order, and the hub thread is alive
        # (with loop.run_callback_threadsafe it died of LoopExit after some ten thousand)
        deadline = time.monotonic() + 30
        while not all_ran.wait(0.2):  # fail fast when the hub thread died
            assert hub._thread is not None and hub._thread.is_alive(), f"hub died after {ran[0]}"
            assert time.monotonic() < deadline, ran[0]
        assert all(seq == list(range(0, per_thread, 1000)) for seq in order.values())
        assert hub._thread is not None and hub._thread.is_alive()
        assert hub.submit(lambda: "still serving").wait(5) == "still serving"
    finally:
        stop_ticking.set()
        hub.stop()


def test_a_failing_post_is_reported_and_the_next_ones_still_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a plain hub
    hub = ClientHub("test-post-error", patched=False).start()
    try:
        done = threading.Event()

        def boom() -> None:
            raise RuntimeError("posted boom")

        # When one posted callback raises, between two that do not
        got: list[int] = []
        hub.post(got.append, 1)
        hub.post(boom)
        hub.post(lambda: (got.append(2), done.set()))
        # Then the others still ran, in order, and the error was reported by the hub
        assert done.wait(5)
        assert got == [1, 2]
        assert "posted boom" in capsys.readouterr().err
    finally:
        hub.stop()
    # And a stopped hub refuses posts with a typed error
    with pytest.raises(ClientStateError):
        hub.post(print)


PATCHED_PROGRAM = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()

    import sys, time, threading
    import gevent
    from actors.client import (ConsumeFrom, Message, Producer, PullConsumer, PushConsumer)

    ns = sys.argv[1]
    assert monkey.is_module_patched("threading")
    got = []
    done = gevent.event.Event()

    def listener(msg):
        time.sleep(0.001)  # patched: yields to the hub, other greenlets go on
        got.append(msg.body)
        if len(got) >= 360:
            done.set()

    consumer = PushConsumer("patched-push", namesrv=ns, consume_from=ConsumeFrom.FIRST,
                            consume_threads=4)
    consumer.subscribe("Orders", "*", listener)
    consumer.start()
    with Producer("patched-producer", namesrv=ns) as producer:
        def sender(n):
            for i in range(20):
                r = producer.send(Message("Orders", b"%d-%d" % (n, i)))
                assert r.status.name == "SEND_OK"
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(20)])
        jobs = [gevent.spawn(sender, n) for n in range(3)]
        gevent.joinall(jobs, timeout=30, raise_error=True)
        ticker.join(5)
        fut = producer.send_async(Message("Orders", b"async"))
        assert fut.result(10).status.name == "SEND_OK"
        # callbacks: completions arrive as hub callbacks and must not block there, even when
        # handing work to a pool has to wait for its lock (simulated by a yielding submit)
        import concurrent.futures.thread as cft
        real_submit = cft.ThreadPoolExecutor.submit
        def busy_submit(self, *a, **k):
            gevent.sleep(0)
            return real_submit(self, *a, **k)
        cft.ThreadPoolExecutor.submit = busy_submit
        called = []
        futures = [producer.send_async(Message("Orders", b"cb"), lambda r, e: called.append(e))
                   for _ in range(300)]
        assert all(f.result(10).status.name == "SEND_OK" for f in futures)
        gevent.sleep(0.1)
        assert called == [None] * 300, called[:3]
    assert done.wait(30), len(got)
    consumer.shutdown()
    lite = PullConsumer("patched-lite", namesrv=ns, consume_from=ConsumeFrom.FIRST)
    lite.subscribe("Orders", "*")
    with lite:
        polled = []
        deadline = time.monotonic() + 20
        while len(polled) < 361 and time.monotonic() < deadline:
            polled += lite.poll(0.2)
    hub_threads = [t for t in threading.enumerate() if t.name == "actormq-client-hub"]
    print("OK", len(got), len(polled), len(ticks), len(hub_threads))
    """
)


def test_inside_a_monkey_patched_gevent_program(cluster: FakeCluster) -> None:
    # Given a program that monkey-patches first thing and uses greenlets everywhere
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # When producers, a push consumer and a lite consumer run side by side in greenlets
    proc = subprocess.run(
        [sys.executable, "-c", PATCHED_PROGRAM, cluster.namesrv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    # Then everything completes (no deadlock), other greenlets kept running meanwhile, and no
    # extra OS thread was started for the client's hub
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "OK 361 361 20 0", proc.stdout + proc.stderr[-2000:]
