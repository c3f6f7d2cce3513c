"""R24 / R25: RocketMQ 5's gRPC clients through a standalone proxy while the broker (R24), or
the broker and the proxy (R25), are killed.

Producers send over gRPC (``SendMessage``, one message each, message ids unique) and one
consumer receives and acks over gRPC (``ReceiveMessage`` / ``AckMessage``, a simple consumer
of group ``chaos``) through a proxy process (``python -m runtime proxy``); the nemesis kills
the broker (kill -9) and restarts it; in R25 it also kills the proxy, restarted on its port
(its deliveries out are lost with it: the group reads again from the committed offsets, so
duplicates are expected). Every SendMessage answered OK must be in the final log and reach the
gRPC consumer (at least once: duplicates counted); nothing unexpected is read.

A send is ``ok`` only when answered OK; any other code, or a gRPC error, is ``info`` (the
proxy's producer may have stored it). The gRPC answer names no queue, so sends carry none:
offsets are checked on the reads (the consumer's and the verify read).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import grpc

from actors.proxy.proto import Code, FilterType, M, MessageType
from actors.proxy.server import SERVICE
from tests.chaos import checker as C
from tests.chaos.history import History, Outcome, Read, queue_key
from tests.chaos.nemesis import KillRestart, Timing
from tests.chaos.scenarios import (
    GROUP,
    TOPIC,
    Result,
    Run,
    RunConfig,
    _check,
    _common_criteria,
)
from tests.chaos.workload import run_paced
from tests.harness import RuntimeProcess

INVISIBLE_S = 10


def _stub(channel: grpc.Channel, method: str, request: Any, response: Any) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response.FromString,
    )


class GrpcProducerThread:
    """One gRPC writer ``g<n>``: sends of unique values, paced, each recorded."""

    def __init__(self, history: History, proxy: str, name: str, rate: float, timeout: float):
        self.history = history
        self.name = name
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.timeout = timeout
        self.counter = 0
        self.stopped = threading.Event()
        self.channel = grpc.insecure_channel(proxy)
        self.metadata = [("x-mq-client-id", f"chaos-{name}"), ("x-mq-language", "JAVA")]
        self.thread = threading.Thread(target=self._loop, name=f"grpc-{name}", daemon=True)

    def start(self) -> GrpcProducerThread:
        self.thread.start()
        return self

    def send_one(self) -> None:
        value = f"{self.name}-{self.counter}"
        self.counter += 1
        request = M.SendMessageRequest()
        msg = request.messages.add()
        msg.topic.name, msg.body = TOPIC, value.encode()
        msg.system_properties.message_id = f"01CHAOS{self.name}{self.counter:012d}"
        msg.system_properties.message_type = MessageType.NORMAL
        msg.system_properties.body_encoding = 1
        op = self.history.invoke_send(self.name, value)
        try:
            call = _stub(self.channel, "SendMessage", request, M.SendMessageResponse)
            answer = call(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            text = f"{exc.code()}: {exc.details()}"[:300]
            self.history.complete_send(self.name, op, value, Outcome("info", "GRPC_ERROR", text))
            return
        code = answer.status.code
        if code == Code.OK:
            self.history.complete_send(self.name, op, value, Outcome("ok", "SEND_OK"))
        else:
            status = Code(code).name if code in Code._value2member_map_ else f"CODE_{code}"
            text = answer.status.message[:300]
            self.history.complete_send(self.name, op, value, Outcome("info", status, text))

    def _loop(self) -> None:
        run_paced(self.stopped, self.interval, self.send_one)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(self.timeout + 10)

    def close(self) -> None:
        self.stop()
        self.channel.close()


class GrpcConsumer:
    """A simple consumer of ``GROUP`` over gRPC: receives, records each message as a read,
    acks it."""

    def __init__(self, history: History, proxy: str, name: str) -> None:
        self.history = history
        self.name = name
        self.stopped = threading.Event()
        self.channel = grpc.insecure_channel(proxy)
        self.metadata = [("x-mq-client-id", f"chaos-{name}"), ("x-mq-language", "JAVA")]
        self.thread = threading.Thread(target=self._loop, name=f"grpc-{name}", daemon=True)

    def start(self) -> GrpcConsumer:
        self.thread.start()
        return self

    def _loop(self) -> None:
        request = M.ReceiveMessageRequest(batch_size=32)
        request.group.name, request.message_queue.topic.name = GROUP, TOPIC
        request.filter_expression.type, request.filter_expression.expression = FilterType.TAG, "*"
        request.invisible_duration.seconds = INVISIBLE_S
        request.long_polling_timeout.seconds = 1
        receive = self.channel.unary_stream(
            f"/{SERVICE}/ReceiveMessage",
            request_serializer=M.ReceiveMessageRequest.SerializeToString,
            response_deserializer=M.ReceiveMessageResponse.FromString,
        )
        while not self.stopped.is_set():
            try:
                items = list(receive(request, timeout=15, metadata=self.metadata))
            except grpc.RpcError as exc:
                self.history.event("consumer-note", self.name, what=str(exc.code()))
                self.stopped.wait(0.5)  # a back-off, not synchronisation
                continue
            got = [i.message for i in items if i.HasField("message")]
            if not got:
                continue
            reads = [
                Read(
                    queue_key(TOPIC, "broker-a", m.system_properties.queue_id),
                    m.system_properties.queue_offset,
                    m.body.decode(),
                )
                for m in got
            ]
            self.history.reads(self.name, GROUP, "grpc", reads, f="read")
            self._ack(got)

    def _ack(self, messages: list[Any]) -> None:
        request = M.AckMessageRequest()
        request.group.name, request.topic.name = GROUP, TOPIC
        for m in messages:
            entry = request.entries.add()
            entry.message_id = m.system_properties.message_id
            entry.receipt_handle = m.system_properties.receipt_handle
        with contextlib.suppress(grpc.RpcError):  # not acked: it comes again (at least once)
            _stub(self.channel, "AckMessage", request, M.AckMessageResponse)(
                request, timeout=10, metadata=self.metadata
            )

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped.set()
        self.thread.join(timeout)
        self.channel.close()


class ProxyNode:
    """The proxy process as the nemesis sees a node: ``kill()`` is kill -9, ``start()`` starts
    it again on the same port (its clients' address)."""

    def __init__(self, namesrv: str) -> None:
        self.name = "proxy"
        self.namesrv = namesrv
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.incarnation = 0
        self.process: RuntimeProcess | None = None
        self.address = f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.proc.pid

    def start(self) -> None:
        args = ["proxy", "--namesrv-addr", self.namesrv, "--listen-port", str(self.port)]
        args += ["--consume-from", "first", "--long-polling", "1"]
        self.incarnation += 1
        self.process = RuntimeProcess(args)
        self.process.wait_ready(timeout=30)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.terminate()
            self.process.kill()


def r24(cfg: RunConfig) -> Result:
    """R24: gRPC producers and a gRPC consumer through a proxy; kill -9 + restart of the
    broker. Every OK'd send in the final log and received by the gRPC consumer."""
    return _through_the_proxy("R24", cfg, kill_proxy=False)


def r25(cfg: RunConfig) -> Result:
    """R25: as R24, the proxy killed -9 and restarted too (on its port)."""
    return _through_the_proxy("R25", cfg, kill_proxy=True)


def _through_the_proxy(name: str, cfg: RunConfig, *, kill_proxy: bool) -> Result:
    run = Run(name, cfg)
    try:
        node = run.single_broker()
        label = "broker-a/0"
        proxy_node = ProxyNode(run.cluster.namesrv)
        run._closers.append(proxy_node.stop)
        proxy_node.start()
        proxy = proxy_node.address
        consumer = GrpcConsumer(run.history, proxy, "c0-grpc").start()
        run._closers.append(consumer.stop)
        for i in range(cfg.producers):
            producer = GrpcProducerThread(
                run.history, proxy, f"g{i}", cfg.rate, cfg.send_timeout + 2.0
            )
            run.producers.append(producer.start())  # type: ignore[arg-type]
        run.wait_for_acks(timeout=60)
        faults: list[Any] = [
            KillRestart(node, after_restart=lambda: run.cluster.wait_registered(label))
        ]
        if kill_proxy:
            faults.append(KillRestart(proxy_node))  # type: ignore[arg-type]
        run.nemesis(faults, Timing(interval=(2.0, 5.0), window=(0.1, 1.0)))
        run.facts["recovered_after_s"] = round(run.wait_for_acks(timeout=60), 3)
        for p in run.producers:
            p.stop()
        run.history.event("producers-stopped", "workload")
        run.drain_group()
        ends = run.verify()
    finally:
        run.close()
    report = _check(run)
    verdict = C.Verdict()
    verdict.require("at least one kill", run.facts.get("faults", 0) >= 1, run.facts)
    _common_criteria(run, report, verdict, ends=ends)
    group = C.total_queue(run.history.snapshot(), [GROUP])
    verdict.require("the gRPC consumer drained", bool(run.facts.get("drained")), group.lost)
    verdict.require("gRPC group lost = ∅", not group.lost, group.lost)
    run.facts["group_duplicates"] = sum(group.duplicated.values())
    return run.result(verdict, report)


PROXY_SCENARIOS = {"R24": r24, "R25": r25}
