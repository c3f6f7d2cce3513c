"""Interop scenarios shared by every real client: each test module binds them to one client.

A ``Driver`` knows how to run one client's scripts (producer, push consumer, topic set-up); the
scenario functions hold the Given/When/Then and the checks, so both clients meet the same bar.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from actors.client import Admin, SessionCredentials
from tests.harness import REPO, RuntimeProcess
from tests.interop import admin
from tests.interop.clients import ClientProcess, Event, run_to_end
from tests.interop.install import Client
from tests.profiles import one_broker

STORED = {"SEND_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE"}
QUEUES = 4  # RocketMQ's default queue count per broker for a new topic


# -- the server ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    process: RuntimeProcess
    namesrv: str
    masters: dict[str, str]  # brokerName -> address of brokerId 0
    ready: dict[str, str] = field(default_factory=dict)  # the ready line's name=address pairs

    def logs(self, lines: int = 80) -> str:
        return "\n".join(self.process.stderr[-lines:])


@contextlib.contextmanager
def running_cluster(
    data_dir: pathlib.Path, profile: str | None = None, extra: Sequence[str] = ()
) -> Iterator[Cluster]:
    """``python -m runtime`` (default profile, or ``cluster --profile``) on free ports, with
    ``extra`` arguments."""
    args = ["--log-level", os.environ.get("ACTORMQ_INTEROP_LOG_LEVEL", "INFO")]
    if profile:
        args += ["cluster", "--profile", profile]
    args += ["--ephemeral-ports", "--data-dir", str(data_dir), *extra]
    with RuntimeProcess(args) as process:
        ready = process.wait_ready(timeout=30)
        masters = {
            key.split("/")[0]: address
            for key, address in ready.items()
            if key.endswith("/0") and key.startswith("broker")
        }
        cluster = Cluster(
            process=process, namesrv=ready["namesrv"], masters=masters, ready=dict(ready)
        )
        try:
            yield cluster
        except AssertionError as exc:
            exc.add_note(f"--- actormq stderr (tail):\n{cluster.logs()}")
            raise
        finally:
            # Kept beside the data dir for a look after the test (pytest keeps tmp_path).
            (data_dir.parent / "actormq.log").write_text("\n".join(process.stderr) + "\n")
        code = process.terminate(timeout=30)
        assert code == 0, f"actormq exited {code} after the test\n{cluster.logs()}"


@contextlib.contextmanager
def one_test(cluster: Cluster) -> Iterator[Cluster]:
    """One test's turn on a cluster its module shares (the ``default_cluster`` and
    ``delay_cluster`` fixtures): a failed check gets the server's log tail, as with
    ``running_cluster``."""
    try:
        yield cluster
    except AssertionError as exc:
        exc.add_note(f"--- actormq stderr (tail):\n{cluster.logs()}")
        raise


# -- one client ---------------------------------------------------------------------------------


@dataclass
class Driver:
    """Runs one client's scripts. ``key`` is the script folder: ``ons`` (.js) or ``cpp`` (.py)."""

    key: str
    name: str  # names topics and groups (two drivers may share a key)
    client: Client
    workdir: pathlib.Path
    sent_queue_known: bool  # does the send result name the queue (else use a queue selector)
    reports_rebalance: bool  # does the consumer print "rebalanced" lines
    creates_topics: bool  # True: create topics explicitly; False: auto-create on first send
    cond: threading.Condition = field(default_factory=threading.Condition)
    _homes: Counter = field(default_factory=Counter)

    @property
    def ext(self) -> str:
        return ".js" if self.key == "ons" else ".py"

    def home(self, label: str) -> pathlib.Path:
        self._homes[label] += 1
        return self.workdir / f"{label}-{self._homes[label]}"

    def process(self, script: str, args: list[str], label: str) -> ClientProcess:
        home = self.home(label)
        return ClientProcess(self.client, script + self.ext, args, home, label, self.cond)

    def prepare_topic(
        self, cluster: Cluster, topic: str, *, credentials: SessionCredentials | None = None
    ) -> None:
        """Make ``topic`` exist with 4 queues on every master, if this client cannot auto-create
        (under the ACL, ``credentials`` of an admin account sign the UPDATE_AND_CREATE_TOPIC)."""
        if not self.creates_topics:
            return
        args = ["--namesrv", cluster.namesrv, "--brokers", ",".join(cluster.masters.values())]
        args += ["--topic", topic, "--queues", str(QUEUES), "--deadline", "40"]
        args += signing_args(credentials)
        code, events = run_to_end(self.process("create_topic", args, "create-topic"), 60)
        assert code == 0 and any(e["event"] == "routed" for e in events), (
            f"creating topic {topic} failed (exit {code}): {events}"
        )

    def produce(
        self,
        cluster: Cluster,
        topic: str,
        count: int,
        tags: list[str],
        prefix: str,
        *,
        select_queue: bool = False,
        body_size: int = 0,
        batch: int = 0,
        delay_level: int = 0,
        credentials: SessionCredentials | None = None,
        namespace: str = "",
    ) -> list[Event]:
        """Send ``count`` messages; every send must be stored. Returns the ``sent`` lines.
        ``namespace`` (ali-ons only): the client's namespace option."""
        process, code, events = self.run_producer(
            cluster,
            topic,
            count,
            tags,
            prefix,
            select_queue=select_queue,
            body_size=body_size,
            batch=batch,
            delay_level=delay_level,
            credentials=credentials,
            namespace=namespace,
        )
        sent = [e for e in events if e["event"] == "sent"]
        problems = [e for e in events if e["event"] in ("send_error", "fatal", "deadline")]
        assert code == 0 and not problems and len(sent) == count, (
            f"producer {prefix}: exit {code}, {len(sent)}/{count} sent, problems: {problems}\n"
            + process.diagnostics()
        )
        bad = [e for e in sent if e["status"] not in STORED]
        assert not bad, f"sends not stored: {bad}"
        return sent

    def run_producer(
        self,
        cluster: Cluster,
        topic: str,
        count: int,
        tags: list[str],
        prefix: str,
        *,
        select_queue: bool = False,
        body_size: int = 0,
        batch: int = 0,
        delay_level: int = 0,
        credentials: SessionCredentials | None = None,
        namespace: str = "",
    ) -> tuple[ClientProcess, int, list[Event]]:
        """Run the producer script to its end, whatever becomes of the sends: the process (for
        its diagnostics), its exit code and its lines."""
        args = ["--namesrv", cluster.namesrv, "--topic", topic, "--count", str(count)]
        args += ["--tags", ",".join(tags), "--prefix", prefix, "--deadline", "50"]
        if body_size:
            args += ["--body-size", str(body_size)]
        if batch:
            args += ["--batch", str(batch)]
        if delay_level:
            args += ["--delay-level", str(delay_level)]
        if select_queue and not self.sent_queue_known:
            args.append("--select-queue")
        if namespace:
            args += ["--namespace", namespace]
        args += signing_args(credentials)
        process = self.process("producer", args, f"producer-{prefix}")
        code, events = run_to_end(process, 70)
        return process, code, events

    def consumer(
        self,
        cluster: Cluster,
        topic: str,
        group: str,
        expression: str,
        label: str,
        *,
        fail_once: str = "",
        throw_once: str = "",
        orderly: bool = False,
        sql: str = "",
        broadcasting: bool = False,
        credentials: SessionCredentials | None = None,
        namespace: str = "",
    ) -> ClientProcess:
        """Start a push consumer (clustering) and wait for its ``started`` line. Messages tagged
        ``fail_once`` fail their first delivery (the client sends them back for a retry); with
        ``throw_once`` (ali-ons) the handler throws on their first delivery instead.
        ``broadcasting``: the BROADCASTING model, starting from each queue's end as both
        clients do by default (CONSUME_FROM_LAST_OFFSET; ali-ons' script otherwise starts its
        clustering consumers from the first offset)."""
        args = ["--namesrv", cluster.namesrv, "--topic", topic, "--group", group]
        args += ["--expression", expression, "--deadline", "120"]
        if broadcasting and self.key == "ons":
            args += [
                "--message-model",
                "BROADCASTING",
                "--consume-from",
                "CONSUME_FROM_LAST_OFFSET",
            ]
        elif broadcasting:
            args.append("--broadcasting")
        if fail_once:
            args += ["--fail-once", fail_once]
        if throw_once:
            args += ["--throw-once", throw_once]
        if sql:  # ali-ons only: a SQL92 subscription instead of ``expression``
            args += ["--sql", sql]
        if orderly:
            args.append("--orderly")
        if namespace:  # ali-ons only
            args += ["--namespace", namespace]
        if self.key == "cpp":
            args += ["--instance", label]
        args += signing_args(credentials)
        process = self.process("consumer", args, label)
        try:
            process.wait_event("started", timeout=30)
        except BaseException:
            process.kill()
            raise
        return process

    def pull(
        self, cluster: Cluster, topic: str, group: str, expression: str, label: str, max_num: int
    ) -> list[Event]:
        """Run the pull consumer script (C++ only) to its end: it reads every queue of ``topic``
        from offset 0, ``max_num`` messages per pull. Returns its lines."""
        args = ["--namesrv", cluster.namesrv, "--topic", topic, "--group", group]
        args += ["--expression", expression, "--max-num", str(max_num), "--deadline", "40"]
        process = self.process("pull_consumer", args, label)
        code, events = run_to_end(process, 60)
        problems = [e for e in events if e["event"] in ("fatal", "deadline")]
        assert code == 0 and not problems and events[-1]["event"] == "stopped", (
            f"pull consumer {label}: exit {code}, problems: {problems}\n" + process.diagnostics()
        )
        return events


