"""PushConsumer: a listener called for every message of the subscribed topics (RocketMQ's
DefaultMQPushConsumer).

```python
consumer = PushConsumer("orders-billing", namesrv="127.0.0.1:9876")

@consumer.subscribe("Orders", "paid || refunded")
def on_message(msg: MessageExt) -> ConsumeResult:
    return ConsumeResult.CONSUME_SUCCESS

consumer.start(); ...; consumer.shutdown()
```

Listeners run on a pool of ``consume_threads`` threads (greenlets when gevent monkey-patched),
so they may block. RECONSUME_LATER (or an exception) redelivers the message locally after
``reconsume_delay`` seconds, with ``reconsume_times`` raised; its offset is not committed until
it succeeds. (Sending it back to the broker's retry topic comes with the retry work.)
"""

from __future__ import annotations

import os
from collections.abc import Callable

from loguru import logger

from actors.client.consume import RETRY_PREFIX, ConsumeService, Listener
from actors.client.consumer_base import ConsumerBase
from actors.client.errors import ClientError, ClientStateError
from actors.client.hub import ClientHub
from actors.client.pull import TagFilter
from actors.client.puller import PullOptions, Sink
from actors.client.rebalance import ConsumeFrom
from runtime.remoting.codes import MessageModel


class PushConsumer(ConsumerBase):
    """A push consumer of one group. See the module docstring.

    Options: ``model`` (CLUSTERING: the group shares the queues; BROADCASTING: every consumer
    gets every message, offsets kept in a local file under ``offset_store_dir``),
    ``consume_from`` (LAST / FIRST / TIMESTAMP with ``consume_timestamp`` in ms; applies only
    to queues where the group has no committed offset), ``consume_threads`` (20),
    ``pull_batch_size`` (32), ``max_cached_messages`` (1000) / ``max_cached_bytes`` (100 MiB)
    per queue, ``rebalance_interval`` (20 s), ``commit_interval`` (5 s), ``reconsume_delay``.
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
        listener: Listener | None = None,
        hub: ClientHub | None = None,
    ) -> None:
        options = PullOptions(
            batch_size=pull_batch_size,
            suspend_ms=int(suspend_timeout * 1000),
            max_cached_messages=max_cached_messages,
            max_cached_bytes=max_cached_bytes,
            error_delay=pull_error_delay,
            reconsume_delay=reconsume_delay,
            commit_in_pull=True,
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
        )
        self.consume_threads = consume_threads
        self.shutdown_wait = shutdown_wait
        self.listeners: dict[str, Listener] = {}
        if listener is not None:
            self.listeners["*"] = listener
        self.service: ConsumeService | None = None

    # -- configuration -----------------------------------------------------------------------

    def subscribe(
        self, topic: str, expression: str = "*", listener: Listener | None = None
    ) -> Callable[[Listener], Listener]:
        """Subscribe to ``topic`` with a TAG expression (``"*"`` or ``"a || b"``). Give the
        listener here, or use the return value as a decorator. Before ``start`` only."""
        if self._state != "created":
            raise ClientStateError(f"subscribe ({self.group})", self._state)
        try:
            self.subscriptions[topic] = TagFilter(expression)
        except ValueError as exc:
            raise ClientError(str(exc)) from None

        def register(fn: Listener) -> Listener:
            self.listeners[topic] = fn
            return fn

        if listener is not None:
            register(listener)
        return register

    def register_listener(self, listener: Listener) -> None:
        """The listener for subscribed topics that have none of their own."""
        self.listeners["*"] = listener

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> PushConsumer:
        missing = [t for t in self.subscriptions if t not in self.listeners]
        if missing and "*" not in self.listeners:
            raise ClientError(f"no listener for {', '.join(sorted(missing))}")
        self._start()
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

    def __enter__(self) -> PushConsumer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    # -- ConsumerBase hooks -----------------------------------------------------------------------

    def _sink(self) -> Sink:
        hub = self._hub
        assert hub is not None
        self.service = ConsumeService(
            hub, self.listeners, threads=self.consume_threads, name=f"actormq-consume-{self.group}"
        )
        return self.service

    def _extra_topics(self) -> dict[str, TagFilter]:
        if self.model is MessageModel.CLUSTERING:
            return {f"{RETRY_PREFIX}{self.group}": TagFilter("*")}
        return {}
