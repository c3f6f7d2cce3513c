"""The broker subtree: store, HA, client registries, name-server registrar, acceptor (sessions).

Start order (the supervisor stops in reverse): the store's actors first (the writer recovers
the store before anything is accepted), then HA (a master: HAService and the HA port's
acceptor; a slave: HAClient), then the consumer and producer registries, then the registrar,
and the acceptor last, so no request arrives before the store is there and none is accepted
after it stopped. A fail-stop store actor takes the whole subtree down; the parent restarts the
broker, which recovers its store before accepting again.

Role changes and replication truncation go through ``BrokerHandle``: the process's root
supervisor replaces this node's subtree (``Supervisor.replace_child``) with one built from a
new config on the same store and sockets. A pending truncation (``<store>/ha-truncate``, written
by the HAClient when its master said TRUNCATE) is applied before the store opens. A start that
raises (a rebuild's, or a restart's after a failure) is retried by the root with backoff, and
fails the process after ``runtime.node.START_RETRIES`` (``runtime.supervisor``); meanwhile the
node's name-server connections are closed, so the name servers route no client to it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import pathlib
import socket
from collections.abc import Callable, Collection
from typing import Any

import gevent
import gevent.event
import msgspec
import pykka
from loguru import logger

from actors.broker.consumer_manager import ConsumerManager
from actors.broker.context import BrokerContext
from actors.broker.controller_client import ControllerClient
from actors.broker.ha_client import HAClient
from actors.broker.ha_connection import connection_factory
from actors.broker.ha_messages import MasterAddress
from actors.broker.ha_reconcile import suspect_power_cut
from actors.broker.ha_service import HACondition, HAContext, HAService
from actors.broker.half_scan import HalfScan, scan_transactions
from actors.broker.lock_manager import RebalanceLockManager
from actors.broker.metrics_exporter import MetricsExporter
from actors.broker.processor import BrokerProcessor
from actors.broker.producer_manager import ProducerManager
from actors.broker.registrar import NamesrvRegistrar
from actors.broker.scheduler import Scheduler
from actors.broker.slave_synchronize import SlaveSynchronize
from actors.broker.stats_handler import keyed_totals
from actors.broker.stats_sampler import StatsSampler
from actors.broker.store_adapter import StoreAdapter, to_wire
from actors.broker.store_figures import store_figures
from actors.broker.store_service import BrokerStore
from actors.broker.timer_scheduler import TimerScheduler
from actors.broker.topic_config import PERM_READ, PERM_WRITE
from actors.broker.transaction_handler import keep_discarded
from actors.broker.transaction_manager import TransactionManager
from config import BrokerConfig, BrokerRole
from runtime.acl.plain import PlainAccessValidator
from runtime.actor import offload
from runtime.conn_budget import ConnectionBudget
from runtime.directory import Directory
from runtime.ha.epoch import EpochFile
from runtime.ha.state import HAState, Role
from runtime.net import Acceptor
from runtime.remoting.bodies import TopicConfig
from runtime.session import session_factory
from runtime.store.configfile import write_atomic
from runtime.store.raw import truncate_log
from runtime.store.settings import StoreSettings
from runtime.store.tail_guard import TailLossGuard
from runtime.supervisor import ChildSpec, Supervisor

IDLE_TIMEOUT_S = 120.0
BROKER_STOP_S = 90.0
"""How long a broker's tree may take to stop (its store's parts may take ``STORE_STOP_S``)."""
PERM_RW = PERM_READ | PERM_WRITE
DRAIN_S = 3.0
"""When its process shuts down, how long the broker's sessions are given to answer the sends
they serve (refusing new requests meanwhile) before they close: a SYNC_MASTER send may wait
``slaveTimeout`` (3 s by default) for its slave. A subtree replaced for a role change does not
wait."""


TRUNCATE_MARKER = "ha-truncate"


class BrokerHandle:
    """How a broker node restarts itself on the same store: ``replace(cfg)`` asks the parent
    supervisor (set by the process once its root runs) to swap the node's subtree for one
    built from ``cfg``. Fire and forget: the caller may be one of the actors being stopped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parent: pykka.ActorRef[Any] | None = None
        self.make_spec: Callable[[BrokerConfig], ChildSpec] | None = None
        self.cfg: BrokerConfig | None = None
        self._pending: BrokerConfig | None = None
        self._asked = 0  # rebuilds asked for (the latest one's outcome ends ``rebuilding``)
        self.rebuilding = False
        """True from ``replace`` until the new subtree starts (or its start fails, or the
        parent refuses): the old one's registrar keeps the name-server registration (the new
        one moves it) instead of unregistering."""
        self.namesrv_sessions: dict[str, Any] = {}
        """The registrar's name-server connections, kept open across a rebuild."""
        self.consumers: dict[str, Any] = {}
        """The ConsumerManager's groups when the old subtree stopped, for the new one."""
        self.registered = gevent.event.Event()
        """Set once a name server took this broker's registration (any incarnation)."""
        self.tail_guard = TailLossGuard()
        """The store's tail-loss guard (``runtime.store.tail_guard``), kept across rebuilds:
        a restart after an actor failure must not forget the positions it vouched for."""

    def attach(self, parent: pykka.ActorRef[Any]) -> None:
        """The process's root is running: a replacement asked for before now happens now."""
        self.parent = parent
        pending, self._pending = self._pending, None
        if pending is not None:
            self.replace(pending)

    def replace(self, cfg: BrokerConfig) -> bool:
        parent, make = self.parent, self.make_spec
        if make is None:
            logger.error("{}: cannot restart: no spec", self.name)
            return False
        if parent is None:
            self._pending = cfg  # the root is still starting its children
            return True
        self.rebuilding = True
        self._asked += 1
        asked = self._asked
        try:
            done = parent.proxy().replace_child(make(cfg))
        except pykka.ActorDeadError:
            self.rebuilding = False
            return False
        done.add_done_callback(lambda future: self._replaced(future, asked))
        return True

    def _replaced(self, done: Any, asked: int) -> None:
        """The parent's ``replace_child`` returned: ``rebuilding`` ends whatever the outcome,
        unless a later rebuild was asked for meanwhile (the new subtree's start clears it
        first; a start that raised is retried by the parent, which gives up by failing, and
        the process ends)."""
        if asked == self._asked:
            self.rebuilding = False
        try:
            done.get(timeout=0)
        except Exception as exc:  # the parent stopped, or had no such child: nothing retries
            logger.error("{}: rebuilding the node failed: {}", self.name, exc)

    def restart(self) -> bool:
        return self.cfg is not None and self.replace(self.cfg)