def signing_args(credentials: SessionCredentials | None) -> list[str]:
    """The scripts' arguments that make a client sign its requests (RocketMQ's ACL)."""
    if credentials is None:
        return []
    return ["--access-key", credentials.access_key, "--secret-key", credentials.secret_key]


# -- checks -------------------------------------------------------------------------------------


def messages(process: ClientProcess, prefix: str | None = None) -> list[Event]:
    """The ``message`` lines of ``process`` (only this producer run's, by key prefix)."""
    found = process.events("message")
    if prefix is not None:
        found = [m for m in found if (m.get("keys") or "").startswith(f"{prefix}-key-")]
    return found


def first_key(event: Event) -> str:
    return (event.get("keys") or "").split(" ")[0]


def wait_for_keys(
    driver: Driver, consumers: list[ClientProcess], keys: set[str], timeout: float, what: str
) -> dict[str, list[tuple[ClientProcess, Event]]]:
    """Wait until every key in ``keys`` was received by one of ``consumers``; return who got what
    (key -> [(consumer, message line)], duplicates included)."""

    def received() -> dict[str, list[tuple[ClientProcess, Event]]]:
        got: dict[str, list[tuple[ClientProcess, Event]]] = {}
        for consumer in consumers:
            for event in consumer.events("message"):
                if first_key(event) in keys:
                    got.setdefault(first_key(event), []).append((consumer, event))
        return got

    with driver.cond:
        done = driver.cond.wait_for(lambda: keys <= set(received()), timeout=timeout)
    if done:
        return received()
    missing = keys - set(received())
    report = "\n".join(c.diagnostics(30) for c in consumers)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}: {len(missing)} of {len(keys)} "
        f"never arrived, e.g. {sorted(missing)[:5]}\n{report}"
    )


def assert_intact(sent: list[Event], received: list[Event]) -> None:
    """Each received message carries the body, tags and keys its send had."""
    by_key = {first_key(e): e for e in sent}
    for got in received:
        want = by_key[first_key(got)]
        assert got["body"] == want["body"], (got, want)
        assert got["tags"] == want["tags"], (got, want)
        assert got["keys"] == want["keys"], (got, want)


def queues_of(received: list[Event]) -> set[tuple[str | None, int]]:
    return {(m.get("broker"), int(m["queueId"])) for m in received}


# -- scenarios ----------------------------------------------------------------------------------


