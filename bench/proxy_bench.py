"""The gRPC proxy's cost: sends and receives through it against actormq's own client directly.

Spawns ``python -m runtime cluster --proxy`` (ASYNC_FLUSH, free ports, a temporary directory;
its proxy runs on gevent beside the broker) and a ``python -m runtime proxy`` over it (a process
of its own, plain threads), then, alternating ``--rounds`` times in this one invocation:

- ``native send``: actormq's ``Producer.send`` (remoting), one in flight: the baseline;
- ``grpc send``: SendMessage through each proxy, one in flight (raw gRPC calls built from
  actors/proxy/messaging.proto: what any RocketMQ 5 client sends, without a client library's
  own cost);
- ``grpc receive+ack``: ReceiveMessage batches of 32 of a backlog through each, each batch
  acked in one AckMessage.

Prints msgs/s, p50/p99 ms (sends), the ratio of gRPC to native sends, and the CPU the
cluster process (broker, and the in-process proxy) and the standalone proxy spent per
message. With ``--port-tls``, the gRPC rows are of the standalone proxy only: as started by
default (plain and TLS on one port, relayed by ``actors.proxy.front``), a second one with
``tls.server.mode=disabled`` (grpcio's own plain port: the baseline), and TLS clients of the
first.

    .venv/bin/python bench/proxy_bench.py [--seconds 5] [--rounds 2] [--size 1024] [--port-tls]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from actors.client import Admin, Message, Producer  # noqa: E402
from actors.proxy.proto import Code, FilterType, M, MessageType  # noqa: E402
from actors.proxy.server import SERVICE  # noqa: E402
from bench.meter import cpu_seconds  # noqa: E402

TOPIC = "ProxyBench"
Pids = tuple[int, ...]


def _cpu(pids: Pids) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _spawn(tmp: pathlib.Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "runtime", "cluster", "--proxy", "--ephemeral-ports"]
    cmd += ["--data-dir", str(tmp / "data"), "--consume-from", "first", "--log-level", "WARNING"]
    return _started(cmd)


def _standalone(namesrv: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "runtime", "proxy", "--namesrv-addr", namesrv]
    cmd += ["--ephemeral-ports", "--consume-from", "first", "--log-level", "WARNING", *extra]
    return _started(cmd)


def _tls_channel(address: str) -> grpc.Channel:
    """A TLS channel trusting the certificate the proxy at ``address`` presents."""
    host, port = address.rsplit(":", 1)
    cert = ssl.get_server_certificate((host, int(port))).encode()
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=cert))


def _started(cmd: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise SystemExit(f"{cmd[3]} did not start: {line!r}")
    return proc, dict(token.split("=", 1) for token in line.split()[1:])


def _stats(name: str, count: int, seconds: float, rtts: list[float], cpu: float) -> dict[str, Any]:
    out: dict[str, Any] = {"what": name, "msgs_per_s": round(count / seconds)}
    if rtts:
        ordered = sorted(rtts)
        out["p50_ms"] = round(statistics.median(ordered) * 1000, 3)
        out["p99_ms"] = round(ordered[int(len(ordered) * 0.99)] * 1000, 3)
    out["cpu_us_per_msg"] = round(cpu / max(count, 1) * 1e6)  # cluster + standalone proxy
    print(json.dumps(out), flush=True)
    return out


def native_send(namesrv: str, body: bytes, seconds: float, pids: Pids) -> dict[str, Any]:
    with Producer("proxy-bench-native", namesrv) as producer:
        producer.send(Message(TOPIC, body))  # route fetched, connection open
        rtts: list[float] = []
        cpu0, start = _cpu(pids), time.perf_counter()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            producer.send(Message(TOPIC, body, tags="bench"))
            rtts.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        return _stats("native send", len(rtts), elapsed, rtts, _cpu(pids) - cpu0)


def grpc_send(
    channel: grpc.Channel, body: bytes, seconds: float, pids: Pids, what: str
) -> dict[str, Any]:
    call = channel.unary_unary(
        f"/{SERVICE}/SendMessage",
        request_serializer=M.SendMessageRequest.SerializeToString,
        response_deserializer=M.SendMessageResponse.FromString,
    )
    rtts: list[float] = []
    cpu0, start = _cpu(pids), time.perf_counter()
    seq = 0
    while time.perf_counter() - start < seconds:
        request = M.SendMessageRequest()
        msg = request.messages.add()
        msg.topic.name, msg.body = TOPIC, body
        system = msg.system_properties
        system.tag, system.message_id = "bench", f"01{seq:032X}"
        system.message_type, system.body_encoding = MessageType.NORMAL, 1
        seq += 1
        t = time.perf_counter()
        response = call(request, timeout=10)
        rtts.append(time.perf_counter() - t)
        assert response.status.code == Code.OK, response
    elapsed = time.perf_counter() - start
    return _stats(f"grpc send, {what}", len(rtts), elapsed, rtts, _cpu(pids) - cpu0)


def ack_request(group: str, topic: str, messages: list[Any]) -> Any:
    """One AckMessage of every received message (with its lite topic, if any)."""
    done = M.AckMessageRequest()
    done.group.name, done.topic.name = group, topic
    for m in messages:
        entry = done.entries.add(
            message_id=m.system_properties.message_id,
            receipt_handle=m.system_properties.receipt_handle,
        )
        if m.system_properties.HasField("lite_topic"):
            entry.lite_topic = m.system_properties.lite_topic
    return done


def grpc_receive(
    channel: grpc.Channel, group: str, seconds: float, pids: Pids, what: str
) -> dict[str, Any]:
    receive = channel.unary_stream(
        f"/{SERVICE}/ReceiveMessage",
        request_serializer=M.ReceiveMessageRequest.SerializeToString,
        response_deserializer=M.ReceiveMessageResponse.FromString,
    )
    ack = channel.unary_unary(
        f"/{SERVICE}/AckMessage",
        request_serializer=M.AckMessageRequest.SerializeToString,
        response_deserializer=M.AckMessageResponse.FromString,
    )
    request = M.ReceiveMessageRequest(batch_size=32)
    request.group.name, request.message_queue.topic.name = group, TOPIC
    request.filter_expression.type, request.filter_expression.expression = FilterType.TAG, "*"
    request.invisible_duration.seconds, request.long_polling_timeout.seconds = 60, 1
    count = 0
    cpu0, start = _cpu(pids), time.perf_counter()
    while time.perf_counter() - start < seconds:
        got = [
            i.message for i in receive(request, timeout=10) if i.WhichOneof("content") == "message"
        ]
        if not got:
            break
        assert ack(ack_request(group, TOPIC, got), timeout=10).status.code == Code.OK
        count += len(got)
    elapsed = time.perf_counter() - start
    return _stats(f"grpc receive+ack, {what}", count, elapsed, [], _cpu(pids) - cpu0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--port-tls", action="store_true", help="the standalone proxy's port modes (above)"
    )
    args = parser.parse_args()
    body = b"x" * args.size
    with tempfile.TemporaryDirectory(prefix="actormq-proxy-bench-") as tmp:
        proc, ready = _spawn(pathlib.Path(tmp))
        alone, alone_ready = _standalone(ready["namesrv"])
        plain_only = None
        if args.port_tls:
            config = pathlib.Path(tmp) / "tls.properties"
            config.write_text("tls.server.mode=disabled\n")
            plain_only = _standalone(ready["namesrv"], "--tls-config", str(config))
        try:
            print("spawned:", " ".join(f"{k}={v}" for k, v in ready.items()), flush=True)
            with Admin(ready["namesrv"]) as admin:
                admin.create_topic(TOPIC, queues=4)
            pids = (proc.pid, alone.pid)
            proxies = {"in-process (gevent)": ready["proxy"], "standalone": alone_ready["proxy"]}
            channels = {what: grpc.insecure_channel(address) for what, address in proxies.items()}
            if plain_only is not None:
                pids += (plain_only[0].pid,)
                channels = {
                    "standalone, tls disabled": grpc.insecure_channel(plain_only[1]["proxy"]),
                    "standalone, default port, plain": channels.pop("standalone"),
                    "standalone, default port, TLS": _tls_channel(alone_ready["proxy"]),
                }
            rows: list[dict[str, Any]] = []
            for round_no in range(args.rounds):
                native = native_send(ready["namesrv"], body, args.seconds, pids)
                rows.append(native)
                for what, channel in channels.items():
                    sent = grpc_send(channel, body, args.seconds, pids, what)
                    group = f"proxy-bench-{round_no}-{len(rows)}"
                    rows += [sent, grpc_receive(channel, group, args.seconds, pids, what)]
                    ratio = sent["msgs_per_s"] / max(native["msgs_per_s"], 1)
                    print(f"round {round_no + 1}: {what} / native send = {ratio:.2f}", flush=True)
            for channel in channels.values():
                channel.close()
            print("SUMMARY " + json.dumps(rows), flush=True)
        finally:
            for process in (*([plain_only[0]] if plain_only else []), alone, proc):
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