HA_MAX_LINKS = 256
"""Connections the HA port holds at once (its own budget, apart from the process's: slaves
are few, and a flood on the client port must not refuse them)."""


def broker_spec(
    name: str,
    cfg: BrokerConfig,
    sock: socket.socket,
    store_root: pathlib.Path,
    directory: Directory,
    *,
    ha_sock: socket.socket | None = None,
    handle: BrokerHandle | None = None,
    node_id: int | None = None,
    metrics_sock: socket.socket | None = None,
) -> ChildSpec:
    """A supervisor for one broker node listening on ``sock`` (and ``ha_sock``, the HA port)
    with its store at ``store_root``. ``node_id``: the node's stable identity in its group
    (its configured brokerId), which stays when a role change changes the registered id.
    ``metrics_sock``: the Prometheus endpoint's listener (``metricsExporterType=PROM``)."""
    node = cfg.broker_id if node_id is None else node_id
    handle = handle if handle is not None else BrokerHandle(name)
    handle.cfg = cfg

    def again(new_cfg: BrokerConfig) -> ChildSpec:
        return broker_spec(
            name,
            new_cfg,
            sock,
            store_root,
            directory,
            ha_sock=ha_sock,
            handle=handle,
            node_id=node,
            metrics_sock=metrics_sock,
        )

    handle.make_spec = again

    def start() -> object:
        handle.rebuilding = False
        try:
            return build()
        except BaseException:
            _drop_registration(handle)
            raise

    def build() -> object:
        store_root.mkdir(parents=True, exist_ok=True)
        settings = StoreSettings.from_broker_config(cfg)
        if gevent.getcurrent() is gevent.get_hub():
            _apply_truncation(settings)
        else:
            offload(_apply_truncation, settings)  # it fsyncs
        store = BrokerStore.build(settings, directory, prefix=name)
        store.ctx.tail_guard = handle.tail_guard
        state = HAState(
            node_id=node,
            role=Role.MASTER if cfg.is_master else Role.SLAVE,
            sync=cfg.broker_role is BrokerRole.SYNC_MASTER,
            controller_mode=cfg.controller_mode,
            fallbehind_max=cfg.ha_slave_fallbehind_max,
            not_catchup_s=cfg.ha_max_time_slave_not_catchup / 1000,
        )
        # (before the store opens: its abort marker is the last run's; it fsyncs)
        suspect = (state, settings.root, settings.sync_flush)
        if gevent.getcurrent() is gevent.get_hub():
            suspect_power_cut(*suspect)
        else:
            offload(suspect_power_cut, *suspect)
        ha = HAContext(
            store.ctx,
            state,
            EpochFile(settings.root),
            prefix=name,
            slave_timeout_s=cfg.slave_timeout / 1000,
            heartbeat_s=cfg.ha_send_heartbeat_interval / 1000,
            housekeeping_s=cfg.ha_housekeeping_interval / 1000,
            batch_size=cfg.ha_transfer_batch_size,
            credentials=cfg.inner_credentials(),
            all_ack=cfg.all_ack_in_sync_state_set,
            min_in_sync_replicas=cfg.min_in_sync_replicas,
            reconcile_wait_s=cfg.ha_reconcile_wait_millis / 1000,
        )
        if cfg.is_master:
            store.ctx.replication = HACondition(ha)
        put_timeout = (cfg.sync_flush_timeout + cfg.slave_timeout) / 1000 + 5.0
        ctx = BrokerContext(
            cfg, directory, name, StoreAdapter(store, put_timeout=put_timeout), ha_state=state
        )
        ctx.epochs = ha.epochs
        ha.on_writable = ctx.register_now
        acl_path = cfg.acl_path()
        if cfg.acl_enable and acl_path is not None:
            ctx.acl = PlainAccessValidator(acl_path, cfg.inner_credentials())
        processor = BrokerProcessor(ctx)

        def topic_table(names: Collection[str] | None = None) -> dict[str, TopicConfig]:
            """What registration sends: the topics (those of ``names`` that exist, when
            given), their perm cut to the broker's (brokerPermission 4 makes every topic
            read-only in routes, as RocketMQ's)."""
            chosen = store.all_topics(None if names is None else tuple(names))
            chosen = chosen.get(timeout=5.0).topics
            perm = ctx.cfg.broker_permission
            if state.reconciling:  # (after a power loss: no write until it holds its log)
                perm &= ~PERM_WRITE
            return {
                topic: to_wire(
                    c if perm == PERM_RW else msgspec.structs.replace(c, perm=c.perm & perm)
                )
                for topic, c in chosen.items()
            }

        def on_master(master: str | None, ha_addr: str | None) -> None:
            if not state.controller_mode:
                state.master_addr = master
            ha.tell(ha.client, MasterAddress(ha_addr, "namesrv"))

        def truncate(offset: int) -> None:
            write_atomic(os.path.join(settings.root, TRUNCATE_MARKER), f"{offset}\n".encode())
            handle.restart()

        children = [
            *store.child_specs(),
            *_ha_children(name, cfg, store, ha, ha_sock, truncate),
            *(
                [
                    ChildSpec(
                        name=ha.controller_client,
                        start=lambda: ControllerClient.start(cfg, ha, handle, ctx.register_now),
                    )
                ]
                if cfg.controller_mode
                else []
            ),
            ChildSpec(
                name=ctx.consumers,
                start=lambda: ConsumerManager.start(
                    carried=handle.consumers,
                    keep=lambda groups: setattr(handle, "consumers", groups),
                ),
            ),
            ChildSpec(name=ctx.producers, start=ProducerManager.start),
            ChildSpec(
                name=ctx.stats,
                start=lambda: StatsSampler.start(
                    lambda: (store.ctx.put_messages, ctx.got_messages),
                    lambda: store_figures(store),
                    version=_version_desc(),
                    keyed=lambda: keyed_totals(ctx),
                ),
            ),
            ChildSpec(name=ctx.locks, start=RebalanceLockManager.start),
            *(
                [
                    ChildSpec(
                        name=f"{name}/metrics",
                        start=lambda: MetricsExporter.start(ctx, metrics_sock),
                    )
                ]
                if metrics_sock is not None
                else []
            ),
            *(_schedulers(ctx, store, cfg) if cfg.is_master else []),
            ChildSpec(
                name=ctx.registrar,
                start=lambda: NamesrvRegistrar.start(
                    cfg,
                    topic_table,
                    on_master=None if cfg.is_master else on_master,
                    registrable=state.registrable if cfg.is_master else None,
                    keep_registration=lambda: handle.rebuilding,
                    sessions=handle.namesrv_sessions,
                    on_registered=handle.registered.set,
                    state_version=(lambda: state.epoch) if cfg.controller_mode else None,
                ),
            ),
            ChildSpec(
                name=f"{name}/acceptor",
                start=lambda: Acceptor.start(
                    name,
                    sock,
                    session_factory(name, processor, idle_timeout=IDLE_TIMEOUT_S),
                    drain=lambda: DRAIN_S if directory.stopping else 0.0,
                    secure=True,
                    proxy_protocol=cfg.enable_proxy_protocol,
                ),
            ),
        ]
        return Supervisor.start(name, children, directory=directory)

    return ChildSpec(
        name=name,
        start=start,  # type: ignore[arg-type]
        shutdown_timeout=BROKER_STOP_S,
    )


