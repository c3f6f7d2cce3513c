"""Clusters of real ``python -m runtime`` processes that nemeses can kill, pause and restart.

A ``Node`` is one process with fixed arguments: ``kill()`` is SIGKILL, ``start()`` runs a new
incarnation with the same arguments (same ports, same data directory), ``pause()`` /
``resume()`` are SIGSTOP / SIGCONT. Every incarnation's stderr is kept in
``<workdir>/logs/<name>.<n>.log`` for the post-mortem.

A ``Cluster`` is one name server (ephemeral port; never faulted) and broker nodes, each
started from a properties file with fixed loopback ports picked at creation, so a restarted
broker comes back at the address the name server and the clients already know.
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.chaos import admin, transport
from tests.harness import RuntimeProcess

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Node:
    """One runtime process; see the module docstring."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        workdir: pathlib.Path,
        log_level: str = "INFO",
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.env = env  # extra environment of every incarnation
        self.args = ["--log-level", log_level, *transport.node_args(), *args]
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.proc: RuntimeProcess | None = None
        self.incarnation = 0
        self.addresses: dict[str, str] = {}
        self.paused = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 30.0) -> dict[str, str]:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self._save_log()
        self.incarnation += 1
        self.proc = RuntimeProcess(self.args, env=self.env)
        self.paused = False
        self.addresses = self.proc.wait_ready(timeout)
        return self.addresses

    def kill(self) -> None:
        """SIGKILL (a paused process dies too) and reap it."""
        if self.proc is not None:
            self.proc.kill()
        self.paused = False
        self._save_log()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.alive:
            self.proc.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (after SIGCONT if paused); SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        code: int | None = None
        if self.alive:
            self.resume()
            try:
                code = self.proc.terminate(timeout)
            except Exception:
                self.proc.kill()
                code = self.proc.proc.returncode
        else:
            code = self.proc.proc.returncode
        self._save_log()
        return code

    def stderr(self) -> str:
        return self.proc.stderr_text() if self.proc is not None else ""

    def _save_log(self) -> None:
        proc = self.proc
        if proc is None or proc.proc.poll() is None:
            return
        path = self.logs / f"{self.name}.{self.incarnation}.log"
        if not path.exists():
            with contextlib.suppress(OSError):
                path.write_text("\n".join(proc.stderr) + "\n")


@dataclass
class BrokerSpec:
    """One broker of a group. Ports are fixed at creation so restarts keep the address."""

    broker_name: str = "broker-a"
    broker_id: int = 0
    role: str = "ASYNC_MASTER"  # ASYNC_MASTER, SYNC_MASTER or SLAVE
    flush: str = "ASYNC_FLUSH"
    listen_port: int = field(default_factory=free_port)
    ha_port: int = field(default_factory=free_port)
    ha_master: str | None = None  # a slave's master HA address (possibly a proxy)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.broker_name}/{self.broker_id}"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.listen_port}"

    @property
    def ha_address(self) -> str:
        return f"{HOST}:{self.ha_port}"

    def properties(self, namesrv: str, store: pathlib.Path) -> str:
        lines = {
            "brokerClusterName": "ChaosCluster",
            "brokerName": self.broker_name,
            "brokerId": str(self.broker_id),
            "brokerRole": self.role,
            "flushDiskType": self.flush,
            "listenHost": HOST,
            "brokerIP1": HOST,
            "listenPort": str(self.listen_port),
            "haListenPort": str(self.ha_port),
            "namesrvAddr": namesrv,
            "storePathRootDir": str(store),
        }
        if self.ha_master:
            lines["haMasterAddress"] = self.ha_master
        lines.update(self.extra)
        return "".join(f"{k}={v}\n" for k, v in lines.items())


class Cluster:
    """A name server process and broker processes under ``workdir``."""

    def __init__(self, workdir: pathlib.Path, log_level: str = "INFO") -> None:
        self.workdir = workdir
        self.log_level = log_level
        self.namesrv_node = Node("namesrv", ["namesrv", "--ephemeral-ports"], workdir, log_level)
        self.namesrv = ""
        self.brokers: dict[str, Node] = {}
        self.specs: dict[str, BrokerSpec] = {}
        self.env_for: Callable[[str], dict[str, str]] | None = None
        """Extra environment of each node by name (set before the nodes start)."""

    def start_namesrv(self, extra_args: Sequence[str] = ()) -> str:
        if extra_args:
            self.namesrv_node.args += list(extra_args)
        if self.env_for is not None:
            self.namesrv_node.env = self.env_for(self.namesrv_node.name)
        self.namesrv = self.namesrv_node.start()["namesrv"]
        return self.namesrv

    def add_broker(self, spec: BrokerSpec) -> Node:
        assert self.namesrv, "start the name server first"
        name = spec.label.replace("/", "-")
        conf = self.workdir / f"{name}.properties"
        conf.write_text(spec.properties(self.namesrv, self.workdir / "store" / name))
        env = self.env_for(name) if self.env_for is not None else None
        node = Node(name, ["broker", "-c", str(conf)], self.workdir, self.log_level, env)
        self.brokers[spec.label] = node
        self.specs[spec.label] = spec
        return node

    def start_broker(self, label: str, timeout: float = 30.0) -> None:
        self.brokers[label].start(timeout)

    def wait_registered(self, label: str, timeout: float = 20.0) -> None:
        spec = self.specs[label]

        def listed() -> bool:
            addrs = admin.broker_addresses(self.namesrv, spec.broker_name)
            return spec.address in addrs.values()

        admin.wait_until(listed, timeout, f"{label} registered with the name server")

    def create_topic(self, master: str, topic: str, queues: int, timeout: float = 20.0) -> None:
        """Create ``topic`` on the broker ``master`` and wait until its route is served."""
        admin.create_topic(self.specs[master].address, topic, queues)

        def routed() -> bool:
            r = admin.route(self.namesrv, topic)
            return r is not None and any(q.write_queue_nums == queues for q in r.queue_datas)

        admin.wait_until(routed, timeout, f"route of {topic}")

    def master_address(self, broker_name: str) -> str | None:
        """The address the name server lists as ``broker_name``'s master (id 0)."""
        try:
            return admin.broker_addresses(self.namesrv, broker_name).get(0)
        except admin.AdminError:
            return None

    def stop(self) -> dict[str, int | None]:
        codes = {label: node.stop() for label, node in self.brokers.items()}
        codes["namesrv"] = self.namesrv_node.stop()
        return codes

    def kill_all(self) -> None:
        for node in self.brokers.values():
            with contextlib.suppress(Exception):
                node.kill()
        with contextlib.suppress(Exception):
            self.namesrv_node.kill()


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    """Wait until nothing accepts on the port (a killed process's listener is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still accepts after {timeout}s")
