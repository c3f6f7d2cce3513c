"""What the push and the lite pull consumer share: client instance, offsets, rebalancer, life cycle.

Start (on the hub): the ClientInstance starts with two more children, ``offsets`` (OffsetStore:
remote for clustering, a local file for broadcasting) and ``rebalancer``; the consumer fetches
its topics' routes, asks a broker of each topic with a SQL92 subscription whether it can serve
it (CHECK_CLIENT_CONFIG, see ``actors.client.check_config``: a refusal fails ``start`` with a
BrokerError), heartbeats every broker (so the group lists it), then rebalances once before
``start`` returns. What brokers ask of it afterwards (NOTIFY_CONSUMER_IDS_CHANGED,
RESET_CONSUMER_CLIENT_OFFSET, GET_CONSUMER_RUNNING_INFO) is answered by ``BrokerRequests``
(``actors.client.consumer_requests``).

Shutdown: stop pulling, let the sink finish (push: listener tasks, bounded), stop the
rebalancer (each puller records its last committable offset, persisted synchronously), persist
every offset, UNREGISTER_CLIENT, close everything.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import threading
import time
from typing import Any

from loguru import logger

from actors.client.allocate import AllocateOption, describe, resolve_allocate
from actors.client.check_config import check_subscriptions
from actors.client.config import ClientConfig, TlsOptions
from actors.client.consume_hooks import ConsumeHooks
from actors.client.consumer_controls import ConsumerControls
from actors.client.consumer_queries import ConsumerQueries
from actors.client.consumer_requests import OFFSETS, REBALANCER, BrokerRequests
from actors.client.errors import ClientError, ClientStateError
from actors.client.holds import Holds
from actors.client.hooks import ConsumeHook, added, checked, removed
from actors.client.hub import ClientHub, acquire_shared, release_shared
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.namespace import Namespace, wire_name
from actors.client.offsets import OffsetStore, Persist, local_offsets_path
from actors.client.pool import in_task
from actors.client.pull import TagFilter
from actors.client.pull_limits import check_pull_options
from actors.client.puller_messages import PullOptions, Sink
from actors.client.rebalance import (
    ConsumeFrom,
    DoRebalance,
    QuiesceAll,
    Rebalancer,
)
from actors.client.rebalance_messages import (
    CONSUME_TIMESTAMP_LAG_MS,
)
from runtime.acl.signature import SessionCredentials
from runtime.actor import GeventFuture, new_future
from runtime.remoting.bodies import ConsumerData, SubscriptionData
from runtime.remoting.codes import MessageModel
from runtime.supervisor import ChildSpec


class ConsumerBase(ConsumerControls, BrokerRequests, ConsumerQueries):
    """Shared machinery; see the module docstring. Subclasses provide the sink."""

    consume_type = "CONSUME_PASSIVELY"
    _consume_hooks: ConsumeHooks | None = None
    """Made by the first ``register_consume_hook`` (or, push consumers, at the start)."""

    def __init__(
        self,
        group: str,
        namesrv: str | list[str] | None,
        *,
        model: MessageModel,
        consume_from: ConsumeFrom,
        consume_timestamp: int | None,
        pull_options: PullOptions,
        rebalance_interval: float,
        commit_interval: float,
        offset_store_dir: str | os.PathLike[str] | None,
        instance_name: str | None,
        heartbeat_interval: float,
        route_refresh_interval: float,
        hub: ClientHub | None,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        allocate: AllocateOption = "AVG",
        namespace: str | None = None,
    ) -> None:
        if not group:
            raise ClientError("a consumer needs a group name")
        check_pull_options(pull_options)
        self.namespace = Namespace.of(namespace)
        self.group = wire_name(self.namespace, group)
        """The group as the brokers know it (``<namespace>%<group>`` with a namespace)."""
        if self.namespace is not None:
            pull_options = _replace(pull_options, namespace=self.namespace.name)
        self.model = MessageModel(model) if not isinstance(model, MessageModel) else model
        self.consume_from = consume_from
        self.consume_timestamp = consume_timestamp
        self.allocate = resolve_allocate(allocate)
        self.pull_options = pull_options
        self.rebalance_interval = rebalance_interval
        self.commit_interval = commit_interval
        self.offset_store_dir = offset_store_dir
        self.config = ClientConfig.make(
            namesrv,
            instance_name,
            credentials,
            tls,
            heartbeat_interval=heartbeat_interval,
            route_refresh_interval=route_refresh_interval,
        )
        self.subscriptions: dict[str, TagFilter] = {}
        self._fixed: tuple[MessageQueue, ...] | None = None
        self._own_hub = hub is None
        self._hub: ClientHub | None = hub
        self._instance: ClientInstance | None = None
        self._state = "created"
        self._lock = threading.RLock()
        self._start_ms = 0

    @property
    def client_id(self) -> str:
        return self.config.client_id

    # -- consume hooks -----------------------------------------------------------------------

    def register_consume_hook(self, hook: ConsumeHook) -> None:
        """Call ``hook.before(ctx)`` and ``hook.after(ctx)`` around every listener call from
        now on (lite pull consumer: around what each ``poll`` returns); RocketMQ's
        ``registerConsumeMessageHook``. See ``actors.client.hooks`` and
        ``actors.client.consume_hooks``. Any time, any thread."""
        checked(hook, "consume")
        with self._lock:
            hooks = self._hook_set()
            hooks.hooks = added(hooks.hooks, hook)

    def unregister_consume_hook(self, hook: ConsumeHook) -> None:
        """Stop calling ``hook`` (a listener call in progress still calls its ``after``)."""
        with self._lock:
            hooks = self._hook_set()
            hooks.hooks = removed(hooks.hooks, hook)

    def _hook_set(self) -> ConsumeHooks:
        """The consumer's ``ConsumeHooks``, made on first use (under ``_lock``, or during
        ``start``, which holds it)."""
        hooks = self._consume_hooks
        if hooks is None:
            orderly = bool(getattr(self, "orderly", False))
            hooks = self._consume_hooks = ConsumeHooks(self.group, self._settings, orderly=orderly)
        return hooks

    @property
    def offsets_path(self) -> pathlib.Path | None:
        """The local offsets file (broadcasting), else None."""
        if self.model is not MessageModel.BROADCASTING:
            return None
        return local_offsets_path(
            self.offset_store_dir, self.config.client_ip, self.config.instance_name, self.group
        )

    # -- to be provided ---------------------------------------------------------------------

    def _sink(self) -> Sink:
        raise NotImplementedError

    def _extra_topics(self) -> dict[str, TagFilter]:
        return {}

    def _rebalancer_class(self) -> type[Rebalancer]:
        return Rebalancer

    def _settings(self) -> dict[str, str]:
        """The consumer's settings under RocketMQ's names (running info properties)."""
        opts = self.pull_options
        settings = {
            "consumerGroup": self.group,
            "messageModel": self.model.name,
            "consumeFromWhere": self.consume_from.value,
            "pullBatchSize": str(opts.batch_size),
            "pullThresholdForQueue": str(opts.max_cached_messages),
            "pullThresholdSizeForQueue": str(opts.max_cached_bytes // (1024 * 1024)),
            "consumeConcurrentlyMaxSpan": str(opts.max_span),
            "consumeTimeout": str(round(opts.consume_timeout / 60)),
            "instanceName": self.config.instance_name,
            "clientIP": self.config.client_ip,
            "namesrvAddr": ";".join(self.config.namesrv),
            "allocateMessageQueueStrategy": describe(self.allocate),
        }
        timestamp = self._consume_timestamp()
        if timestamp is not None:
            settings["consumeTimestamp"] = str(timestamp)
        return settings

    def _consume_timestamp(self) -> int | None:
        """Where TIMESTAMP starts: ``consume_timestamp``, else half an hour before the start,
        for every queue (RocketMQ fixes its default when the consumer is made, not before each
        assignment); None before the start without one."""
        if self.consume_timestamp is not None:
            return self.consume_timestamp
        return self._start_ms - CONSUME_TIMESTAMP_LAG_MS if self._start_ms else None

    # -- life cycle ------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._state == "running":
                return
            if self._state != "created":
                raise ClientStateError(f"consumer {self.group}", self._state)
            if not self.subscriptions and self._fixed is None:
                raise ClientError(f"consumer {self.group}: subscribe or assign before start")
            hub = self._hub = self._hub or acquire_shared()
            try:
                hub.call(self._start_on_hub, timeout=60, what="consumer start")
            except BaseException:
                if self._instance is not None:
                    try:
                        hub.call(self._instance.stop, timeout=10, what="consumer start cleanup")
                    except Exception as exc:
                        logger.debug("client: cleanup after a failed start: {}", exc)
                if self._own_hub:
                    release_shared(hub)
                self._state = "failed"
                raise
            self._state = "running"

    def consumer_data(self) -> ConsumerData:
        subs = [
            SubscriptionData(
                topic=topic, sub_string=f.expression, expression_type=f.expression_type
            )
            for topic, f in sorted(self._all_topics().items())
        ]
        return ConsumerData(
            group_name=self.group,
            consume_type=self.consume_type,
            message_model=self.model.name,
            consume_from_where=self.consume_from.value,
            subscription_data_set=subs,
        )

    def _all_topics(self) -> dict[str, TagFilter]:
        topics = dict(self.subscriptions)
        topics.update(self._extra_topics())
        return topics

    def _start_on_hub(self) -> None:
        instance = self._instance = ClientInstance(self.config)
        instance.members.consumers[self.group] = self.consumer_data()
        self._register_handlers(instance)
        self._start_ms = int(time.time() * 1000)
        consume_timestamp = self._consume_timestamp()
        sink = self._sink()
        topics = self._all_topics()
        holds = Holds()  # the user's pauses: kept here, so a restarted rebalancer keeps them
        starts = itertools.count()  # (the first start's rebalance is asked below)
        offsets_path = self.offsets_path
        options = self.pull_options
        if self.model is MessageModel.BROADCASTING:
            options = _replace(options, commit_in_pull=False)
        extra = [
            ChildSpec(
                name=instance.name(OFFSETS),
                start=lambda: OffsetStore.start(
                    instance,
                    self.group,
                    local_path=offsets_path,
                    interval=self.commit_interval,
                    timeout=self.config.request_timeout,
                ),
            ),
            ChildSpec(
                name=instance.name(REBALANCER),
                # (re)started with the subscriptions of now: a restart after a failure must
                # not bring back those of the start, undoing (un)subscribes since
                start=lambda: self._rebalancer_class().start(
                    instance,
                    self.group,
                    self._all_topics(),
                    sink,
                    instance.name(OFFSETS),
                    options,
                    model=self.model,
                    consume_from=self.consume_from,
                    consume_timestamp=consume_timestamp,
                    interval=self.rebalance_interval,
                    timeout=self.config.request_timeout,
                    assigned=self._fixed,
                    allocate=self.allocate,
                    holds=holds,
                    restarted=next(starts) > 0,
                    # restarted during a shutdown (after its quiesce): pulls nothing
                    quiesced=self._state == "stopping",
                ),
            ),
        ]
        instance.start(extra)
        for topic in topics:
            try:
                instance.fetch_route(topic, timeout=self.config.request_timeout)
            except ClientError as exc:
                logger.warning("client: {}: no route for {} yet: {}", self.group, topic, exc)
        check_subscriptions(instance, self.group, self.subscriptions, self.config.request_timeout)
        instance.heartbeat()
        # asked again of a restarted rebalancer should the first fail before it answers
        self._ask_rebalancer(
            lambda reply: DoRebalance("start", reply), 60.0, "start", states=("created",)
        )

    def _ask(self, child: str, factory: Any, timeout: float) -> Any:
        """Tell a child a message carrying a reply future and wait for it (hub greenlets)."""
        instance = self._instance
        if instance is None:
            raise ClientStateError(f"consumer {self.group}", self._state)
        ref = instance.directory.get(instance.name(child))
        if ref is None:
            raise ClientStateError(instance.name(child), "not running")
        reply: GeventFuture[Any] = new_future()
        ref.tell(factory(reply))
        return reply.get(timeout=timeout)

    def _running_hub(self, what: str) -> ClientHub:
        hub = self._hub
        if self._state != "running" or hub is None:
            raise ClientStateError(f"{what} ({self.group})", self._state)
        return hub

    def _quiesce(self) -> None:
        self._ask_rebalancer(lambda reply: QuiesceAll(reply), 10.0, "quiesce", states=("stopping",))

    def _stop_on_hub(self) -> None:
        instance = self._instance
        if instance is None:
            return
        instance.stop_child(REBALANCER)
        try:
            self._ask(OFFSETS, lambda reply: Persist(None, reply), self.config.request_timeout + 5)
        except Exception as exc:
            logger.warning("client: {}: final offset commit failed: {}", self.group, exc)
        instance.unregister()
        instance.stop()

    def _shutdown(self, drain: Any = None, timeout: float = 15.0) -> None:
        if in_task():  # a listener: another one may be shutting down, waiting for this one
            while not self._lock.acquire(timeout=0.05):
                if self._state in ("stopping", "shut down"):
                    return
        else:
            self._lock.acquire()
        try:
            if self._state != "running":
                self._state = "shut down"
                return
            self._state = "stopping"
            hub = self._hub
            assert hub is not None
            try:
                try:
                    hub.call(self._quiesce, timeout=timeout, what="consumer quiesce")
                except Exception as exc:
                    logger.debug("client: quiesce failed: {}", exc)
                if drain is not None:
                    drain()
                hub.call(self._stop_on_hub, timeout=timeout + 30, what="consumer shutdown")
            finally:
                self._state = "shut down"
                if self._own_hub:
                    release_shared(hub)
        finally:
            self._lock.release()


def _replace(options: PullOptions, **changes: Any) -> PullOptions:
    import msgspec

    return msgspec.structs.replace(options, **changes)