def produce_then_consume_all(driver: Driver, cluster: Cluster, count: int = 24) -> None:
    # Given a topic on the default cluster and N messages with keys and tags, sent by the client
    topic, group = f"Interop{driver.name.title()}All", f"interop_{driver.name}_all"
    tags = ["TagA", "TagB", "TagC"]
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, count, tags, "all")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    # Then the send results name distinct messages spread over the topic's queues
    assert len({e["msgId"] for e in sent}) == count, sent
    if driver.sent_queue_known:
        assert {e["queue"] for e in sent} == set(range(QUEUES)), sent

    # When a push consumer (clustering) subscribes to every tag
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        keys = {first_key(e) for e in sent}
        got = wait_for_keys(driver, [consumer], keys, 45, f"all {count} messages")
        received = [m for m in messages(consumer) if first_key(m) in keys]

        # Then every message arrives exactly once with body, tags and keys intact
        dupes = {k: len(v) for k, v in got.items() if len(v) > 1}
        assert not dupes, f"delivered more than once: {dupes}"
        assert_intact(sent, received)
        assert all(m["topic"] == topic for m in received), received
        # And each arrives from the queue and at the offset its send result named
        by_key = {first_key(e): e for e in sent}
        for m in received:
            want = by_key[first_key(m)]
            assert m["msgId"] == want["msgId"], (m, want)
            assert m["queueOffset"] == want["offset"], (m, want)
            if want.get("queue") is not None:
                assert m["queueId"] == want["queue"], (m, want)
        assert {int(m["queueId"]) for m in received} == set(range(QUEUES))
        # And nothing else arrives: the consumer saw only this topic's messages
        assert len(messages(consumer)) == count, messages(consumer)


def tag_filtered_subscription(driver: Driver, cluster: Cluster, count: int = 18) -> None:
    # Given messages tagged TagA, TagB, TagC in turn on one topic
    topic = f"Interop{driver.name.title()}Tags"
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, count, ["TagA", "TagB", "TagC"], "tags")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)

    # When one group subscribes to "TagB" and another to "TagA || TagC"
    only_b = driver.consumer(cluster, topic, f"interop_{driver.name}_b", "TagB", "only-b")
    a_or_c = driver.consumer(cluster, topic, f"interop_{driver.name}_ac", "TagA || TagC", "a-or-c")
    with only_b, a_or_c:
        want_b = {first_key(e) for e in sent if e["tags"] == "TagB"}
        want_ac = {first_key(e) for e in sent if e["tags"] in ("TagA", "TagC")}
        wait_for_keys(driver, [only_b], want_b, 45, "the TagB messages")
        wait_for_keys(driver, [a_or_c], want_ac, 45, "the TagA and TagC messages")
        # And sentinels follow on every queue (TagB then TagA): a consumer that received the
        # sentinel of a queue has been offered everything stored before it in that queue.
        sentinels = driver.produce(
            cluster,
            topic,
            2 * QUEUES,
            ["TagB"] * QUEUES + ["TagA"] * QUEUES,
            "sentinel",
            select_queue=True,
        )
        assert {e["queue"] for e in sentinels} == set(range(QUEUES)), sentinels
        wait_for_keys(
            driver, [only_b], {first_key(e) for e in sentinels[:QUEUES]}, 30, "the TagB sentinels"
        )
        wait_for_keys(
            driver, [a_or_c], {first_key(e) for e in sentinels[QUEUES:]}, 30, "the TagA sentinels"
        )

        # Then each subscription received only its tags, each message intact
        got_b, got_ac = messages(only_b), messages(a_or_c)
        assert {m["tags"] for m in got_b} == {"TagB"}, got_b
        assert {m["tags"] for m in got_ac} == {"TagA", "TagC"}, got_ac
        assert {first_key(m) for m in messages(only_b, "tags")} == want_b
        assert {first_key(m) for m in messages(a_or_c, "tags")} == want_ac
        assert_intact(sent + sentinels, got_b + got_ac)


def second_consumer_takes_half(driver: Driver, cluster: Cluster, *, then_leaves: bool) -> None:
    # Given a 4-queue topic consumed by one push consumer of a group
    name = f"{driver.name}_leave" if then_leaves else driver.name
    topic, group = f"Interop{name.title()}Rebalance", f"interop_{name}_rebalance"
    broker = next(iter(cluster.masters.values()))
    driver.prepare_topic(cluster, topic)
    first = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], "r0", select_queue=True)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    with driver.consumer(cluster, topic, group, "*", "consumer-a") as a:
        wait_for_keys(driver, [a], {first_key(e) for e in first}, 45, "round 0 on consumer A")
        assert {int(m["queueId"]) for m in messages(a, "r0")} == set(range(QUEUES))

        # When a second consumer joins the group
        with driver.consumer(cluster, topic, group, "*", "consumer-b") as b:
            ids = admin.wait_consumers(broker, group, 2, timeout=20)
            # Then the broker lists both by the client ids they reported
            started = [c.events("started")[0]["clientId"] for c in (a, b)]
            assert sorted(ids) == sorted(started), (ids, started)
            if driver.reports_rebalance:
                owned = wait_for_split(driver, a, b, 30)
                assert sorted(owned["consumer-a"] + owned["consumer-b"]) == list(range(QUEUES))

            # Then, once rebalanced, new messages of two queues go to A and of the other two
            # to B (rounds of 2 messages per queue until a round shows a clean split)
            split = wait_for_clean_round(driver, cluster, topic, a, b, deadline=45)
            assert sorted(len(q) for q in split.values()) == [QUEUES // 2, QUEUES // 2], split

        if not then_leaves:
            return
        # And when B leaves, A takes all queues back
        split = wait_for_clean_round(driver, cluster, topic, a, None, deadline=45)
        assert split == {"consumer-a": set(range(QUEUES))}, split


def wait_for_split(
    driver: Driver, a: ClientProcess, b: ClientProcess, timeout: float
) -> dict[str, list[int]]:
    """Wait until the consumers' latest ``rebalanced`` lines own 2 + 2 disjoint queues."""

    def latest() -> dict[str, list[int]] | None:
        owned = {}
        for consumer in (a, b):
            lines = consumer.events("rebalanced")
            if not lines:
                return None
            owned[consumer.label] = sorted(q["queueId"] for q in lines[-1]["queues"])
        sizes = [len(q) for q in owned.values()]
        disjoint = not set(owned["consumer-a"]) & set(owned["consumer-b"])
        return owned if sizes == [QUEUES // 2, QUEUES // 2] and disjoint else None

    with driver.cond:
        owned = driver.cond.wait_for(latest, timeout=timeout)
    assert owned, (
        f"no 2+2 allocation in {timeout:.0f}s: A {a.events('rebalanced')[-3:]} "
        f"B {b.events('rebalanced')[-3:]}"
    )
    return owned


def wait_for_clean_round(
    driver: Driver,
    cluster: Cluster,
    topic: str,
    a: ClientProcess,
    b: ClientProcess | None,
    deadline: float,
) -> dict[str, set[int]]:
    """Send rounds of 2 messages per queue until one round is consumed with every queue going to
    exactly one consumer and, with two consumers, each holding half. Returns label -> queues."""
    consumers = [c for c in (a, b) if c is not None]
    end = time.monotonic() + deadline
    rounds: list[dict[str, set[int]]] = []
    while time.monotonic() < end:
        prefix = f"round{len(rounds) + 1}{'ab' if b else 'a'}"
        sent = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], prefix, select_queue=True)
        got = wait_for_keys(
            driver,
            consumers,
            {first_key(e) for e in sent},
            max(5.0, end - time.monotonic()),
            f"{prefix} on {'A or B' if b else 'A'}",
        )
        owners: dict[int, set[str]] = {}
        for deliveries in got.values():
            for consumer, message in deliveries:
                owners.setdefault(int(message["queueId"]), set()).add(consumer.label)
        split: dict[str, set[int]] = {}
        for queue, labels in owners.items():
            for label in labels:
                split.setdefault(label, set()).add(queue)
        rounds.append(split)
        clean = all(len(labels) == 1 for labels in owners.values())
        halves = len(split) == len(consumers) and all(
            len(queues) == QUEUES // len(consumers) for queues in split.values()
        )
        if clean and halves:
            return split
    raise AssertionError(f"no clean split within {deadline:.0f}s; rounds: {rounds}")


