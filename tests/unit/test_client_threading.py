"""The client's threading model: its own hub thread in plain programs, the caller's hub in
monkey-patched gevent programs, and no deadlock in either."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import gevent
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
