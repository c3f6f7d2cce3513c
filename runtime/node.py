"""One actormq process: binds its sockets, locks its data, runs a supervisor tree, shuts down.

The same class runs the whole single-binary cluster (``python -m runtime``), one name server, or
one broker. Sockets are bound before any actor starts, so a port clash fails fast with the
address and the ready line names the ports actually bound. The whole cluster in one process
returns from ``start`` (and so prints its ready line) once every broker registered with the
name server, ``REGISTER_WAIT_S`` at most.
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import time
from typing import Any

import gevent
import gevent.event
import pykka
from loguru import logger

from actors.broker.node import BrokerHandle, broker_spec
from actors.namesrv.controller import BrokerDown
from actors.namesrv.kv_config import FILE_NAME as KV_FILE
from actors.namesrv.node import namesrv_spec
from config import BrokerConfig, NamesrvConfig, with_data_dir, with_overrides
from config.enums import MetricsExporterType
from runtime.acl.plain import load as load_acl
from runtime.actor import watch
from runtime.advertise import check_advertised
from runtime.directory import Directory
from runtime.lockfile import DirLock
from runtime.net import address_of, bind
from runtime.supervisor import ChildSpec, Supervisor

REGISTER_WAIT_S = 10.0
"""How long an all-in-one start waits for its brokers' first registrations (ready line)."""
STOP_TIMEOUT_S = 120.0
"""How long a SIGTERM waits for the whole tree: longer than a broker's (``BROKER_STOP_S``)."""
START_RETRIES = 5
"""A node (a broker, a name server) whose start raises once the process runs (a rebuild for
a role change or a truncation, a restart after a failure) is started again this many times,
``START_BACKOFF_S`` apart, doubling up to ``START_BACKOFF_MAX_S`` (1+2+4+8+16 s: about half a
minute, plus the attempts' own time); one more failure ends the process with status 1, for
its service manager to restart it (``Supervisor``'s start retries)."""
START_BACKOFF_S = 1.0
START_BACKOFF_MAX_S = 16.0


def broker_label(cfg: BrokerConfig) -> str:
    return f"{cfg.broker_name}/{cfg.broker_id}"