def spread_over_two_brokers(driver: Driver, cluster: Cluster, count: int = 16) -> None:
    # Given the 2m-noslave cluster: two masters, broker-a and broker-b
    assert sorted(cluster.masters) == ["broker-a", "broker-b"], cluster.masters
    topic, group = f"Interop{driver.name.title()}Spread", f"interop_{driver.name}_spread"
    driver.prepare_topic(cluster, topic)

    # When the client produces N messages
    sent = driver.produce(cluster, topic, count, ["TagA", "TagB"], "spread")
    route = admin.wait_route(cluster.namesrv, topic, cluster.masters)

    # Then both brokers stored some of them, N in all (as each broker's queue offsets tell)
    stored = {
        name: admin.stored_count(address, topic, admin.routed_brokers(route)[name])
        for name, address in cluster.masters.items()
    }
    assert all(stored.values()) and sum(stored.values()) == count, stored
    if driver.sent_queue_known:
        assert {e["broker"] for e in sent} == {"broker-a", "broker-b"}, sent

    # And a push consumer receives all of them, intact, from queues of both brokers
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        keys = {first_key(e) for e in sent}
        wait_for_keys(driver, [consumer], keys, 45, f"all {count} messages")
        received = messages(consumer, "spread")
        assert_intact(sent, received)
        if all("broker" in m for m in received):
            assert {m["broker"] for m in received} == {"broker-a", "broker-b"}, received
        if driver.reports_rebalance:
            # And its allocation holds the 4 queues of each broker
            def all_queues(events: list[Event]) -> list[dict] | None:
                lines = [e for e in events if e["event"] == "rebalanced"]
                owned = lines[-1]["queues"] if lines else []
                brokers = Counter(q["broker"] for q in owned)
                return owned if brokers == {"broker-a": QUEUES, "broker-b": QUEUES} else None

            consumer.wait_until(all_queues, 15, "an allocation of 4 queues on each broker")


def consumer_restart_resumes_from_committed_offset(driver: Driver, cluster: Cluster) -> None:
    # Given a group whose consumer received 8 messages and then shut down cleanly
    topic, group = f"Interop{driver.name.title()}Resume", f"interop_{driver.name}_resume"
    driver.prepare_topic(cluster, topic)
    before = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], "before")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    with driver.consumer(cluster, topic, group, "*", "first") as first:
        wait_for_keys(driver, [first], {first_key(e) for e in before}, 45, "the first 8")
        assert first.terminate() == 0
        stopped = first.events("stopped")
        assert stopped and stopped[-1]["clean"], first.diagnostics()

    # When 8 more are sent and a new consumer of the same group starts
    after = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], "after")
    with driver.consumer(cluster, topic, group, "*", "second") as second:
        wait_for_keys(driver, [second], {first_key(e) for e in after}, 45, "the next 8")
        # Then it resumes at the committed offsets: only the new messages arrive (each queue
        # delivers in offset order, so a re-delivered old one would have come first)
        old = messages(second, "before")
        assert not old, f"re-delivered after a clean restart: {[first_key(m) for m in old]}"
        assert_intact(after, messages(second, "after"))


def offset_reset_replays_to_a_running_consumer(driver: Driver, cluster: Cluster) -> None:
    # Given a running consumer that received 8 messages
    topic, group = f"Interop{driver.name.title()}Reset", f"interop_{driver.name}_reset"
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], "replay")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    keys = {first_key(e) for e in sent}
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        wait_for_keys(driver, [consumer], keys, 45, "the 8")
        # When an admin resets the group's offsets to the beginning (mqadmin resetOffsetByTime:
        # the broker pushes RESET_CONSUMER_CLIENT_OFFSET to the running consumer)
        with Admin(cluster.namesrv) as tool:
            rows = tool.reset_offset(group, topic, 0)
        assert rows and all(r.online and r.new_offset == 0 for r in rows), rows
        # Then the consumer receives every one of them again
        deadline = time.monotonic() + 45
        with driver.cond:
            while True:
                counts = Counter(first_key(m) for m in messages(consumer, "replay"))
                if all(counts[k] >= 2 for k in keys):
                    break
                left = deadline - time.monotonic()
                assert left > 0, f"not replayed: {counts}\n{consumer.diagnostics()}"
                driver.cond.wait(min(left, 1.0))


