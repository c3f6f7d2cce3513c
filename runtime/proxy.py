"""The proxy role: RocketMQ 5's gRPC clients served over a cluster (docs/proxy.md).

``python -m runtime proxy --namesrv-addr HOST:PORT`` runs one proxy process (RocketMQ's proxy
in cluster mode: it reaches brokers through the name server as a client does);
``python -m runtime cluster --proxy`` runs one beside the profile's name servers and brokers in
the same process. Either way ``ProxyRole`` owns the gRPC server: ``start()`` returns the
address bound, ``stop()`` stops taking calls and closes the proxy's clients (its groups'
offsets written).

The gRPC port takes plain and TLS clients by default, as RocketMQ's proxy does (a certificate
made at start; RocketMQ 5's Java and Go clients use TLS unless told not to): with
``--tls-config``, ``tls.server.mode`` ``permissive`` (the same, with ``tls.server.certPath`` /
``keyPath``), ``enforcing`` (TLS only) or ``disabled`` (plain only), see
``actors.proxy.port_tls``; ``tls.enable=true`` makes the proxy's own connections to the cluster
TLS (``tls.client.*``).

grpcio and protobuf are the ``proxy`` extra (``pip install 'actormq[proxy]'``); without them
the role refuses to start with a ConfigError saying so.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import threading
from typing import Any

import msgspec
from loguru import logger

from runtime import tls
from runtime.errors import ActorMQError, ConfigError

DEFAULT_PORT = 8081
"""RocketMQ's proxy's gRPC port (grpcServerPort)."""


def add_proxy_options(parser: argparse.ArgumentParser) -> None:
    """The options of how a proxy serves (``proxy``, and ``cluster --proxy``)."""
    parser.add_argument(
        "--proxy-advertise",
        metavar="HOST",
        help="the host clients are told to reach the proxy at, when they connected through "
        "an address they cannot use again (default: the address they used)",
    )
    parser.add_argument(
        "--long-polling",
        type=float,
        default=20.0,
        metavar="S",
        help="the most seconds a receive waits for messages (default 20)",
    )
    parser.add_argument(
        "--invisible",
        type=float,
        default=60.0,
        metavar="S",
        help="a delivery's invisible duration when the consumer names none (default 60)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="deliveries before a message goes to %%DLQ%%<group>, for every group (default: "
        "each group's retryMaxTimes + 1, RocketMQ's rule: 17 unless its config says)",
    )
    parser.add_argument(
        "--acl-file",
        type=pathlib.Path,
        metavar="FILE",
        help="RocketMQ's plain_acl.yml: check every client's signature and permissions "
        "(docs/proxy.md, Access control)",
    )
    parser.add_argument(
        "--access-key", help="the proxy's own ACL account toward the brokers (with --secret-key)"
    )
    parser.add_argument("--secret-key", help="(see --access-key)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics of the proxy on GET /metrics at this port "
        "(0 or --ephemeral-ports: a free one)",
    )
    parser.add_argument(
        "--max-lite-topics",
        type=int,
        metavar="N",
        help="lite topics the proxy makes in the cluster at most, each a topic of one queue "
        "(default 20000, RocketMQ's LMQ quota; past it a send to a new one is refused)",
    )
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="read a load balancer's PROXY protocol header (v1 or v2) at the start of a "
        "connection and take the client it names as the caller (ACL whitelists); only "
        "behind a balancer that sends it: a client reaching the port directly could claim "
        "any address",
    )
    parser.add_argument(
        "--consume-from",
        choices=("last", "first"),
        default="last",
        help="where a consumer group new to the brokers starts reading (default last)",
    )


def acl_of(args: argparse.Namespace) -> tuple[pathlib.Path | None, str | None, str | None]:
    return args.acl_file, args.access_key, args.secret_key


def metrics_port_of(args: argparse.Namespace) -> int | None:
    if args.metrics_port is None:
        return None
    return 0 if getattr(args, "ephemeral_ports", False) else args.metrics_port


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ProxySettings`` fields the options give (checked)."""
    if args.long_polling <= 0 or args.invisible <= 0:
        raise ConfigError("--long-polling/--invisible", None, "must be > 0 seconds")
    if args.max_attempts is not None and args.max_attempts < 1:
        raise ConfigError("--max-attempts", None, "must be >= 1")
    if args.max_lite_topics is not None and args.max_lite_topics < 0:
        raise ConfigError("--max-lite-topics", None, "must be >= 0")
    if bool(args.access_key) != bool(args.secret_key):
        raise ConfigError("--access-key/--secret-key", None, "give both or neither")
    lite = {} if args.max_lite_topics is None else {"max_lite_topics": args.max_lite_topics}
    return {
        **lite,
        "long_polling_s": args.long_polling,
        "invisible_s": args.invisible,
        "max_attempts": args.max_attempts,
        "consume_from_first": args.consume_from == "first",
    }