def _drop_registration(handle: BrokerHandle) -> None:
    """The node's start failed, it serves nothing: close the name-server connections a rebuild
    kept open, so the name servers drop its routes at once (a connection's close, as
    RocketMQ's channel close) rather than route clients to it; a start that succeeds later
    registers on new ones."""
    sessions = list(handle.namesrv_sessions.values())
    handle.namesrv_sessions.clear()
    for session in sessions:
        with contextlib.suppress(Exception):
            session.close()
    if sessions:
        logger.warning(
            "{}: not running: its name-server connections closed (routes to it dropped)",
            handle.name,
        )


def _version_desc() -> str:
    try:
        version = importlib.metadata.version("actormq")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"actormq-{version}"


def _ha_children(
    name: str,
    cfg: BrokerConfig,
    store: BrokerStore,
    ha: HAContext,
    ha_sock: socket.socket | None,
    truncate: Callable[[int], None],
) -> list[ChildSpec]:
    """A master: the HAService and the HA port's acceptor; a slave: the HAClient and
    SlaveSynchronize."""
    if not cfg.is_master:
        return [
            ChildSpec(
                name=ha.client,
                start=lambda: HAClient.start(ha, truncate, cfg.ha_master_address or None),
            ),
            ChildSpec(
                name=f"{name}/slave-sync",
                start=lambda: SlaveSynchronize.start(
                    store, ha.state, label=name, credentials=cfg.inner_credentials()
                ),
            ),
        ]
    specs = [ChildSpec(name=ha.service, start=lambda: HAService.start(ha))]
    if ha_sock is not None:
        specs.append(
            ChildSpec(
                name=f"{name}/ha-acceptor",
                # its own budget: a flood of client connections must not keep slaves out
                start=lambda: Acceptor.start(
                    f"{name}/ha",
                    ha_sock,
                    connection_factory(ha),
                    budget=ConnectionBudget(limit=HA_MAX_LINKS),
                ),
            )
        )
    return specs


