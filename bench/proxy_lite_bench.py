"""Lite topics through the gRPC proxy: what a new lite topic costs, and how fast a lite
consumer drains its lite topics.

Spawns ``python -m runtime cluster --proxy`` (ASYNC_FLUSH, free ports, a temporary directory)
and a ``python -m runtime proxy`` over it (a process of its own, plain threads; the one
measured), makes a LITE topic, then, alternating ``--rounds`` times in this one invocation:

- ``grpc send, plain topic``: SendMessage of ordinary messages, one in flight: the baseline;
- ``lite send, existing``: lite messages to lite topics made already, one in flight;
- ``lite send, new``: each message to a lite topic not made yet (the proxy makes its
  one-queue topic first: a session's first message);
- ``lite receive+ack, N lite topics``: one lite consumer subscribed to N lite topics with a
  backlog each, receiving batches of 32 and acking each batch in one AckMessage;
- with ``--many N``, last: one client subscribing N new lite topics at once (a COMPLETE_ADD
  after a restart), how long that takes, then the CPU the idle lite group costs.

Prints msgs/s, p50/p99 ms (sends) and the CPU of both processes per message.

    .venv/bin/python bench/proxy_lite_bench.py [--seconds 5] [--rounds 2] [--lites 1,16,64]
        [--many 1000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from actors.client import Admin  # noqa: E402
from actors.proxy.proto import ClientType, Code, M, MessageType  # noqa: E402
from actors.proxy.server import SERVICE  # noqa: E402
from bench.proxy_bench import (  # noqa: E402
    TOPIC,
    Pids,
    _cpu,
    _spawn,
    _standalone,
    _stats,
    ack_request,
)

PARENT = "LiteBench"
CLIENT = (("x-mq-client-id", "lite-bench-client"),)


def _unary(channel: grpc.Channel, method: str) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=getattr(M, f"{method}Request").SerializeToString,
        response_deserializer=getattr(M, f"{method}Response").FromString,
    )


def _message(topic: str, body: bytes, lite: str | None, seq: int) -> Any:
    request = M.SendMessageRequest()
    msg = request.messages.add()
    msg.topic.name, msg.body = topic, body
    system = msg.system_properties
    system.message_id, system.body_encoding = f"01{seq:032X}", 1
    system.message_type = MessageType.LITE if lite else MessageType.NORMAL
    if lite:
        system.lite_topic = lite
    return request


def sends(
    channel: grpc.Channel, body: bytes, seconds: float, pids: Pids, what: str, lites: Any
) -> dict[str, Any]:
    """``lites``: an iterator of lite topic names (None: plain messages to TOPIC)."""
    call = _unary(channel, "SendMessage")
    rtts: list[float] = []
    seq = itertools.count(int(time.time() * 1000) << 20)
    cpu0, start = _cpu(pids), time.perf_counter()
    while time.perf_counter() - start < seconds:
        lite = next(lites) if lites is not None else None
        request = _message(PARENT if lite else TOPIC, body, lite, next(seq))
        t = time.perf_counter()
        response = call(request, timeout=30)
        rtts.append(time.perf_counter() - t)
        assert response.status.code == Code.OK, response
    elapsed = time.perf_counter() - start
    return _stats(what, len(rtts), elapsed, rtts, _cpu(pids) - cpu0)


def _join(channel: grpc.Channel, group: str) -> None:
    """The bench's client says it is a lite push consumer of ``group`` (its settings)."""
    settings = M.TelemetryCommand()
    settings.settings.client_type = ClientType.LITE_PUSH_CONSUMER
    settings.settings.subscription.group.name = group
    telemetry = channel.stream_stream(
        f"/{SERVICE}/Telemetry",
        request_serializer=M.TelemetryCommand.SerializeToString,
        response_deserializer=M.TelemetryCommand.FromString,
    )
    stream = telemetry(iter([settings]), timeout=10, metadata=CLIENT)
    next(stream)
    stream.cancel()