def large_bodies_arrive_intact(driver: Driver, cluster: Cluster) -> None:
    # Given bodies of 1 KiB, 8 KiB and 64 KiB (clients compress bodies of 4 KiB and more and
    # set the COMPRESSED sysFlag; the broker stores them as they come)
    topic, group = f"Interop{driver.name.title()}Large", f"interop_{driver.name}_large"
    driver.prepare_topic(cluster, topic)
    sent = []
    for size in (1024, 8 * 1024, 64 * 1024):
        sent += driver.produce(cluster, topic, 2, ["TagL"], f"large{size}", body_size=size)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    # When a push consumer receives them, Then each body is the one sent, byte for byte
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        wait_for_keys(driver, [consumer], {first_key(e) for e in sent}, 45, "the large messages")
        received = [m for m in messages(consumer) if first_key(m).startswith("large")]
        assert_intact(sent, received)
        assert sorted(len(m["body"]) for m in received) == sorted(len(e["body"]) for e in sent)
        # And where the client tells the stored sysFlag, the large ones were compressed (bit 0x1)
        for m in received:
            if m.get("sysFlag") is not None:
                assert bool(m["sysFlag"] & 1) == (len(m["body"]) >= 4096), m["sysFlag"]


def cross_client(producer: Driver, consumer: Driver, cluster: Cluster, count: int = 12) -> None:
    # Given messages sent by one client
    topic = f"InteropFrom{producer.name.title()}To{consumer.name.title()}"
    group = f"interop_{producer.name}_to_{consumer.name}"
    for driver in (producer, consumer):
        driver.prepare_topic(cluster, topic)
    sent = producer.produce(cluster, topic, count, ["TagA", "TagB"], "cross")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    # When the other client consumes them, Then every one arrives with body, tags, keys intact
    with consumer.consumer(cluster, topic, group, "*", "consumer") as process:
        wait_for_keys(consumer, [process], {first_key(e) for e in sent}, 45, "all messages")
        assert_intact(sent, messages(process, "cross"))


def failed_message_is_redelivered_through_retry_topic(
    driver: Driver, cluster: Cluster, *, throw: bool = False
) -> None:
    # Given messages tagged TagR (the consumer fails their first delivery), TagA and, with
    # ``throw``, TagT (the consumer's handler throws on their first delivery)
    topic, group = f"Interop{driver.name.title()}Retry", f"interop_{driver.name}_retry"
    tags = ["TagR", "TagA", "TagT"] if throw else ["TagR", "TagA"]
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, 2 * len(tags), tags, "retry")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    failing = {first_key(e) for e in sent if e["tags"] in ("TagR", "TagT")}

    # When the consumer answers "reconsume later" for TagR (and throws for TagT)
    with driver.consumer(
        cluster,
        topic,
        group,
        "*",
        "consumer",
        fail_once="TagR",
        throw_once="TagT" if throw else "",
    ) as consumer:

        def redelivered(events: list[Event]) -> list[Event] | None:
            again = [
                e
                for e in events
                if e["event"] == "message" and first_key(e) in failing and e["reconsumeTimes"] >= 1
            ]
            return again if {first_key(e) for e in again} == failing else None

        # Then the client sends them back (CONSUMER_SEND_MSG_BACK), a thrown error exactly like
        # a "reconsume later", and they return (first retry: delay level 3, 10 s by default, 3 s
        # with examples/features.toml) with reconsumeTimes 1, on the original topic, body, tags
        # and keys intact
        again = consumer.wait_until(redelivered, 60, "the failed messages redelivered")
        assert all(e["topic"] == topic for e in again), again
        assert_intact(sent, again)
        # And the TagA messages were delivered once, and each failing message failed once
        ok = [m for m in messages(consumer, "retry") if m["tags"] == "TagA"]
        assert sorted(first_key(m) for m in ok) == sorted(
            first_key(e) for e in sent if e["tags"] == "TagA"
        )
        first_tries = [m for m in messages(consumer, "retry") if m["action"] != "ok"]
        assert sorted(first_key(m) for m in first_tries) == sorted(failing), first_tries
        if throw:
            thrown = {first_key(m) for m in first_tries if m["action"] == "throw"}
            assert thrown == {first_key(e) for e in sent if e["tags"] == "TagT"}, first_tries


def orderly_consumer_gets_each_queue_in_order(driver: Driver, cluster: Cluster) -> None:
    # Given 24 messages sent to queues chosen by a selector (i % 4), so each queue holds 6
    topic, group = f"Interop{driver.name.title()}Orderly", f"interop_{driver.name}_orderly"
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, 6 * QUEUES, ["TagO"], "orderly", select_queue=True)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)

    # When an orderly push consumer (it locks its queues with LOCK_BATCH_MQ) consumes them
    with driver.consumer(cluster, topic, group, "*", "consumer", orderly=True) as consumer:
        wait_for_keys(driver, [consumer], {first_key(e) for e in sent}, 45, "all messages")
        received = messages(consumer, "orderly")
        # Then each arrives once, intact, and every queue's messages come in offset order,
        # in the order they were sent
        assert len(received) == len(sent), received
        assert_intact(sent, received)
        for queue in range(QUEUES):
            in_queue = [m for m in received if int(m["queueId"]) == queue]
            assert [m["queueOffset"] for m in in_queue] == list(range(6)), in_queue
            order = [int(first_key(m).rsplit("-", 1)[1]) for m in in_queue]
            assert order == sorted(order), order