def _apply_truncation(settings: StoreSettings) -> None:
    """Cut the commit log where the master said (``<store>/ha-truncate``; an empty log starts
    there instead: ``truncate_log``), then forget it."""
    marker = os.path.join(settings.root, TRUNCATE_MARKER)
    try:
        with open(marker) as fh:
            offset = int(fh.read().strip())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        logger.error("store {}: ignoring a bad {} file: {}", settings.root, TRUNCATE_MARKER, exc)
        with contextlib.suppress(OSError):
            os.remove(marker)
        return
    truncate_log(settings, offset)
    EpochFile(settings.root).truncate(offset)
    os.remove(marker)


def _schedulers(ctx: BrokerContext, store: BrokerStore, cfg: BrokerConfig) -> list[ChildSpec]:
    """Delay-level and timer delivery, transaction check-backs: masters only (a slave's copy of
    the records arrives by replication, its copy of their progress by SlaveSynchronize)."""
    config_dir = store.settings.config_dir
    levels = tuple(cfg.delay_levels_ms())
    return [
        ChildSpec(name=ctx.scheduler, start=lambda: Scheduler.start(store, config_dir, levels)),
        ChildSpec(
            name=ctx.timer,
            start=lambda: TimerScheduler.start(store, config_dir, cfg.timer_max_loaded),
        ),
        ChildSpec(
            name=ctx.transactions,
            start=lambda: TransactionManager.start(
                ctx.directory,
                ctx.producers,
                config_dir,
                store.read_message_bytes,
                timeout_s=cfg.transaction_timeout / 1000,
                check_max=cfg.transaction_check_max,
                check_interval_s=cfg.transaction_check_interval / 1000,
                log_end=lambda: store.commit_log_max_offset,
                scan=lambda start, end: _scan_transactions(store, start, end),
                keep_discarded=lambda raw, checks: keep_discarded(ctx, raw, checks),
                file_reserved_s=store.settings.file_reserved_hours * 3600,
            ),
        ),
    ]


def _scan_transactions(store: BrokerStore, start: int, end: int) -> HalfScan:
    """The TransactionManager's catch-up read of the log (``half_scan``), from its first
    record when ``start`` is below it (removed), to what is written if past ``end`` (not
    dispatched yet: a half message there that a new term cuts is discarded after its
    checks)."""
    opened = store.ctx.opened
    if opened is None:
        return HalfScan([], set(), start)
    log = opened.log
    return scan_transactions(log, max(start, log.min_offset), max(end, log.write_offset))