def drain(
    channel: grpc.Channel, body: bytes, lites: int, seconds: float, pids: Pids, tag: str
) -> dict[str, Any]:
    """A lite consumer of ``lites`` lite topics, each with a backlog, received and acked."""
    group = f"lite-bench-{tag}"
    names = [f"{tag}-{i}" for i in range(lites)]
    per_topic = max(50, 4000 // lites)
    send = _unary(channel, "SendMessage")
    seq = itertools.count(int(time.time() * 1000) << 20)
    for name in names:
        for _ in range(per_topic):
            send(_message(PARENT, body, name, next(seq)), timeout=30)
    _join(channel, group)
    sync = M.SyncLiteSubscriptionRequest(action=0, lite_topic_set=names)
    sync.topic.name, sync.group.name = PARENT, group
    assert (
        _unary(channel, "SyncLiteSubscription")(sync, timeout=30, metadata=CLIENT).status.code
        == Code.OK
    )
    receive = channel.unary_stream(
        f"/{SERVICE}/ReceiveMessage",
        request_serializer=M.ReceiveMessageRequest.SerializeToString,
        response_deserializer=M.ReceiveMessageResponse.FromString,
    )
    ack = _unary(channel, "AckMessage")
    request = M.ReceiveMessageRequest(batch_size=32)
    request.group.name, request.message_queue.topic.name = group, PARENT
    request.invisible_duration.seconds, request.long_polling_timeout.seconds = 60, 1
    count = 0
    cpu0, start = _cpu(pids), time.perf_counter()
    while time.perf_counter() - start < seconds and count < per_topic * lites:
        got = [
            i.message
            for i in receive(request, timeout=10, metadata=CLIENT)
            if i.WhichOneof("content") == "message"
        ]
        if not got:
            continue
        done = ack_request(group, PARENT, got)
        assert ack(done, timeout=10, metadata=CLIENT).status.code == Code.OK
        count += len(got)
    elapsed = time.perf_counter() - start
    return _stats(f"lite receive+ack, {lites} lite topics", count, elapsed, [], _cpu(pids) - cpu0)


def subscribe_many(channel: grpc.Channel, count: int, seconds: float, pids: Pids) -> dict[str, Any]:
    """One client subscribing ``count`` new lite topics at once (its COMPLETE_ADD after a
    restart), then idle ``seconds``: the time the subscription took and the CPU an idle lite
    group of that many lite topics costs (its pulls' long polls, its 20 s rebalances)."""
    group = f"lite-bench-many-{count}"
    _join(channel, group)
    names = [f"many-{count}-{i}" for i in range(count)]
    sync = M.SyncLiteSubscriptionRequest(action=2, lite_topic_set=names)
    sync.topic.name, sync.group.name = PARENT, group
    call = _unary(channel, "SyncLiteSubscription")
    start = time.perf_counter()
    answer = call(sync, timeout=600, metadata=CLIENT)
    took = time.perf_counter() - start
    assert answer.status.code == Code.OK, answer
    cpu0, idle0 = _cpu(pids), time.perf_counter()
    time.sleep(seconds)  # a measurement window, not a synchronization
    idle = time.perf_counter() - idle0
    out = {
        "what": f"{count} lite topics subscribed at once, then idle",
        "subscribe_s": round(took, 2),
        "idle_cpu_percent": round((_cpu(pids) - cpu0) / idle * 100, 1),
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--lites", default="1,16,64", help="lite topics of the drain runs")
    parser.add_argument(
        "--many", type=int, default=0, help="then: this many lite topics subscribed, and idle"
    )
    args = parser.parse_args()
    body = b"x" * args.size
    with tempfile.TemporaryDirectory(prefix="actormq-lite-bench-") as tmp:
        proc, ready = _spawn(pathlib.Path(tmp))
        alone, alone_ready = _standalone(ready["namesrv"])
        try:
            with Admin(ready["namesrv"]) as admin:
                admin.create_topic(TOPIC, queues=4)
                admin.create_topic(PARENT, queues=4, attributes="+message.type=LITE")
            pids = (proc.pid, alone.pid)
            channel = grpc.insecure_channel(alone_ready["proxy"])
            existing = [f"existing-{i}" for i in range(16)]
            rows: list[dict[str, Any]] = []
            fresh = (f"new-{i}" for i in itertools.count())
            for round_no in range(args.rounds):
                rows.append(sends(channel, body, args.seconds, pids, "grpc send, plain", None))
                rows.append(
                    sends(
                        channel,
                        body,
                        args.seconds,
                        pids,
                        "lite send, existing",
                        itertools.cycle(existing),
                    )
                )
                rows.append(sends(channel, body, args.seconds, pids, "lite send, new", fresh))
                for lites in (int(n) for n in args.lites.split(",")):
                    tag = f"r{round_no}l{lites}"
                    rows.append(drain(channel, body, lites, args.seconds, pids, tag))
            if args.many:
                rows.append(subscribe_many(channel, args.many, args.seconds * 4, pids))
            channel.close()
            print("SUMMARY " + json.dumps(rows), flush=True)
        finally:
            for process in (alone, proc):
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