def batches_arrive_as_single_messages(driver: Driver, cluster: Cluster) -> None:
    # Given 12 messages sent as 3 batches of 4 (one send_batch call each: SEND_BATCH_MESSAGE
    # from engine 1.x, SEND_MESSAGE_V2 with the batch flag from engine 2.1)
    topic, group = f"Interop{driver.name.title()}Batch", f"interop_{driver.name}_batch"
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, 12, ["TagA", "TagB"], "batch", batch=4)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)

    # When a push consumer receives them
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        wait_for_keys(driver, [consumer], {first_key(e) for e in sent}, 45, "all 12 messages")
        received = {first_key(m): m for m in messages(consumer, "batch")}
        # Then each is its own message, intact, with its own msgId and queue offset: the
        # batch's messages sit one after the other in one queue
        assert len(messages(consumer, "batch")) == 12
        assert_intact(sent, list(received.values()))
        for start in range(0, 12, 4):
            group_of = [received[first_key(e)] for e in sent[start : start + 4]]
            assert len({m["queueId"] for m in group_of}) == 1, group_of
            offsets = [m["queueOffset"] for m in group_of]
            assert offsets == list(range(offsets[0], offsets[0] + 4)), offsets
            assert offsets == [e["offset"] for e in sent[start : start + 4]], (offsets, sent)
            sent_ids = [e["msgId"] for e in sent[start : start + 4]]
            if all(sent_ids):  # the C++ engines give an empty msgId for a batch (see docs)
                assert [m["msgId"] for m in group_of] == sent_ids
        assert len({m["msgId"] for m in received.values()}) == 12, received


def delayed_messages_wait_their_level(
    driver: Driver, cluster: Cluster, *, level_2_s: float = 5.0
) -> None:
    # Given a consumer and 4 messages sent with delay level 2 (5 s by default; 2 s in features.toml)
    topic, group = f"Interop{driver.name.title()}Delay", f"interop_{driver.name}_delay"
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, 4, ["TagD"], "delay", delay_level=2)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    sent_at = max(e["_t"] for e in sent)  # when the test read the last "sent" line

    # When the consumer receives them, Then not before the level's delay after the send (a
    # little less for the time the "sent" line took to reach the test), on their topic, intact
    with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
        wait_for_keys(driver, [consumer], {first_key(e) for e in sent}, 45, "the delayed ones")
        received = messages(consumer, "delay")
        first_at = min(m["_t"] for m in received)
        early = level_2_s - 0.5
        assert first_at - sent_at >= early, f"delivered {first_at - sent_at:.2f}s after sending"
        assert all(m["topic"] == topic for m in received), received
        assert_intact(sent, received)


def broadcasting_consumers_each_get_every_message(
    driver: Driver, cluster: Cluster, count: int = 8
) -> None:
    # Given a topic holding 8 messages sent before any consumer started
    topic, group = f"Interop{driver.name.title()}Broadcast", f"interop_{driver.name}_broadcast"
    broker = next(iter(cluster.masters.values()))
    driver.prepare_topic(cluster, topic)
    early = driver.produce(cluster, topic, 2 * QUEUES, ["TagA"], "early")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    ends = {q: admin.max_offset(broker, topic, q) for q in range(QUEUES)}
    assert sum(ends.values()) == len(early), ends

    # When two push consumers of one group start in the BROADCASTING model
    one = driver.consumer(cluster, topic, group, "*", "broadcast-1", broadcasting=True)
    two = driver.consumer(cluster, topic, group, "*", "broadcast-2", broadcasting=True)
    with one, two:
        # Then each takes all 4 queues (the two do not share them out), starting at each queue's
        # end (no offset of their own yet: CONSUME_FROM_LAST_OFFSET asks GET_MAX_OFFSET)
        def all_queues(events: list[Event]) -> list[dict] | None:
            lines = [e for e in events if e["event"] == "rebalanced" and e["topic"] == topic]
            owned = lines[-1]["queues"] if lines else []
            return owned if len(owned) == QUEUES else None

        for consumer in (one, two):
            owned = consumer.wait_until(all_queues, 30, "a rebalance taking all 4 queues")
            assert {q["queueId"]: q["offset"] for q in owned} == ends, (consumer.label, owned)
        # And the broker lists both members, one client id per connection, as they report
        # them (two ali-ons processes both call themselves <ip>@DEFAULT: it keeps the instance
        # name when broadcasting; RocketMQ lists that id twice)
        reported = sorted(c.events("started")[0]["clientId"] for c in (one, two))
        admin.poll(
            lambda: admin.consumer_ids(broker, group) == reported or None,
            15,
            f"{group}'s members {reported} at {broker}",
        )

        # When 8 more messages are sent
        late = driver.produce(cluster, topic, count, ["TagA", "TagB"], "late")
        keys = {first_key(e) for e in late}
        # Then each consumer receives every one of them exactly once, intact, and none of the
        # messages sent before it started
        for consumer in (one, two):
            got = wait_for_keys(driver, [consumer], keys, 45, f"all {count} on {consumer.label}")
            dupes = {k: len(v) for k, v in got.items() if len(v) > 1}
            assert not dupes, f"{consumer.label}: delivered more than once: {dupes}"
            assert_intact(late, messages(consumer, "late"))
            assert not messages(consumer, "early"), messages(consumer, "early")

        # When the first one stops (UNREGISTER_CLIENT, then its connection closes)
        assert one.terminate() == 0, one.diagnostics()
        # Then the broker still lists the second (only the requesting connection leaves, as in
        # RocketMQ, even when both carry one client id)
        remaining = [two.events("started")[0]["clientId"]]
        admin.poll(
            lambda: admin.consumer_ids(broker, group) == remaining or None,
            15,
            f"{group}'s remaining member {remaining} at {broker}",
        )
        assert two.terminate() == 0, two.diagnostics()

    # And the group committed no offset to the broker (broadcasting consumers keep their own:
    # RocketMQ's LocalFileOffsetStore in the C++ engines, memory in ali-ons)
    committed = [admin.committed_offset(broker, group, topic, q) for q in range(QUEUES)]
    assert not any(committed), committed