class ProxyRole:
    def __init__(
        self,
        namesrv: str,
        host: str,
        port: int,
        settings: dict[str, Any],
        advertise: str | None = None,
        tls_config: pathlib.Path | None = None,
        acl: tuple[pathlib.Path | None, str | None, str | None] = (None, None, None),
        metrics_port: int | None = None,
        state_dir: pathlib.Path | None = None,
        proxy_protocol: bool = False,
    ) -> None:
        """``acl``: (``--acl-file``, ``--access-key``, ``--secret-key``); ``metrics_port``:
        Prometheus' ``GET /metrics`` on the listen host (0: a free port; None: none);
        ``state_dir``: where the certificate made for the gRPC port is kept (None: made anew
        at each start); ``proxy_protocol``: read PROXY protocol headers (``--proxy-protocol``)."""
        try:
            from actors.client.config import TlsOptions
            from actors.proxy.auth import ProxyAuth
            from actors.proxy.metrics import CallStats, MetricsServer
            from actors.proxy.port_tls import port_tls
            from actors.proxy.server import Guard, ProxyServer
            from actors.proxy.service import ProxyService
            from actors.proxy.settings import ProxySettings
            from runtime.acl.signature import SessionCredentials
        except ImportError as exc:
            raise ConfigError(
                "proxy",
                None,
                f"needs grpcio and protobuf ({exc}): pip install 'actormq[proxy]'",
            ) from None
        self.host = host
        client_options: dict[str, Any] = {}
        tls_settings = None
        if tls_config is not None:
            tls_settings = tls.load(tls_config)
            if tls_settings.enable:  # the proxy's own connections to name servers and brokers
                client_options["tls"] = TlsOptions(
                    **msgspec.structs.asdict(tls_settings.client_side())
                )
        self.port_tls = port_tls(
            tls_settings,
            str(tls_config) if tls_config is not None else None,
            [host, advertise or ""],
            tls_config is None or _names_server_mode(tls_config),
            state_dir,
        )
        acl_file, access_key, secret_key = acl
        if access_key and secret_key:
            client_options["credentials"] = SessionCredentials(access_key, secret_key)
        auth = ProxyAuth(acl_file) if acl_file is not None else None
        self.service = ProxyService(
            namesrv, (advertise or host, port), ProxySettings(**settings), **client_options
        )
        self.service.advertise_always = advertise is not None
        self.service.telemetry_streams.auth = auth
        stats = CallStats() if metrics_port is not None else None
        guard = Guard(auth, stats)
        self.proxy_protocol = proxy_protocol
        self.server = ProxyServer(
            self.service,
            host,
            port,
            tls=self.port_tls,
            guard=guard,
            proxy_protocol=proxy_protocol,
        )
        self.metrics = None
        if stats is not None:
            try:
                self.metrics = MetricsServer(self.service, stats, host, metrics_port or 0)
            except OSError as exc:
                raise ConfigError("proxy", "--metrics-port", str(exc)) from None
        self.metrics_address: str | None = None

    @classmethod
    def from_args(
        cls,
        namesrv: str,
        host: str,
        port: int,
        args: argparse.Namespace,
        state_dir: pathlib.Path | None = None,
    ) -> ProxyRole:
        """The role as the command line's proxy options (``add_proxy_options``) say."""
        return cls(
            namesrv,
            host,
            port,
            settings_from(args),
            args.proxy_advertise,
            args.tls_config,
            acl_of(args),
            metrics_port_of(args),
            state_dir,
            getattr(args, "proxy_protocol", False),
        )

    def start(self) -> str:
        try:
            port = self.server.start()
        except (OSError, RuntimeError) as exc:  # grpcio raises RuntimeError "Failed to bind"
            raise ConfigError("proxy", "--listen-port", str(exc)) from None
        host, _ = self.service.advertised
        self.service.advertised = (host, port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        if self.metrics is not None:
            self.metrics_address = f"{shown}:{self.metrics.start()}"
            logger.info("proxy: Prometheus metrics on http://{}/metrics", self.metrics_address)
        how = {"disabled": "plain", "permissive": "plain and TLS", "enforcing": "over TLS"}
        logger.info(
            "proxy: gRPC (RocketMQ 5 clients) on {}:{} {}{}",
            shown,
            port,
            how[self.port_tls.mode.value],
            _made(self.port_tls) + (", PROXY protocol headers read" if self.proxy_protocol else ""),
        )
        return f"{shown}:{port}"

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        self.server.stop()


def run(args: argparse.Namespace) -> int:
    """``python -m runtime proxy``: serve until SIGINT/SIGTERM."""
    from runtime.cli import NAMESRV_ENV, _namesrv_from_env

    namesrv = args.namesrv_addr
    if not namesrv:
        if not os.environ.get(NAMESRV_ENV, "").strip():
            print("error: proxy: --namesrv-addr or $NAMESRV_ADDR is required", file=sys.stderr)
            return 2
        namesrv = _namesrv_from_env()
    port = 0 if args.ephemeral_ports else args.listen_port
    data_dir = getattr(args, "data_dir", None)
    kept = data_dir.expanduser().resolve() / "proxy" if data_dir is not None else None
    try:
        role = ProxyRole.from_args(namesrv, args.listen_host, port, args, kept)
        address = role.start()
    except ActorMQError as exc:
        logger.error("{}", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    metrics = f" proxy-metrics={role.metrics_address}" if role.metrics_address else ""
    print(f"ready proxy={address}{metrics}", flush=True)
    while not done.wait(1.0):  # a timed wait: the signal handler runs between them
        pass
    logger.info("signal received: shutting down")
    role.stop()
    logger.info("stopped cleanly")
    return 0


def _names_server_mode(path: pathlib.Path) -> bool:
    """Whether the (already loaded, so readable) tls.properties sets ``tls.server.mode``."""
    from config.properties import parse_properties

    entries = parse_properties(path.read_text(encoding="utf-8"))
    return any(entry.key == "tls.server.mode" for entry in entries)


def _made(port: Any) -> str:
    """The log's note on a certificate made for the port."""
    if port.made_certificate is None:
        return ""
    if port.kept_in is None:
        return " (a certificate made at start)"
    from actors.proxy.self_signed import CERT_FILE

    return f" (the certificate made for it: {port.kept_in / CERT_FILE})"
