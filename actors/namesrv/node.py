"""The name-server subtree: route table, heartbeat scanner, acceptor (sessions)."""

from __future__ import annotations

import socket

from actors.namesrv.heartbeat_scanner import HeartbeatScanner
from actors.namesrv.processor import NamesrvProcessor
from actors.namesrv.route_table import RouteTable
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import Acceptor
from runtime.session import session_factory
from runtime.supervisor import ChildSpec, Restart, Strategy, Supervisor


def namesrv_spec(
    name: str, cfg: NamesrvConfig, sock: socket.socket, directory: Directory
) -> ChildSpec:
    """A supervisor for one name server listening on ``sock`` (bound by the process).

    REST_FOR_ONE: if the route table restarts (empty), the sessions restart too, so brokers
    reconnect and re-register at once instead of waiting 30 s for their next registration.
    """
    routes, scanner, acceptor = f"{name}/routes", f"{name}/scanner", f"{name}/acceptor"
    processor = NamesrvProcessor(directory, routes)
    idle = cfg.broker_channel_expired_time / 1000
    children = [
        ChildSpec(name=routes, start=RouteTable.start),
        ChildSpec(
            name=scanner,
            start=lambda: HeartbeatScanner.start(
                directory,
                routes,
                interval_s=cfg.scan_not_active_broker_interval / 1000,
                expire_ms=cfg.broker_channel_expired_time,
            ),
        ),
        ChildSpec(
            name=acceptor,
            start=lambda: Acceptor.start(
                name, sock, session_factory(name, processor, idle_timeout=idle)
            ),
            restart=Restart.PERMANENT,
        ),
    ]
    return ChildSpec(
        name=name,
        start=lambda: Supervisor.start(
            name, children, directory=directory, strategy=Strategy.REST_FOR_ONE
        ),
    )