def pull_consumer_reads_every_queue(driver: Driver, cluster: Cluster, count: int = 12) -> None:
    # Given 12 messages tagged TagA, TagB, TagC in turn on a 4-queue topic
    topic, group = f"Interop{driver.name.title()}Pull", f"interop_{driver.name}_pull"
    broker = next(iter(cluster.masters.values()))
    driver.prepare_topic(cluster, topic)
    sent = driver.produce(cluster, topic, count, ["TagA", "TagB", "TagC"], "pull")
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    ends = {q: admin.max_offset(broker, topic, q) for q in range(QUEUES)}

    # When a pull consumer fetches the topic's queues and pulls each from offset 0, at most 2
    # messages per pull, until the broker has no new message
    events = driver.pull(cluster, topic, group, "*", "pull-all", max_num=2)

    # Then it was given the topic's 4 queues and found every message exactly once, intact,
    # with the msgId its send result gave, at the queue offset the send result named
    routed = next(e for e in events if e["event"] == "queues")["queues"]
    assert sorted(q["queueId"] for q in routed) == list(range(QUEUES)), routed
    received = [e for e in events if e["event"] == "message"]
    assert sorted(first_key(m) for m in received) == sorted(first_key(e) for e in sent), received
    assert_intact(sent, received)
    by_key = {first_key(e): e for e in sent}
    for m in received:
        want = by_key[first_key(m)]
        assert m["msgId"] == want["msgId"] and m["queueOffset"] == want["offset"], (m, want)
        assert m["topic"] == topic and m["reconsumeTimes"] == 0, m
    # And each queue's pulls walked it from 0 to its end, FOUND at most 2 at a time, each from
    # the nextBeginOffset before, and then NO_NEW_MSG at the end, which is the queue's maxOffset
    pulls = [e for e in events if e["event"] == "pulled"]
    for queue, end in ends.items():
        walk = [p for p in pulls if p["queueId"] == queue]
        assert [p["status"] for p in walk] == ["FOUND"] * (len(walk) - 1) + ["NO_NEW_MSG"], walk
        assert [p["offset"] for p in walk[1:]] == [p["nextBeginOffset"] for p in walk[:-1]], walk
        assert walk[0]["offset"] == 0 and all(0 < p["count"] <= 2 for p in walk[:-1]), walk
        assert walk[-1]["offset"] == walk[-1]["maxOffset"] == end, (walk, end)

    # When it pulls every queue again with the expression "TagB"
    events = driver.pull(cluster, topic, group, "TagB", "pull-tagb", max_num=2)
    # Then it finds exactly the TagB messages, intact
    received = [e for e in events if e["event"] == "message"]
    want = sorted(first_key(e) for e in sent if e["tags"] == "TagB")
    assert sorted(first_key(m) for m in received) == want, received
    assert_intact(sent, received)


@contextlib.contextmanager
def quick_delay_cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    """``running_cluster`` with ``examples/features.toml`` (delay level n waits n seconds): the
    retry and delay scenarios wait 2 - 3 s instead of RocketMQ's default 5 - 10 s (the protocol
    is the same; CI time is not)."""
    profile = REPO / "examples" / "features.toml"
    with running_cluster(tmp_path / "data", profile=str(profile)) as cluster:
        yield cluster


FAST_TRANSACTION_CHECKS = """
description = "one broker that checks open transactions after 1 s, every second"
[[namesrv]]
listenPort = 9876
[[broker]]
brokerName = "broker-a"
brokerId = 0
listenPort = 10911
haListenPort = 10912
transactionTimeOut = 1000
transactionCheckInterval = 1000
"""


def transactions_commit_rollback_and_check(driver: Driver, cluster: Cluster) -> None:
    """Run with a cluster of ``FAST_TRANSACTION_CHECKS`` (C++ engine 2.1)."""
    # Given a transaction producer whose local transactions answer COMMIT, ROLLBACK and
    # UNKNOWN, and whose check answers COMMIT for the unknown one
    topic, group = f"Interop{driver.name.title()}Tx", f"interop_{driver.name}_tx"
    driver.prepare_topic(cluster, topic)
    args = ["--namesrv", cluster.namesrv, "--topic", topic, "--prefix", "tx"]
    args += ["--decisions", "commit,rollback,unknown", "--expect-checks", "1", "--deadline", "90"]
    with driver.process("transaction_producer", args, "tx-producer") as producer:

        def three_sent(events: list[Event]) -> list[Event] | None:
            sent = [e for e in events if e["event"] in ("sent", "send_error", "fatal")]
            return sent if len(sent) == 3 or any(e["event"] == "fatal" for e in sent) else None

        # When it sends the three half messages
        sent = producer.wait_until(three_sent, 40, "three half messages")
        assert [e["status"] for e in sent] == ["SEND_OK"] * 3, sent
        # Then the broker asks about the open one only, with the stored message, and the
        # client's END_TRANSACTION (from the check) commits it
        checked = producer.wait_event("checked", 30)
        unknown = next(e for e in sent if e["tags"] == "unknown")
        assert checked["keys"] == unknown["keys"] and checked["body"] == unknown["body"], checked
        admin.wait_route(cluster.namesrv, topic, cluster.masters)
        with driver.consumer(cluster, topic, group, "*", "consumer") as consumer:
            visible = {first_key(e) for e in sent if e["tags"] in ("commit", "unknown")}
            wait_for_keys(driver, [consumer], visible, 45, "the committed messages")
            # And the rolled-back one never appears: sentinels sent to every queue afterwards
            # arrive, each queue delivering in offset order
            sentinels = driver.produce(
                cluster, topic, QUEUES, ["TagS"], "txsentinel", select_queue=True
            )
            wait_for_keys(driver, [consumer], {first_key(e) for e in sentinels}, 30, "sentinels")
            got = messages(consumer, "tx")
            assert sorted(m["tags"] for m in got) == ["commit", "unknown"], got
            assert_intact(sent, got)
        assert {c["tags"] for c in producer.events("checked")} == {"unknown"}


# -- RocketMQ's plain ACL -----------------------------------------------------------------------

ACL_PRODUCER = SessionCredentials("interop-producer", "producer-secret")
ACL_CONSUMER = SessionCredentials("interop-consumer", "consumer-secret")
ACL_ADMIN = SessionCredentials("interop-admin", "admin-secret")
# Engine 2.1's consumer runs with message tracing on (see cpp/consumer.py) and sends its trace
# records with the consumer's keys to rmq_sys_TRACE_DATA_<the message's MSG_REGION>: the
# broker's regionId, which every stored message carries (docs/broker.md; a message without one:
# DEFAULT_REGION). The account needs PUB on it, as in RocketMQ.
TRACE_TOPIC = "rmq_sys_TRACE_DATA_DefaultRegion"


