"""The name-server subtree: KV config, route table, heartbeat scanner, the failover controller
(with enableControllerInNamesrv), acceptor (sessions)."""

from __future__ import annotations

import os
import socket

from actors.namesrv.controller import Controller
from actors.namesrv.controller_store import ControllerStore
from actors.namesrv.heartbeat_scanner import HeartbeatScanner
from actors.namesrv.kv_config import KVConfig
from actors.namesrv.processor import NamesrvProcessor
from actors.namesrv.route_table import RouteTable
from actors.namesrv.write_auth import write_auth_for
from config import NamesrvConfig, dump_properties
from runtime.directory import Directory
from runtime.ha.control import GRACE_S
from runtime.net import Acceptor
from runtime.session import session_factory
from runtime.supervisor import ChildSpec, Restart, Strategy, Supervisor

DEFAULT_CONTROLLER_STORE = "~/actormq/controller"
"""Where a controller keeps its decisions in a process without a data directory (a standalone
name server) and no ``controllerStorePath``: a directory per listen port under it (two name
servers on one host never share one)."""


def namesrv_spec(
    name: str,
    cfg: NamesrvConfig,
    sock: socket.socket,
    directory: Directory,
    *,
    first_grace_s: float | None = None,
    kv_config_path: str | None = None,
    controller_store_dir: str | None = None,
) -> ChildSpec:
    """A supervisor for one name server listening on ``sock`` (bound by the process).

    ``kv_config_path``: where the KV config is kept (``cfg.kv_config_path`` wins when set);
    None with an empty ``kvConfigPath``: in memory only. ``controller_store_dir``: where the
    controller keeps its decisions (``cfg.controller_store_path`` wins when set; None with an
    empty ``controllerStorePath``: ``~/actormq/controller``).

    REST_FOR_ONE: if the route table restarts (empty), the sessions restart too, so brokers
    reconnect and re-register at once instead of waiting 30 s for their next registration.
    ``first_grace_s``: the controller's grace period on its first start (the name server's
    ``controllerStartupGraceMillis``; a process that starts its brokers itself knows no lease
    from an earlier controller exists: 0); a restarted controller always waits the full grace
    period.
    """
    routes, scanner, acceptor = f"{name}/routes", f"{name}/scanner", f"{name}/acceptor"
    kv = f"{name}/kvconfig"
    controller = f"{name}/controller" if cfg.controller_enable else None
    processor = NamesrvProcessor(
        directory,
        routes,
        controller,
        kv_config=kv,
        order_message_enable=cfg.order_message_enable,
        config_text=dump_properties(cfg, mask_secrets=True),
        write_auth=write_auth_for(cfg),
    )
    kv_path = os.path.expanduser(cfg.kv_config_path) if cfg.kv_config_path else kv_config_path
    default = os.path.join(DEFAULT_CONTROLLER_STORE, str(cfg.listen_port))
    store_dir = os.path.expanduser(cfg.controller_store_path or controller_store_dir or default)
    starts = [0]

    def start_controller() -> object:
        grace = first_grace_s if starts[0] == 0 and first_grace_s is not None else GRACE_S
        starts[0] += 1
        return Controller.start(grace_s=grace, store=ControllerStore(store_dir))

    idle = cfg.broker_channel_expired_time / 1000
    children = [
        # First: a KV restart (a bug) restarts everything after it, while a route table
        # restart leaves the KV table alone (memory-only tables would be lost).
        ChildSpec(name=kv, start=lambda: KVConfig.start(kv_path)),
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
                name,
                sock,
                session_factory(name, processor, idle_timeout=idle),
                secure=True,
                proxy_protocol=cfg.enable_proxy_protocol,
            ),
            restart=Restart.PERMANENT,
        ),
        # Last: a controller that fails (its store cannot write) restarts alone, from its
        # files; before the acceptor it took every name-server connection down with it
        # (heartbeats in the moment before it is back are answered with an error, and retried)
        *([ChildSpec(name=controller, start=start_controller)] if controller else []),  # type: ignore[list-item]
    ]
    return ChildSpec(
        name=name,
        start=lambda: Supervisor.start(
            name, children, directory=directory, strategy=Strategy.REST_FOR_ONE
        ),
    )
