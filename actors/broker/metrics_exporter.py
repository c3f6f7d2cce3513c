"""MetricsExporter: the broker's Prometheus endpoint (RocketMQ 5's ``metricsExporterType=PROM``).

Messages accepted: none besides stop. It owns a gevent StreamServer over a listening socket
the process bound (``metricsPromExporterHost``:``metricsPromExporterPort``; it stays bound
across restarts of this actor, as the remoting port does) and answers, in each connection's own
greenlet, ``GET /metrics`` with the figures of ``broker_metrics.collect`` in Prometheus' text
format (``runtime.prometheus``), then closes the connection. Any other path: 404; any other
method: 405; a request line or headers that do not arrive within ``READ_TIMEOUT_S`` or exceed
``MAX_REQUEST_BYTES``: closed unanswered (400 when the line is not HTTP); an answer the peer
does not take within ``READ_TIMEOUT_S``: dropped. A scrape that fails
(the store restarting under it) answers 503 naming the error. No state besides the server; no
durability point (it only reads).
"""

from __future__ import annotations

import socket
from typing import Any

import gevent
from gevent.server import StreamServer
from loguru import logger

from actors.broker import broker_metrics
from actors.broker.context import BrokerContext
from runtime.actor import GeventActor
from runtime.net import address_of
from runtime.prometheus import CONTENT_TYPE, render

READ_TIMEOUT_S = 10.0
MAX_REQUEST_BYTES = 16 * 1024


class MetricsExporter(GeventActor):
    """See the module docstring."""

    def __init__(self, ctx: BrokerContext, sock: socket.socket) -> None:
        super().__init__()
        self.ctx = ctx
        self._sock = sock
        self._server: StreamServer | None = None

    def on_start(self) -> None:
        self._server = StreamServer(self._sock, self._serve)
        self._server.start()
        logger.info("{}: Prometheus metrics on http://{}/metrics", self.ctx.name, self.address)

    @property
    def address(self) -> str:
        return address_of(self._sock)

    def on_stop(self) -> None:
        if self._server is not None:
            self._server.stop_accepting()
            self._server = None

    def _serve(self, conn: socket.socket, _address: Any) -> None:
        try:
            conn.settimeout(READ_TIMEOUT_S)  # each read and the answer's write
            head = None
            with gevent.Timeout(READ_TIMEOUT_S, False):  # the whole request head
                head = _read_head(conn)
            if head is not None:
                conn.sendall(self._answer(head))
        except OSError:  # the peer went away or stalled (socket.timeout is one)
            pass
        finally:
            conn.close()

    def _answer(self, head: bytes) -> bytes:
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        method, path, version = [*first.split(b" "), b"", b""][:3]
        if not version.startswith(b"HTTP/"):
            return _response(400, b"not an HTTP request\n")
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"GET /metrics\n", allow=True)
        if path.split(b"?", 1)[0] != b"/metrics":
            return _response(404, b"GET /metrics\n")
        try:
            body = render(broker_metrics.collect(self.ctx), broker_metrics.common_labels(self.ctx))
        except Exception as exc:  # the store stopping under the scrape, a dead actor
            logger.warning("{}: metrics scrape failed: {!r}", self.ctx.name, exc)
            return _response(503, f"metrics unavailable: {exc!r}\n".encode())
        return _response(200, b"" if method == b"HEAD" else body, CONTENT_TYPE, len(body))


def _read_head(conn: socket.socket) -> bytes | None:
    """The request line and headers (up to the blank line), or None when the peer closed or
    sent more than ``MAX_REQUEST_BYTES`` without ending them."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        if len(data) > MAX_REQUEST_BYTES:
            return None
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    length: int | None = None,
    *,
    allow: bool = False,
) -> bytes:
    reason = _REASONS.get(status, "Service Unavailable")
    head = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
    ]
    if allow:
        head.append("Allow: GET, HEAD")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
