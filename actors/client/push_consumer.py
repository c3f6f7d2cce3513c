"""PushConsumer: a listener called for every message of the subscribed topics (RocketMQ's
DefaultMQPushConsumer, with MessageListenerConcurrently or, ``orderly=True``,
MessageListenerOrderly).

```python
consumer = PushConsumer("orders-billing", namesrv="127.0.0.1:9876")

@consumer.subscribe("Orders", "paid || refunded")
def on_message(msg: MessageExt) -> ConsumeResult:
    return ConsumeResult.CONSUME_SUCCESS

consumer.start(); ...; consumer.shutdown()
```

Listeners run on a pool of ``consume_threads`` threads (greenlets when gevent monkey-patched),
so they may block.

Batches (RocketMQ's ``consumeMessageBatchMaxSize``): with ``consume_batch_size=K`` a listener
subscribed with ``batch=True`` is called with a list of up to K messages of one queue and a
``ConsumeContext``; its outcome covers the list (concurrently, ``context.ack_index`` may accept
only a prefix of it). Plain listeners keep getting one message per call.

```python
consumer = PushConsumer("orders-billing", consume_batch_size=10)

@consumer.subscribe("Orders", "*", batch=True)
def on_batch(msgs: list[MessageExt], context: ConsumeContext) -> ConsumeResult:
    return ConsumeResult.CONSUME_SUCCESS
```

Concurrently (default): RECONSUME_LATER (or an exception) sends the message (each message of a
batch, or those after ``ack_index``) back to the broker
(CONSUMER_SEND_MSG_BACK): it comes again through ``%RETRY%<group>`` after the broker's delay
level 3 + reconsumeTimes (10 s, 30 s, 1 m, ...), with ``reconsume_times`` raised and its
original topic, and after ``max_reconsume_times`` (16) it goes to ``%DLQ%<group>``. The offset
moves past it once the broker accepted it; only if the send-back fails is it redelivered locally
after ``reconsume_delay``. Broadcasting consumers retry locally, ``max_reconsume_times`` times.

Orderly (``orderly=True``): each queue is locked at its broker (LOCK_BATCH_MQ, renewed every
``relock_interval``) and consumed one message (or one batch) at a time, in queue order; a
failure suspends the queue for ``suspend_delay`` and offers the message (the whole batch) again,
and after ``max_reconsume_times`` failures sends it to ``%DLQ%<group>`` and moves on (see
``actors.client.orderly_puller``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.client import consume_directly
from actors.client.allocate import AllocateOption
from actors.client.config import TlsOptions
from actors.client.consume import (
    MAX_CONSUME_BATCH_SIZE,
    RETRY_PREFIX,
    AnyListener,
    BatchListener,
    BatchListenerFn,
    ConsumeService,
    ContextListener,
    ContextListenerFn,
    Listener,
)
from actors.client.consumer_base import ConsumerBase
from actors.client.consumer_trace import ConsumerTrace
from actors.client.errors import ClientError
from actors.client.hub import ClientHub
from actors.client.namespace import plain_name, wire_name
from actors.client.orderly_rebalance import OrderlyRebalancer
from actors.client.pull import TagFilter, subscription
from actors.client.pull_limits import (
    MAX_THRESHOLD_FOR_TOPIC,
    MAX_THRESHOLD_SIZE_FOR_TOPIC,
    check_at_least,
    check_pull_interval,
    check_topic_threshold,
)
from actors.client.puller_messages import PullOptions, Sink
from actors.client.rebalance import ConsumeFrom, Rebalancer
from actors.client.send_back import DEFAULT_MAX_RECONSUME_TIMES
from runtime.acl.signature import SessionCredentials
from runtime.remoting.codes import MessageModel, RequestCode
from runtime.remoting.running_info import PROP_CONSUME_ORDERLY, PROP_THREADPOOL_CORE_SIZE


def _wrap(fn: Any, batch: bool, context: bool = False) -> AnyListener:
    if batch:
        return BatchListener(fn)
    return ContextListener(fn) if context else fn


class PushConsumer(ConsumerBase, ConsumerTrace):
    """A push consumer of one group. See the module docstring.

    Options: ``model`` (CLUSTERING: the group shares the queues; BROADCASTING: every consumer
    gets every message, offsets kept in a local file under ``offset_store_dir``),
    ``consume_from`` (LAST / FIRST / TIMESTAMP with ``consume_timestamp`` in ms; applies only
    to queues where the group has no committed offset), ``consume_threads`` (20),
    ``pull_batch_size`` (32), ``max_cached_messages`` (1000) / ``max_cached_bytes`` (100 MiB)
    per queue, ``pull_threshold_for_topic`` / ``pull_threshold_size_for_topic`` (-1: off;
    RocketMQ's pullThresholdForTopic / pullThresholdSizeForTopic, the latter in MiB: when set,
    each rebalance that changes the assignment sets the per-queue limit to it divided by the
    number of queues the consumer holds, all its topics and its retry queues together, at least
    1; ``actors.client.pull_limits``), ``pull_interval`` (0 s: RocketMQ's pullInterval, how long
    a queue waits after a pull that found messages before its next pull), ``max_span`` (2000:
    RocketMQ's consumeConcurrentlyMaxSpan, a queue stops pulling while its cached offsets span
    more; not orderly; 0 turns it off), ``consume_timeout``
    (900 s: RocketMQ's consumeTimeout, a message whose listener call outlasts it is sent back
    to the broker so the queue's offset moves on; clustering, not orderly; 0 turns it off;
    ``actors.client.consume_timeout``), ``rebalance_interval``
    (20 s), ``commit_interval`` (5 s), ``reconsume_delay``
    (1 s, local redelivery when a send-back fails), ``max_reconsume_times`` (16), ``orderly``
    (False), ``suspend_delay`` (1 s, orderly), ``relock_interval`` (20 s, orderly),
    ``consume_batch_size`` (1, at most 1024: the longest list a ``batch=True`` listener gets),
    ``allocate`` (how clustering members share queues: ``"AVG"``, ``"AVG_BY_CIRCLE"``,
    ``"CONSISTENT_HASH"``, an ``AllocateMessageQueueByConfig`` or any callable; see
    ``actors.client.allocate``). ``enable_msg_trace`` (False) / ``trace_topic``
    (``RMQ_SYS_TRACE_TOPIC``): message traces, RocketMQ's (``actors.client.trace``).
    """

    consume_type = "CONSUME_PASSIVELY"

    def __init__(
        self,
        group: str,
        namesrv: str | list[str] | None = None,
        *,
        model: MessageModel = MessageModel.CLUSTERING,
        consume_from: ConsumeFrom = ConsumeFrom.LAST,
        consume_timestamp: int | None = None,
        consume_threads: int = 20,
        pull_batch_size: int = 32,
        max_cached_messages: int = 1000,
        max_cached_bytes: int = 100 * 1024 * 1024,
        pull_threshold_for_topic: int = -1,
        pull_threshold_size_for_topic: int = -1,
        pull_interval: float = 0.0,
        max_span: int = 2000,
        consume_timeout: float = 900.0,
        rebalance_interval: float = 20.0,
        commit_interval: float = 5.0,
        reconsume_delay: float = 1.0,
        suspend_timeout: float = 15.0,
        pull_error_delay: float = 3.0,
        shutdown_wait: float = 10.0,
        offset_store_dir: str | os.PathLike[str] | None = None,
        instance_name: str | None = None,
        heartbeat_interval: float = 30.0,
        route_refresh_interval: float = 30.0,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        listener: Listener | None = None,
        hub: ClientHub | None = None,
        orderly: bool = False,
        max_reconsume_times: int = DEFAULT_MAX_RECONSUME_TIMES,
        suspend_delay: float = 1.0,
        relock_interval: float = 20.0,
        consume_batch_size: int = 1,
        allocate: AllocateOption = "AVG",
        enable_msg_trace: bool = False,
        trace_topic: str | None = None,
        namespace: str | None = None,
    ) -> None:
        if max_reconsume_times < 0:
            raise ClientError(f"max_reconsume_times {max_reconsume_times} is negative")
        check_at_least("consume_threads", consume_threads, 1)
        if not 1 <= consume_batch_size <= MAX_CONSUME_BATCH_SIZE:
            raise ClientError(
                f"consume_batch_size {consume_batch_size} is out of range "
                f"[1, {MAX_CONSUME_BATCH_SIZE}]"
            )
        clustering = MessageModel(model) is MessageModel.CLUSTERING
        options = PullOptions(
            batch_size=pull_batch_size,
            suspend_ms=int(suspend_timeout * 1000),
            max_cached_messages=max_cached_messages,
            max_cached_bytes=max_cached_bytes,
            pull_threshold_for_topic=check_topic_threshold(
                "pull_threshold_for_topic", pull_threshold_for_topic, MAX_THRESHOLD_FOR_TOPIC
            ),
            pull_threshold_size_for_topic=check_topic_threshold(
                "pull_threshold_size_for_topic",
                pull_threshold_size_for_topic,
                MAX_THRESHOLD_SIZE_FOR_TOPIC,
                " MiB",
            ),
            pull_interval=check_pull_interval(pull_interval),
            max_span=max_span,
            consume_timeout=consume_timeout,
            error_delay=pull_error_delay,
            reconsume_delay=reconsume_delay,
            commit_in_pull=True,
            send_back=clustering,
            max_reconsume_times=max_reconsume_times,
            suspend_delay=suspend_delay,
            relock_interval=relock_interval,
            consume_batch_size=consume_batch_size,
        )
        super().__init__(
            group,
            namesrv,
            model=model,
            consume_from=consume_from,
            consume_timestamp=consume_timestamp,
            pull_options=options,
            rebalance_interval=rebalance_interval,
            commit_interval=commit_interval,
            offset_store_dir=offset_store_dir,
            instance_name=instance_name,
            heartbeat_interval=heartbeat_interval,
            route_refresh_interval=route_refresh_interval,
            hub=hub,
            credentials=credentials,
            tls=tls,
            allocate=allocate,
            namespace=namespace,
        )
        self.orderly = orderly
        self.max_reconsume_times = max_reconsume_times
        self.consume_threads = consume_threads
        self.suspended = False
        """Whether ``suspend`` stopped pulling (until ``resume``)."""
        self.consume_batch_size = consume_batch_size
        self.shutdown_wait = shutdown_wait
        self.listeners: dict[str, AnyListener] = {}
        if listener is not None:
            self.listeners["*"] = listener
        self.service: ConsumeService | None = None
        self.enable_msg_trace = enable_msg_trace
        self.trace_topic = trace_topic

    # -- configuration -----------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        expression: str = "*",
        listener: Listener | BatchListenerFn | ContextListenerFn | None = None,
        *,
        sql: str | None = None,
        batch: bool = False,
        context: bool = False,
    ) -> Callable[[Any], Any]:
        """Subscribe to ``topic`` with a TAG expression (``"*"`` or ``"a || b"``) or a SQL92
        property filter ``sql`` (``"a > 5 AND region = 'eu'"``; the broker needs
        ``enablePropertyFilter=true``; an invalid expression raises ClientError here). Give the
        listener here, or use the return value as a decorator. ``batch=True``: the listener
        takes ``(msgs, context)``, a list of up to ``consume_batch_size`` messages and a
        ``ConsumeContext``; ``context=True``: it takes ``(msg, context)``, one message and its
        ``ConsumeContext`` (its send-back delay level, its queue's suspend time). After
        ``start`` too, as in RocketMQ (``ConsumerBase._set_subscription``): a topic already
        subscribed gets the new filter (its queues restart from their committed offsets).
        Give the listener here then: the decorator form registers it only after the call."""
        sub = subscription(expression, sql)

        def register(fn: Any) -> Any:
            self.listeners[topic] = _wrap(fn, batch, context)  # by the topic its messages show
            return fn

        if listener is not None:
            register(listener)
        elif self._state != "created" and topic not in self.listeners and "*" not in self.listeners:
            raise ClientError(f"no listener for {topic}: give it to subscribe once started")
        self._set_subscription(wire_name(self.namespace, topic), sub, 10.0)
        return register

    def register_listener(
        self,
        listener: Listener | BatchListenerFn | ContextListenerFn,
        *,
        batch: bool = False,
        context: bool = False,
    ) -> None:
        """The listener for subscribed topics that have none of their own (``batch``,
        ``context``: as in ``subscribe``)."""
        self.listeners["*"] = _wrap(listener, batch, context)

    # -- life cycle ------------------------------------------------------------------------------

    def suspend(self, timeout: float = 10.0) -> None:
        """Stop pulling every queue, held now or assigned later, until ``resume`` (RocketMQ's
        ``suspend``): pulls in flight complete and what was pulled is still consumed; offsets
        and the group's membership are kept (the queues stay this member's)."""
        self._hold(None, True, self._running_hub("suspend"), timeout)
        self.suspended = True

    def resume(self, timeout: float = 10.0) -> None:
        """Pull again after ``suspend`` (RocketMQ's ``resume``)."""
        self._hold(None, False, self._running_hub("resume"), timeout)
        self.suspended = False

    def start(self) -> PushConsumer:
        topics = [plain_name(self.namespace, t) for t in self.subscriptions]
        missing = [t for t in topics if t not in self.listeners]
        if missing and "*" not in self.listeners:
            raise ClientError(f"no listener for {', '.join(sorted(missing))}")
        self._start_traced()
        return self

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop pulling, let running listeners finish (up to ``shutdown_wait``), commit every
        offset, unregister. Idempotent."""
        service = self.service

        def drain() -> None:
            if service is not None and not service.drain(self.shutdown_wait):
                logger.warning(
                    "client: {}: listeners still busy after {}s; those messages will come again",
                    self.group,
                    self.shutdown_wait,
                )

        try:
            self._shutdown(drain, timeout)
        finally:
            if service is not None:
                service.shutdown()
            self._stop_msg_trace()  # after the last listener call's ``after``

    def __enter__(self) -> PushConsumer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    # -- ConsumerBase hooks -----------------------------------------------------------------------

    def _sink(self) -> Sink:
        hub = self._hub
        assert hub is not None
        service = self.service = ConsumeService(
            hub,
            self.listeners,
            threads=self.consume_threads,
            consume_batch_size=self.consume_batch_size,
            name=f"actormq-consume-{self.group}",
            namespace=self.namespace,
        )
        service.hooks = self._hook_set()  # hooks registered later are seen too
        assert self._instance is not None
        self._instance.inbound_handlers[RequestCode.CONSUME_MESSAGE_DIRECTLY] = (
            lambda _session, request: consume_directly.serve(self, service, request)
        )
        return service

    def _rebalancer_class(self) -> type[Rebalancer]:
        return OrderlyRebalancer if self.orderly else Rebalancer

    def _settings(self) -> dict[str, str]:
        settings = super()._settings()
        settings.update(
            {
                "consumeThreadMin": str(self.consume_threads),
                "consumeThreadMax": str(self.consume_threads),
                "maxReconsumeTimes": str(self.max_reconsume_times),
                "consumeMessageBatchMaxSize": str(self.consume_batch_size),
                "suspendCurrentQueueTimeMillis": str(int(self.pull_options.suspend_delay * 1000)),
                "pullInterval": str(round(self.pull_options.pull_interval * 1000)),
                "pullThresholdForTopic": str(self.pull_options.pull_threshold_for_topic),
                "pullThresholdSizeForTopic": str(self.pull_options.pull_threshold_size_for_topic),
                PROP_CONSUME_ORDERLY: "true" if self.orderly else "false",
                PROP_THREADPOOL_CORE_SIZE: str(self.consume_threads),
            }
        )
        return settings

    def _extra_topics(self) -> dict[str, TagFilter]:
        if self.model is MessageModel.CLUSTERING:
            return {f"{RETRY_PREFIX}{self.group}": TagFilter("*")}
        return {}
