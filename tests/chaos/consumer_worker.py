"""One consumer of the chaos workload, in this process or as a crashable subprocess.

``run_consumer`` drives a push consumer (the listener reports each message) or a lite pull
consumer (each non-empty poll is reported, then committed explicitly: auto-commit would commit
what was polled, recorded or not; every change of its assignment is reported as an ``assign``
event, ``added`` before the new queues' pullers start, ``removed`` once the old ones stopped)
and hands every observation to ``emit``.

The assignment changes come from the rebalancer itself (its ``_start_pullers`` /
``_stop_pullers`` hooks), not from sampling ``assignment()`` before each poll: a queue removed
and given back between two polls (the rebalances while a restarted broker lists the group's
consumers one by one) restarts its puller from the broker's committed offset, which a sample
sees as no change at all (R17 soak, seeds 2-4: a lite pull consumer back from offset 1834 to 0
"with no reassignment").

As a subprocess (``python -m tests.chaos.consumer_worker --mode push ...``) it prints a
``ready`` line once started, then one JSON object per observation, flushed before the
listener returns: a message whose offset may get committed has been reported first, so a
kill -9 leaves nothing processed unrecorded. ``ConsumerProcess`` (in ``workload``) pumps
those lines into the history.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.client import (
    ConsumeFrom,
    ConsumeResult,
    MessageExt,
    MessageQueue,
    PullConsumer,
    PushConsumer,
)
from actors.client.rebalance import Rebalancer
from tests.chaos import transport

Emit = Callable[[dict[str, Any]], None]


def _q(msg: MessageExt) -> str:
    return f"{msg.topic}/{msg.broker_name}/{msg.queue_id}"


def _body(msg: MessageExt) -> str:
    return msg.body.decode(errors="replace")


def _names(mqs: list[MessageQueue]) -> list[str]:
    return sorted(f"{mq.topic}/{mq.broker_name}/{mq.queue_id}" for mq in mqs)


class _RecordingPullConsumer(PullConsumer):
    """A lite pull consumer whose rebalancer reports every queue it starts or stops pulling
    (the documented subclass hooks ``_start_pullers`` / ``_stop_pullers``), from its own
    greenlet: queues added before their pullers start, removed after they stopped."""

    def __init__(self, *args: Any, emit: Emit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._emit = emit

    def _rebalancer_class(self) -> type[Rebalancer]:
        base = super()._rebalancer_class()
        emit = self._emit

        class Recording(base):  # type: ignore[misc, valid-type]
            def _start_pullers(self, mqs: list[MessageQueue]) -> list[MessageQueue]:
                if mqs:
                    emit({"t": "assign", "added": _names(mqs)})
                return super()._start_pullers(mqs)

            def _stop_pullers(self, mqs: list[MessageQueue], persist: bool = True) -> None:
                super()._stop_pullers(mqs, persist)
                if mqs:
                    emit({"t": "assign", "removed": _names(mqs)})

        return Recording


def run_consumer(
    mode: str,
    namesrv: str,
    group: str,
    topic: str,
    name: str,
    emit: Emit,
    stop: threading.Event,
    *,
    started: Callable[[], None] | None = None,
    rebalance_interval: float = 2.0,
    commit_interval: float = 1.0,
) -> None:
    """Consume until ``stop`` is set, then shut down cleanly (committing offsets)."""
    if mode == "push":
        consumer: PushConsumer | PullConsumer = PushConsumer(
            group,
            namesrv=namesrv,
            tls=transport.client_tls(),
            consume_from=ConsumeFrom.FIRST,
            instance_name=name,
            consume_threads=4,
            rebalance_interval=rebalance_interval,
            commit_interval=commit_interval,
            suspend_timeout=2.0,
            pull_error_delay=0.5,
            heartbeat_interval=2.0,
            route_refresh_interval=2.0,
        )

        def listener(msg: MessageExt) -> ConsumeResult:
            emit({"t": "read", "q": _q(msg), "o": msg.queue_offset, "v": _body(msg)})
            return ConsumeResult.CONSUME_SUCCESS

        consumer.subscribe(topic, "*", listener)
        consumer.start()
        if started is not None:
            started()
        stop.wait()
        consumer.shutdown()
        return
    pull = _RecordingPullConsumer(
        group,
        emit=emit,
        namesrv=namesrv,
        tls=transport.client_tls(),
        consume_from=ConsumeFrom.FIRST,
        auto_commit=False,
        instance_name=name,
        rebalance_interval=rebalance_interval,
        commit_interval=commit_interval,
        suspend_timeout=2.0,
        pull_error_delay=0.5,
        heartbeat_interval=2.0,
        route_refresh_interval=2.0,
    )
    pull.subscribe(topic, "*")
    pull.start()
    if started is not None:
        started()
    try:
        while not stop.is_set():
            msgs = pull.poll(0.2)
            if msgs:
                emit({"t": "poll", "reads": [[_q(m), m.queue_offset, _body(m)] for m in msgs]})
                try:  # commit only what is recorded (auto-commit would commit what was polled)
                    pull.commit()
                except Exception as exc:
                    emit({"t": "note", "what": f"commit failed: {exc}"})
    finally:
        pull.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["push", "pull"], required=True)
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    lock = threading.Lock()
    out = sys.stdout

    def emit(obj: dict[str, Any]) -> None:
        obj["m"] = time.monotonic()
        line = json.dumps(obj, separators=(",", ":"))
        with lock:
            out.write(line + "\n")
            out.flush()

    stop = threading.Event()

    def stop_on_eof() -> None:  # the parent closes our stdin to ask for a clean shutdown
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stop_on_eof, daemon=True).start()

    def started() -> None:
        with lock:
            out.write("ready\n")
            out.flush()

    run_consumer(
        args.mode, args.namesrv, args.group, args.topic, args.name, emit, stop, started=started
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