def acl_names(client: str) -> tuple[str, str, str]:
    """The topic a signed client produces to and consumes, its consumer group, and the topic a
    client with a wrong secret tries to send to."""
    return f"Interop{client.title()}Acl", f"interop_{client}_acl", f"Interop{client.title()}Forged"


def plain_acl(clients: list[str]) -> str:
    """A ``plain_acl.yml`` (RocketMQ's format) for the ACL scenarios of ``clients`` (driver
    names): the producer account may publish to each client's two topics only, the consumer
    account subscribe to the first topic in the client's group only, the admin account do
    anything. No white addresses: every request of every client is checked."""
    pub, sub, groups = [], [f"{TRACE_TOPIC}=PUB"], []
    for client in clients:
        topic, group, forged = acl_names(client)
        pub += [f"{topic}=PUB", f"{forged}=PUB"]
        sub.append(f"{topic}=SUB")
        groups.append(f"{group}=SUB")
    return f"""accounts:
  - accessKey: {ACL_PRODUCER.access_key}
    secretKey: {ACL_PRODUCER.secret_key}
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [{", ".join(pub)}]
  - accessKey: {ACL_CONSUMER.access_key}
    secretKey: {ACL_CONSUMER.secret_key}
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [{", ".join(sub)}]
    groupPerms: [{", ".join(groups)}]
  - accessKey: {ACL_ADMIN.access_key}
    secretKey: {ACL_ADMIN.secret_key}
    admin: true
"""


@contextlib.contextmanager
def acl_cluster(tmp_path: pathlib.Path, clients: list[str]) -> Iterator[Cluster]:
    """``running_cluster`` with one broker checking RocketMQ's plain ACL (``aclEnable=true``,
    ``aclFile`` holding ``plain_acl(clients)``)."""
    acl_file = tmp_path / "plain_acl.yml"
    acl_file.write_text(plain_acl(clients))
    profile = tmp_path / "acl.toml"
    profile.write_text(one_broker({"aclEnable": True, "aclFile": str(acl_file)}))
    with running_cluster(tmp_path / "data", profile=str(profile)) as cluster:
        yield cluster


def signed_clients_produce_and_consume(driver: Driver, cluster: Cluster, count: int = 8) -> None:
    # Given the ACL: a producer account that may publish to the topic, a consumer account that
    # may subscribe to it in the group (ali-ons: the topic created with the admin account's keys)
    topic, group, _ = acl_names(driver.name)
    logged_before = len(cluster.process.stderr)
    driver.prepare_topic(cluster, topic, credentials=ACL_ADMIN)

    # When the client sends N messages, signing with the producer's keys
    sent = driver.produce(cluster, topic, count, ["TagA", "TagB"], "acl", credentials=ACL_PRODUCER)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)
    # Then the broker stored every one
    broker = next(iter(cluster.masters.values()))
    assert admin.stored_count(broker, topic, QUEUES, ACL_ADMIN) == count

    # When a push consumer signs with the consumer's keys (heartbeats, pulls, offset commits)
    with driver.consumer(
        cluster, topic, group, "*", "consumer", credentials=ACL_CONSUMER
    ) as consumer:
        keys = {first_key(e) for e in sent}
        got = wait_for_keys(driver, [consumer], keys, 45, f"all {count} signed messages")
        # Then every message arrives exactly once with body, tags and keys intact
        dupes = {k: len(v) for k, v in got.items() if len(v) > 1}
        assert not dupes, f"delivered more than once: {dupes}"
        assert_intact(sent, messages(consumer))
        assert len(messages(consumer)) == count, messages(consumer)

        # And the broker accepted its offset commits: the group's offsets reach the end
        def committed() -> bool | None:
            offsets = [
                admin.committed_offset(broker, group, topic, q, ACL_ADMIN) for q in range(QUEUES)
            ]
            return sum(o or 0 for o in offsets) == count or None

        admin.poll(committed, 20, f"{group}'s committed offsets to reach {count}")
        assert not consumer.events("client_error"), consumer.events("client_error")
        assert consumer.terminate() == 0, consumer.diagnostics()

    # And the broker refused none of the clients' requests, from start to shutdown (every kind
    # they send was signed as the broker checks it)
    refused = [line for line in cluster.process.stderr[logged_before:] if "acl refused" in line]
    assert not refused, "\n".join(refused)


def wrong_secret_is_refused(driver: Driver, cluster: Cluster, count: int = 2) -> None:
    # Given a topic the producer account may publish to
    _, _, topic = acl_names(driver.name)
    broker = next(iter(cluster.masters.values()))
    with Admin(cluster.namesrv, credentials=ACL_ADMIN) as tool:
        tool.create_topic(topic, broker_addr=broker, queues=QUEUES)
    admin.wait_route(cluster.namesrv, topic, cluster.masters)

    # When the client sends with the producer's access key but a wrong secret
    forged = SessionCredentials(ACL_PRODUCER.access_key, "not-the-producer-secret")
    logged_before = len(cluster.process.stderr)
    process, code, events = driver.run_producer(
        cluster, topic, count, ["TagA"], "forged", credentials=forged
    )

    # Then every send fails
    errors = [e for e in events if e["event"] == "send_error"]
    report = f"exit {code}, lines {events}\n{process.diagnostics()}"
    assert code == 1 and len(errors) == count, report
    assert not [e for e in events if e["event"] == "sent"], report
    # And the broker refused them as RocketMQ does (the clients retry a SYSTEM_ERROR answer
    # and then report a generic failure: "Send [4] times, still failed" from ali-ons, "No route
    # info of this topic" from the C++ engines; the remark reaches no send error), and said so
    # in its log (at most once a second per client host and reason)
    reason = f"Check signature failed for accessKey={ACL_PRODUCER.access_key}"
    refused = re.compile(rf"acl refused request code=(10|310) from \S+: {reason}")
    refusals = [line for line in cluster.process.stderr[logged_before:] if refused.search(line)]
    assert refusals, cluster.logs()
    # And the broker stored none of them
    assert admin.stored_count(broker, topic, QUEUES, ACL_ADMIN) == 0