class Node:
    """A process's actors. ``start()`` returns the addresses bound; ``run()`` blocks until done."""

    def __init__(
        self,
        *,
        namesrvs: list[NamesrvConfig],
        brokers: list[BrokerConfig],
        data_dir: pathlib.Path | None,
        cluster_mode: bool,
        ephemeral_ports: bool = False,
    ) -> None:
        self.namesrvs = namesrvs
        self.brokers = brokers
        self.data_dir = data_dir
        self.cluster_mode = cluster_mode
        self.ephemeral_ports = ephemeral_ports
        self.directory = Directory()
        self.addresses: dict[str, str] = {}
        self.ha_addresses: dict[str, str] = {}
        """Broker label -> its HA port's address (brokerIP2 or brokerIP1 : haListenPort)."""
        self._sockets: list[socket.socket] = []
        self._lock: DirLock | None = None
        self._root: pykka.ActorRef[Any] | None = None
        self._done = gevent.event.AsyncResult()
        self._handlers: list[Any] = []
        self._handles: list[BrokerHandle] = []
        self._controller: str | None = None
        self.before_stop: list[Any] = []
        """Callables run first when the node stops (``cluster --proxy``'s proxy)."""

    # -- startup ------------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        if self.data_dir is not None and self.brokers:
            self._lock = DirLock(self.data_dir).acquire()
        try:
            for cfg in self.brokers:
                check_advertised(cfg)
                acl_path = cfg.acl_path()
                if cfg.acl_enable and acl_path is not None:
                    load_acl(acl_path)  # a wrong file stops the start, naming file and key
            specs = self._namesrv_specs() + self._broker_specs()
            self._root = Supervisor.start(
                "root",
                specs,
                directory=self.directory,
                max_restarts=5,
                within_seconds=60,
                start_retries=START_RETRIES,
                start_backoff=START_BACKOFF_S,
                start_backoff_max=START_BACKOFF_MAX_S,
                on_child_down=self._child_down,
            )
        except BaseException:
            self._close()
            raise
        watch(self._root, self._root_exited)
        for handle in self._handles:
            handle.attach(self._root)
        # Signal handlers go in before anyone can see the ready line and send a signal.
        self._handlers = [
            gevent.signal_handler(sig, self._on_signal, sig)
            for sig in (signal.SIGINT, signal.SIGTERM)
        ]
        if self.cluster_mode and self.namesrvs:
            self._await_registrations()
        return self.addresses

    def _await_registrations(self) -> None:
        """The whole cluster in this process: the ready line waits (``REGISTER_WAIT_S`` at most)
        until every broker is registered with the name server, so a client that starts on it
        finds every broker's routes at once."""
        deadline = time.monotonic() + REGISTER_WAIT_S
        for handle in self._handles:
            if not handle.registered.wait(max(deadline - time.monotonic(), 0)):
                logger.warning(
                    "{} not registered with the name server after {:g}s; ready anyway",
                    handle.name,
                    REGISTER_WAIT_S,
                )

    def _port(self, port: int) -> int:
        return 0 if self.ephemeral_ports else port

    def _bind(self, host: str, port: int, what: str) -> socket.socket:
        sock = bind(host, self._port(port), what=what)
        self._sockets.append(sock)
        return sock

    def _in_process_controller(self) -> bool:
        """Profile brokers in controller mode use the controller of this process's first
        name server (enabled for them)."""
        return self.cluster_mode and any(b.controller_mode for b in self.brokers)

    def _namesrv_specs(self) -> list[ChildSpec]:
        specs = []
        for index, cfg in enumerate(self.namesrvs):
            name = "namesrv" if len(self.namesrvs) == 1 else f"namesrv-{index}"
            sock = self._bind(cfg.listen_host, cfg.listen_port, f"{name} listenPort")
            self.addresses[name] = address_of(sock)
            # the port it listens on (with --ephemeral-ports, not the configured one): what
            # GET_NAMESRV_CONFIG reports, as the brokers' configs carry their bound ports
            cfg = with_overrides(cfg, listen_port=sock.getsockname()[1])
            grace = cfg.controller_startup_grace_millis / 1000
            if index == 0 and self._in_process_controller():
                cfg = with_overrides(cfg, controller_enable=True)
                grace = 0.0  # this process starts every broker that talks to it
            if cfg.controller_enable:
                self._controller = f"{name}/controller"
            # The KV config (kvConfig.json) lives in the process's data directory when it has one.
            kv_path = None if self.data_dir is None else str(self.data_dir / name / KV_FILE)
            store_dir = None if self.data_dir is None else str(self.data_dir / name)
            specs.append(
                namesrv_spec(
                    name,
                    cfg,
                    sock,
                    self.directory,
                    first_grace_s=grace,
                    kv_config_path=kv_path,
                    controller_store_dir=store_dir,
                )
            )
        return specs

    def _child_down(self, name: str, reason: str | None) -> None:
        """In one process a dead broker subtree is reported to the controller at once."""
        if self._controller is None or "/" not in name:
            return
        group, _, node = name.rpartition("/")
        ref = self.directory.get(self._controller)
        if ref is not None and node.isdigit():
            logger.warning("{} is down ({}): telling the controller", name, reason)
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(BrokerDown(group, int(node)))

    def _broker_specs(self) -> list[ChildSpec]:
        specs = []
        namesrv_addr = ";".join(
            addr for key, addr in self.addresses.items() if key.startswith("namesrv")
        )
        bound = []
        for cfg in self.brokers:
            label = broker_label(cfg)
            sock = self._bind(cfg.listen_host, cfg.listen_port, f"{label} listenPort")
            ha_sock = self._bind(cfg.listen_host, cfg.ha_listen_port, f"{label} haListenPort")
            bound.append((cfg, sock, ha_sock, self._metrics_socket(cfg, label)))
        # In one process the runtime points each slave at its group master's HA port.
        master_ha = {
            cfg.broker_name: f"{cfg.broker_ip2 or cfg.broker_ip1}:{ha_sock.getsockname()[1]}"
            for cfg, _sock, ha_sock, _metrics in bound
            if cfg.is_master
        }
        for cfg, sock, ha_sock, metrics in bound:
            label = broker_label(cfg)
            overrides: dict[str, Any] = {
                "listen_port": sock.getsockname()[1],
                "ha_listen_port": ha_sock.getsockname()[1],
            }
            if self.cluster_mode and namesrv_addr:
                overrides["namesrv_addr"] = namesrv_addr
            if self.cluster_mode and not cfg.is_master and cfg.broker_name in master_ha:
                overrides["ha_master_address"] = master_ha[cfg.broker_name]
            if self._in_process_controller() and cfg.controller_mode and namesrv_addr:
                overrides["controller_addr"] = namesrv_addr.split(";")[0]
            cfg = with_overrides(cfg, **overrides)
            if self.data_dir is not None:
                cfg = with_data_dir(cfg, self.data_dir, per_node=self.cluster_mode)
            self.addresses[label] = f"{cfg.broker_ip1}:{cfg.listen_port}"
            self.ha_addresses[label] = cfg.ha_addr()
            if metrics is not None:
                self.addresses[f"metrics@{label}"] = address_of(metrics)
            handle = BrokerHandle(label)
            self._handles.append(handle)
            specs.append(
                broker_spec(
                    label,
                    cfg,
                    sock,
                    pathlib.Path(cfg.store_root()),
                    self.directory,
                    ha_sock=ha_sock,
                    handle=handle,
                    metrics_sock=metrics,
                )
            )
        return specs

    def _metrics_socket(self, cfg: BrokerConfig, label: str) -> socket.socket | None:
        """The Prometheus endpoint's listener (``metricsExporterType=PROM``): on
        metricsPromExporterHost, else brokerIP1 (RocketMQ's choice), at
        metricsPromExporterPort (any free port with --ephemeral-ports); None when off."""
        if cfg.metrics_exporter_type is not MetricsExporterType.PROM:
            return None
        host = cfg.metrics_prom_exporter_host or cfg.broker_ip1
        return self._bind(host, cfg.metrics_prom_exporter_port, f"{label} metricsPromExporterPort")

    # -- running ------------------------------------------------------------------------------

    def ready_line(self) -> str:
        parts = [f"{name}={addr}" for name, addr in self.addresses.items()]
        if self.data_dir is not None and self.brokers:
            parts.append(f"data={self.data_dir}")
        return "ready " + " ".join(parts)

    def _root_exited(self, _ref: pykka.ActorRef[Any], failure: BaseException | None) -> None:
        if not self._done.ready():
            self._done.set(failure)

    def run(self) -> int:
        """Block until SIGINT/SIGTERM (exit 0 after a clean shutdown) or the tree fails (1)."""
        try:
            failure = self._done.get()
        finally:
            for handler in self._handlers:
                handler.cancel()
        self._close()
        if failure is not None:
            logger.error("stopping: {}", failure)
            return 1
        if self.directory.stop_timeouts:
            logger.error(
                "stopped, but not cleanly: {} did not stop in time (a store left open is "
                "recovered at the next start, as after a crash)",
                ", ".join(self.directory.stop_timeouts),
            )
            return 1
        logger.info("stopped cleanly")
        return 0

    def _on_signal(self, sig: int) -> None:
        logger.info("{} received: shutting down", signal.Signals(sig).name)
        gevent.spawn(self.stop)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ordered shutdown of the whole tree; run() then returns 0 (1 when a part did not stop
        in time)."""
        for hook in self.before_stop:
            try:
                hook()
            except Exception as exc:  # the tree must stop regardless
                logger.opt(exception=exc).error("stopping: {} failed", hook)
        self.before_stop = []
        self.directory.stopping = True
        root = self._root
        if root is not None and root.is_alive():
            try:
                root.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                self.directory.stop_timeouts.append("root")
            except pykka.ActorDeadError:
                pass
        if not self._done.ready():
            self._done.set(None)

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
