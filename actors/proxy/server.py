"""ProxyServer: the gRPC server of ``apache.rocketmq.v2.MessagingService``.

In a process gevent monkey-patched (``python -m runtime cluster --proxy``: the proxy beside
the brokers) grpcio runs cooperatively once ``grpc.experimental.gevent.init_gevent()`` ran
(before any other grpc object: ``ProxyServer`` calls it), so the handler pool is greenlets and
a long-polling receive or an open telemetry stream holds a greenlet. In a plain process
(``python -m runtime proxy``) it is grpcio's own: real threads, about half the CPU per call
(docs/benchmarks.md, "Session 21"), and actormq's client on its hub thread. Each handler is wrapped:
an exception becomes a response with status INTERNAL_ERROR (logged with its traceback; a
telemetry stream ends with gRPC's status INTERNAL instead), and ``gevent.Timeout`` /
``GreenletExit`` never leave it.

Calls not listed (PullMessage, UpdateOffset, GetOffset, QueryOffset and the
lite-topic calls) are answered UNIMPLEMENTED by gRPC itself.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.monkey
import grpc
import grpc.experimental.gevent as grpc_gevent
from loguru import logger

from actors.proxy import conn_limits, lite_calls, recall, receiving, routes
from actors.proxy.auth import ProxyAuth
from actors.proxy.front import Front
from actors.proxy.held_calls import HeldCalls
from actors.proxy.metrics import CallStats
from actors.proxy.port_tls import PLAIN, PortTls
from actors.proxy.proto import Code, M
from actors.proxy.resources import resource_refusal
from actors.proxy.service import ProxyService, client_id, status
from actors.proxy.telemetry import end_internal
from runtime.tls import TlsMode

SERVICE = "apache.rocketmq.v2.MessagingService"
WORKERS = 1024
"""The gRPC server's workers (threads; greenlets in ``cluster --proxy``): one per call running."""
MAX_HELD = WORKERS - WORKERS // 8
"""Telemetry streams and waiting receives at once, at most: the other eighth of the workers is
left to every other call (a send, an ack, a route) however many clients hold a stream."""
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest gRPC message taken: a 4 MiB body plus properties, with room (grpcio's default 4 MiB
would refuse the largest message the broker stores)."""

_ERRORS = (Exception, gevent.Timeout, gevent.GreenletExit)
KEEPALIVE_MS = 60_000
"""The proxy pings a connection idle this long; one that does not answer within
``KEEPALIVE_TIMEOUT_MS`` is closed (and its calls cancelled)."""
KEEPALIVE_TIMEOUT_MS = 20_000
HANDSHAKE_TIMEOUT_MS = 10_000
"""A connection's TLS handshake and first SETTINGS frame come within this, or grpcio closes it
(grpcio's default: 120 s, which let a flood of connections that sent a byte hold them)."""
REPORT_EVERY_S = 1.0
"""How often the front's refusals are looked at (``conn_limits.Refusals.report``)."""


class Guard:
    """What wraps every call: the names' and the ACL's checks (``auth``, None: none), the call
    counts (``stats``, None: not kept), and the bound on calls that hold a worker for long
    (telemetry streams, waiting receives; ``held_calls``): past ``max_held`` of them, a
    client's telemetry streams, or calls without a client id on one connection, a new one is
    answered TOO_MANY_REQUESTS at once, so the workers left serve every other call."""

    def __init__(
        self,
        auth: ProxyAuth | None = None,
        stats: CallStats | None = None,
        max_held: int = MAX_HELD,
    ) -> None:
        self.auth = auth
        self.stats = stats
        self.held_calls = HeldCalls(max_held)

    @property
    def max_held(self) -> int:
        return self.held_calls.max_held

    @max_held.setter
    def max_held(self, value: int) -> None:
        self.held_calls.max_held = value

    @property
    def held(self) -> int:
        return self.held_calls.held

    def refusal(self, name: str, request: Any, context: Any) -> tuple[int, str] | None:
        """Why the call is refused: an illegal topic or group name, then the ACL's verdict."""
        if request is not None:
            illegal = resource_refusal(request)
            if illegal is not None:
                return illegal
        return self.auth.refusal(name, request, context) if self.auth is not None else None

    def record(self, name: str, code: int, since: float) -> None:
        if self.stats is not None:
            self.stats.record(name, code, time.monotonic() - since)


def _unary(handler: Callable[[Any, Any], Any], response_type: Any, name: str, guard: Guard) -> Any:
    @functools.wraps(handler)
    def call(request: Any, context: Any) -> Any:
        since = time.monotonic()
        try:
            refused = guard.refusal(name, request, context)
            if refused is not None:
                response = status(response_type(), *refused)
            else:
                response = handler(request, context)
        except _ERRORS as exc:  # BaseExceptions (Timeout, GreenletExit) included
            logger.opt(exception=exc).error("proxy: {} failed", name)
            response = status(response_type(), Code.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        guard.record(name, response.status.code, since)
        return response

    return call


def _stream(
    handler: Callable[[Any, Any], Iterator[Any]],
    response_type: Any,
    name: str,
    guard: Guard,
) -> Any:
    """A server-streaming (``ReceiveMessage``) or bidirectional (``Telemetry``: its request is
    the client's stream, so only the signature is checked) call; counted by its first status
    (OK when it sent none) once it ends."""

    @functools.wraps(handler)
    def call(request: Any, context: Any) -> Iterator[Any]:
        since = time.monotonic()
        first: list[int] = []
        keys = (client_id(context), context.peer() or "", name == "Telemetry")
        refused = guard.held_calls.hold(*keys)
        if refused is not None:
            yield status(response_type(), Code.TOO_MANY_REQUESTS, refused)
            guard.record(name, Code.TOO_MANY_REQUESTS, since)
            return
        try:
            refused = guard.refusal(name, request if name != "Telemetry" else None, context)
            if refused is not None:
                first.append(refused[0])
                yield status(response_type(), *refused)
                return
            for item in handler(request, context):
                if not first and item.HasField("status"):
                    first.append(item.status.code)
                yield item
        except _ERRORS as exc:
            if context.is_active():
                logger.opt(exception=exc).error("proxy: {} failed", name)
                first.append(Code.INTERNAL_ERROR)
                text = f"{type(exc).__name__}: {exc}"
                if name == "Telemetry":  # (a stream of commands: it ends with gRPC's status)
                    end_internal(context, text)
                else:
                    yield status(response_type(), Code.INTERNAL_ERROR, text)
        finally:
            guard.held_calls.release(*keys)
            guard.record(name, first[0] if first else Code.OK, since)

    return call


def method_handlers(service: ProxyService, guard: Guard | None = None) -> dict[str, Any]:
    """Method name -> grpc handler for ``SERVICE`` (each call checked and counted by
    ``guard``). A call ``X`` takes ``M.XRequest`` and answers ``M.XResponse``."""
    guard = guard or Guard()

    def bound(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        return functools.partial(fn, service)

    unary_calls: dict[str, Callable[[Any, Any], Any]] = {
        "QueryRoute": bound(routes.query_route),
        "Heartbeat": service.heartbeat,
        "SendMessage": service.send_message,
        "QueryAssignment": bound(routes.query_assignment),
        "AckMessage": bound(receiving.ack_message),
        "ForwardMessageToDeadLetterQueue": bound(receiving.forward_to_dead_letter_queue),
        "EndTransaction": service.end_transaction,
        "NotifyClientTermination": service.notify_client_termination,
        "RecallMessage": bound(recall.recall_message),
        "ChangeInvisibleDuration": bound(receiving.change_invisible_duration),
        "SyncLiteSubscription": bound(lite_calls.sync_lite_subscription),
    }
    handlers = {}
    for name, fn in unary_calls.items():
        request, response = getattr(M, f"{name}Request"), getattr(M, f"{name}Response")
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _unary(fn, response, name, guard),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
    handlers["ReceiveMessage"] = grpc.unary_stream_rpc_method_handler(
        _stream(
            bound(receiving.receive_message), M.ReceiveMessageResponse, "ReceiveMessage", guard
        ),
        request_deserializer=M.ReceiveMessageRequest.FromString,
        response_serializer=M.ReceiveMessageResponse.SerializeToString,
    )
    handlers["Telemetry"] = grpc.stream_stream_rpc_method_handler(
        _stream(service.telemetry, M.TelemetryCommand, "Telemetry", guard),
        request_deserializer=M.TelemetryCommand.FromString,
        response_serializer=M.TelemetryCommand.SerializeToString,
    )
    return handlers


class ProxyServer:
    """``start()`` binds ``host:port`` (0: a free port) and returns the port bound: grpcio
    itself, or (``tls`` permissive, or ``proxy_protocol``) a ``Front`` relaying to grpcio's
    loopback ports, one plain and one TLS (or the one the mode takes)."""

    def __init__(
        self,
        service: ProxyService,
        host: str,
        port: int,
        *,
        workers: int = WORKERS,
        tls: PortTls = PLAIN,
        guard: Guard | None = None,
        proxy_protocol: bool = False,
    ) -> None:
        if gevent.monkey.is_module_patched("threading"):
            grpc_gevent.init_gevent()  # grpc's I/O as hub callbacks, its pool greenlets
        self.service = service
        self.host = host
        self.port = port
        self.tls = tls
        self.front: Front | None = None
        self._stopped = threading.Event()
        self.proxy_protocol = proxy_protocol
        self.guard = guard or Guard()
        self.guard.max_held = workers - workers // 8
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="actormq-proxy"
        )
        self.server = grpc.server(
            self._pool,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
                # a client gone without a word (a half-open connection) frees its telemetry
                # stream's worker within a minute or two, not hours
                ("grpc.keepalive_time_ms", KEEPALIVE_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
                # (when grpcio owns the port; through the front, the front's bound comes first)
                ("grpc.max_allowed_incoming_connections", conn_limits.MAX_CONNECTIONS),
            ],
        )
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, method_handlers(service, self.guard)),)
        )

    def start(self) -> int:
        target = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        credentials = self.tls.credentials
        permissive = self.tls.mode is TlsMode.PERMISSIVE and credentials is not None
        if permissive or self.proxy_protocol:
            plain = secure = None
            if permissive or credentials is None:
                plain = self.server.add_insecure_port("127.0.0.1:0")
            if credentials is not None:
                secure = self.server.add_secure_port("127.0.0.1:0", credentials)
            if plain == 0 or secure == 0:
                raise OSError("proxy: cannot listen on 127.0.0.1 (the front's gRPC ports)")
            self.front = Front(
                self.host, self.port, plain, secure, proxy_protocol=self.proxy_protocol
            )
            bound = self.front.start()
            threading.Thread(
                target=self._report, args=(self.front,), name="actormq-proxy-front", daemon=True
            ).start()
        elif credentials is None:
            bound = self.server.add_insecure_port(target)
        else:
            bound = self.server.add_secure_port(target, credentials)
        if not bound:
            raise OSError(f"proxy: cannot listen on {target}")
        try:
            self.service.start()
            self.server.start()
        except BaseException:
            if self.front is not None:
                self.front.close_all()
            raise
        self.port = bound
        return bound

    def _report(self, front: Front) -> None:
        """The front's refusals logged (its threads do not log), until the server stops."""
        while not self._stopped.wait(REPORT_EVERY_S):
            front.refusals.report()

    def stop(self, grace: float = 2.0) -> None:
        """Stop taking calls, let running ones end within ``grace`` seconds, then close the
        service's clients (writing the groups' offsets)."""
        if self.front is not None:
            self.front.stop_accepting()  # calls under way still get their answers
        self.server.stop(grace).wait(grace + 1.0)
        if self.front is not None:
            self.front.close_all()
        self._stopped.set()
        self.service.stop()
        self._pool.shutdown(wait=False)
