"""The broker subtree: store, client registries, name-server registrar, acceptor (sessions).

Start order (the supervisor stops in reverse): the store's actors first (the writer recovers
the store before anything is accepted), then the consumer and producer registries, then the
registrar, and the acceptor last, so no request arrives before the store is there and none is
accepted after it stopped. A fail-stop store actor takes the whole subtree down; the parent
restarts the broker, which recovers its store before accepting again.
"""

from __future__ import annotations

import pathlib
import socket

from actors.broker.consumer_manager import ConsumerManager
from actors.broker.context import BrokerContext
from actors.broker.lock_manager import RebalanceLockManager
from actors.broker.processor import BrokerProcessor
from actors.broker.producer_manager import ProducerManager
from actors.broker.registrar import NamesrvRegistrar
from actors.broker.scheduler import Scheduler
from actors.broker.store_adapter import StoreAdapter, to_wire
from actors.broker.store_service import BrokerStore
from actors.broker.timer_scheduler import TimerScheduler
from actors.broker.transaction_manager import TransactionManager
from config import BrokerConfig
from runtime.directory import Directory
from runtime.net import Acceptor
from runtime.remoting.bodies import TopicConfig
from runtime.session import session_factory
from runtime.store.settings import StoreSettings
from runtime.supervisor import ChildSpec, Supervisor

IDLE_TIMEOUT_S = 120.0


def broker_spec(
    name: str,
    cfg: BrokerConfig,
    sock: socket.socket,
    store_root: pathlib.Path,
    directory: Directory,
) -> ChildSpec:
    """A supervisor for one broker node listening on ``sock`` with its store at ``store_root``."""

    def start() -> object:
        store_root.mkdir(parents=True, exist_ok=True)
        store = BrokerStore.build(StoreSettings.from_broker_config(cfg), directory, prefix=name)
        put_timeout = (cfg.sync_flush_timeout + cfg.slave_timeout) / 1000 + 5.0
        ctx = BrokerContext(cfg, directory, name, StoreAdapter(store, put_timeout=put_timeout))
        processor = BrokerProcessor(ctx)

        def topic_table() -> dict[str, TopicConfig]:
            table = store.all_topics().get(timeout=5.0)
            return {topic: to_wire(c) for topic, c in table.topics.items()}

        children = [
            *store.child_specs(),
            ChildSpec(name=ctx.consumers, start=ConsumerManager.start),
            ChildSpec(name=ctx.producers, start=ProducerManager.start),
            ChildSpec(name=ctx.locks, start=RebalanceLockManager.start),
            *(_schedulers(ctx, store, cfg) if cfg.is_master else []),
            ChildSpec(
                name=ctx.transactions,
                start=lambda: TransactionManager.start(
                    directory,
                    ctx.producers,
                    store.settings.config_dir,
                    store.read_message_bytes,
                    timeout_s=cfg.transaction_timeout / 1000,
                    check_max=cfg.transaction_check_max,
                    check_interval_s=cfg.transaction_check_interval / 1000,
                ),
            ),
            ChildSpec(name=ctx.registrar, start=lambda: NamesrvRegistrar.start(cfg, topic_table)),
            ChildSpec(
                name=f"{name}/acceptor",
                start=lambda: Acceptor.start(
                    name, sock, session_factory(name, processor, idle_timeout=IDLE_TIMEOUT_S)
                ),
            ),
        ]
        return Supervisor.start(name, children, directory=directory)

    return ChildSpec(name=name, start=start)  # type: ignore[arg-type]


def _schedulers(ctx: BrokerContext, store: BrokerStore, cfg: BrokerConfig) -> list[ChildSpec]:
    """Delay-level and timer delivery: masters only (a slave's copy arrives by replication)."""
    config_dir = store.settings.config_dir
    levels = tuple(cfg.delay_levels_ms())
    return [
        ChildSpec(name=ctx.scheduler, start=lambda: Scheduler.start(store, config_dir, levels)),
        ChildSpec(name=ctx.timer, start=lambda: TimerScheduler.start(store, config_dir)),
    ]
