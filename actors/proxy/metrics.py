"""The proxy's Prometheus metrics (``--metrics-port``): its calls and the state it keeps.

- ``actormq_proxy_calls_total{method,code}``: calls answered, by gRPC method and RocketMQ
  ``Code`` name (a stream by its first status);
- ``actormq_proxy_call_seconds_total{method}``: the time they took (with the count above, the
  mean; a receive's includes its long poll);
- ``rocketmq_rpc_latency{protocol_type="grpc", action, result}``: the same calls as RocketMQ
  5's proxy's histogram (ms; ``runtime.latency``'s buckets; ``action`` the method,
  ``result`` the code's name), but Telemetry streams; a receive's includes its long poll;
- ``actormq_proxy_groups``, ``actormq_proxy_in_flight{consumer_group}`` (deliveries handed out
  and not acked), ``actormq_proxy_telemetry_streams``, ``actormq_proxy_clients`` (heard from
  within 30 s);
- ``actormq_proxy_lite_clients{consumer_group}`` (lite consumers with a lite subscription
  set), ``actormq_proxy_lite_topics{consumer_group}`` (lite topics the group consumes).

``CallStats`` counts (thread-safe: one lock, a few dict updates per call); ``MetricsServer``
serves ``GET /metrics`` from a thread of its own (``http.server``: the proxy may run without
gevent, and a scrape is rare), reading the service's state at each scrape.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

from actors.proxy.proto import Code
from runtime.latency import LatencyHistogram
from runtime.prometheus import CONTENT_TYPE, Family, render


class CallStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[tuple[str, str], int] = {}
        self.seconds: dict[str, float] = {}
        self.latency = LatencyHistogram(
            "rocketmq_rpc_latency",
            "Milliseconds the gRPC calls took.",
            ("protocol_type", "action", "result"),
            lock=self._lock,
        )

    def record(self, method: str, code: int, seconds: float) -> None:
        try:
            name = Code(code).name
        except ValueError:
            name = str(code)
        with self._lock:
            key = (method, name)
            self.calls[key] = self.calls.get(key, 0) + 1
            self.seconds[method] = self.seconds.get(method, 0.0) + seconds
            if method != "Telemetry":  # (a stream open for hours: no latency)
                self.latency.observe_locked(("grpc", method, name), seconds)

    def families(self, service: Any) -> list[Family]:
        calls = Family("actormq_proxy_calls_total", "counter", "gRPC calls answered")
        seconds = Family("actormq_proxy_call_seconds_total", "counter", "time the calls took")
        with self._lock:
            for (method, code), count in sorted(self.calls.items()):
                calls.add(count, method=method, code=code)
            for method, total in sorted(self.seconds.items()):
                seconds.add(total, method=method)
        groups = dict(service.groups)
        group_count = Family("actormq_proxy_groups", "gauge", "consumer groups served here")
        group_count.add(len(groups))
        in_flight = Family("actormq_proxy_in_flight", "gauge", "deliveries not acked yet")
        for name, pop in sorted(groups.items()):
            in_flight.add(len(pop.in_flight), consumer_group=name)
        streams = Family("actormq_proxy_telemetry_streams", "gauge", "open telemetry streams")
        streams.add(len(service.telemetry_streams.streams))
        clients = Family("actormq_proxy_clients", "gauge", "clients heard from within 30 s")
        clients.add(sum(1 for who in list(service.seen) if service.alive(who)))
        lite_clients = Family(
            "actormq_proxy_lite_clients", "gauge", "lite consumers with lite subscriptions"
        )
        lite_topics = Family("actormq_proxy_lite_topics", "gauge", "lite topics consumed")
        for name, (members, topics) in sorted(service.lite.summary().items()):
            lite_clients.add(members, consumer_group=name)
            lite_topics.add(topics, consumer_group=name)
        latency = self.latency.family()
        return [
            calls,
            seconds,
            latency,
            group_count,
            in_flight,
            streams,
            clients,
            lite_clients,
            lite_topics,
        ]


READ_TIMEOUT_S = 10.0
"""A scrape connection's reads and writes wait at most this long: each connection holds a
thread, and one that sent nothing held it for ever (idle connections piled up threads)."""


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (0: a free port); ``start()`` returns the port."""

    def __init__(
        self,
        service: Any,
        stats: CallStats,
        host: str,
        port: int,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = read_timeout_s  # (each read and write: an idle connection ends)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = render(outer.stats.families(outer.service))
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:  # scrapes are not worth a log line
                pass

        self.service = service
        self.stats = stats
        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="actormq-proxy-metrics", daemon=True
        )
        self._thread.start()
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
