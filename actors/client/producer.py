"""Producer: the public, synchronous, thread-safe producer (RocketMQ's DefaultMQProducer).

```python
with Producer("orders-producer", namesrv="127.0.0.1:9876") as producer:
    r = producer.send(Message("Orders", b"...", tags="paid", keys=["order-42"]))
```

Every method may be called from any thread (or greenlet, in a monkey-patched program). Messages
are validated and encoded in the caller's thread; the send itself runs on the client hub (see
``actors.client.send``, which says what is retried). ``send`` retries twice (``retries``) on
another broker within ``send_timeout`` (the default selector only), ``send_async`` twice
(``async_retries``) after a failure with no answer only; ``send_async`` returns a
``concurrent.futures.Future`` (callbacks on the client's callback thread, never on the hub;
``flush`` waits for them); ``send_oneway`` returns once the request is written. ``request``
sends a message and waits for the reply (request-reply, ``actors.client.reply``).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from actors.client.async_window import MAX_ASYNC_BYTES, MAX_ASYNC_SENDS, AsyncWindow
from actors.client.auto_batch import (
    BATCH_MAX_BYTES,
    BATCH_MAX_DELAY,
    TOTAL_BATCH_MAX_BYTES,
    Accumulator,
    Entry,
    check_options,
)
from actors.client.compression import DEFAULT_LEVEL, DEFAULT_TYPE, compressor
from actors.client.config import ClientConfig, TlsOptions
from actors.client.errors import ClientError, ClientStateError, MessageInvalidError
from actors.client.hooks import SendHook
from actors.client.hub import ClientHub, acquire_shared, release_shared
from actors.client.instance import ClientInstance
from actors.client.latency_fault import LatencyFault
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.namespace import Namespace, plain_queue, wire_name
from actors.client.outgoing import COMPRESS_OVER, MAX_MESSAGE_SIZE, Outgoing, prepare
from actors.client.producer_async import MIN_STOP_S, ProducerAsync
from actors.client.producer_batch import ProducerBatch
from actors.client.producer_hooks import ProducerHooks
from actors.client.producer_reply import ProducerReply
from actors.client.reply import ReplyWaiters
from actors.client.selectors import ROUND_ROBIN, ByShardingKey, QueueSelector, Selection
from actors.client.send_hooks import HookedSend
from actors.client.sender import Sender
from actors.client.trace_dispatcher import TraceDispatcher
from runtime.acl.signature import SessionCredentials
from runtime.remoting import properties as P
from runtime.remoting.batch import MAX_PROPERTIES
from runtime.remoting.codes import RequestCode


class Producer(ProducerHooks, ProducerAsync, ProducerReply, ProducerBatch):
    """A producer of one group. See the module docstring for the threading rules. Here: the
    life cycle, ``send`` and the sync path it shares; ``send_async`` and
    ``send_oneway``: ``ProducerAsync`` (producer_async); ``send_batch`` and auto batching:
    ``ProducerBatch`` (producer_batch); send hooks: ``ProducerHooks``
    (producer_hooks); ``request`` and ``reply``: ``ProducerReply`` (producer_reply).

    Options: ``send_timeout`` (3 s, the whole send including retries), ``retries`` (2:
    RocketMQ's retryTimesWhenSendFailed, of ``send``), ``async_retries`` (2: RocketMQ's
    retryTimesWhenSendAsyncFailed, of ``send_async``),
    ``compress_over`` (bytes, 4096; -1 disables), ``compress_type`` ("ZLIB", "LZ4" or "ZSTD")
    and ``compress_level`` (5): RocketMQ 5's compressType / compressLevel
    (``actors.client.compression``; a missing package is a ClientError here, at construction),
    ``max_message_size`` (4 MiB),
    ``instance_name``, ``heartbeat_interval`` / ``route_refresh_interval`` (30 s),
    ``max_async_sends`` (128) / ``max_async_bytes`` (32 MiB): ``send_async``'s back-pressure
    (``actors.client.async_window``). ``enable_msg_trace`` (False) / ``trace_topic``
    (``RMQ_SYS_TRACE_TOPIC``): message traces, RocketMQ's (``actors.client.trace``).
    ``namespace`` (None): RocketMQ's client namespace: the group and every topic are
    ``<namespace>%<name>`` on the wire, results name the plain topic (``actors.client.namespace``).
    ``send_latency_fault_enable`` (False): RocketMQ's sendLatencyFaultEnable, the default
    selector skips brokers that answered slowly or failed lately (``actors.client.latency_fault``).
    ``retry_another_broker_when_not_store_ok`` (False): RocketMQ's option of that name, a sync
    send answered FLUSH_DISK_TIMEOUT / FLUSH_SLAVE_TIMEOUT / SLAVE_NOT_AVAILABLE is retried on
    another broker (``actors.client.send``; an async send's answer is its outcome, as RocketMQ's).
    ``auto_batch`` (False): RocketMQ 5's autoBatch, small ``send`` / ``send_async`` messages of
    a topic held up to ``batch_max_delay`` (0.01 s) or ``batch_max_bytes`` (32 KiB) and sent as
    one batch, at most ``total_batch_max_bytes`` (32 MiB) held (``actors.client.auto_batch``).
    """

    def __init__(
        self,
        group: str,
        namesrv: str | list[str] | None = None,
        *,
        send_timeout: float = 3.0,
        retries: int = 2,
        async_retries: int = 2,
        compress_over: int = COMPRESS_OVER,
        compress_type: str = DEFAULT_TYPE,
        compress_level: int = DEFAULT_LEVEL,
        max_message_size: int = MAX_MESSAGE_SIZE,
        instance_name: str | None = None,
        heartbeat_interval: float = 30.0,
        route_refresh_interval: float = 30.0,
        max_async_sends: int = MAX_ASYNC_SENDS,
        max_async_bytes: int = MAX_ASYNC_BYTES,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        hub: ClientHub | None = None,
        enable_msg_trace: bool = False,
        trace_topic: str | None = None,
        namespace: str | None = None,
        send_latency_fault_enable: bool = False,
        retry_another_broker_when_not_store_ok: bool = False,
        auto_batch: bool = False,
        batch_max_delay: float = BATCH_MAX_DELAY,
        batch_max_bytes: int = BATCH_MAX_BYTES,
        total_batch_max_bytes: int = TOTAL_BATCH_MAX_BYTES,
    ) -> None:
        if not group:
            raise ClientError("a producer needs a group name")
        check_options(batch_max_delay, batch_max_bytes, total_batch_max_bytes)
        self.auto_batch = auto_batch
        self._batch_bounds = (batch_max_delay, batch_max_bytes, total_batch_max_bytes)
        self._accumulator: Accumulator | None = None
        self.namespace = Namespace.of(namespace)
        self.group = wire_name(self.namespace, group)
        """The group as the brokers know it (``<namespace>%<group>`` with a namespace)."""
        self.send_timeout = send_timeout
        self.retries = retries
        self.async_retries = async_retries
        self.retry_not_stored_ok = retry_another_broker_when_not_store_ok
        self.latency_fault = LatencyFault() if send_latency_fault_enable else None
        """With ``send_latency_fault_enable``: which brokers the default selector skips now."""
        self.compress_over = compress_over
        self.compressor = compressor(compress_type, compress_level)
        self.max_message_size = max_message_size
        self.config = ClientConfig.make(
            namesrv,
            instance_name,
            credentials,
            tls,
            heartbeat_interval=heartbeat_interval,
            route_refresh_interval=route_refresh_interval,
        )
        self._own_hub = hub is None
        self._hub: ClientHub | None = hub
        self._instance: ClientInstance | None = None
        self._sender: Sender | None = None
        self._callbacks: concurrent.futures.Executor | None = None
        self._replies = ReplyWaiters()
        self._state = "created"
        self._lock = threading.Lock()
        self._window_bounds = (max_async_sends, max_async_bytes)
        self.async_window: AsyncWindow | None = None
        """The bounds of ``send_async`` (created by ``start``, with the program's threading)."""
        self._send_hooks: tuple[SendHook, ...] = ()
        self.enable_msg_trace = enable_msg_trace
        self.trace_topic = trace_topic
        self.trace_dispatcher: TraceDispatcher | None = None
        """With ``enable_msg_trace``, started: where the traces go (``actors.client.trace``)."""

    @property
    def client_id(self) -> str:
        return self.config.client_id

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Producer:
        with self._lock:
            if self._state == "running":
                return self
            if self._state != "created":
                raise ClientStateError(f"producer {self.group}", self._state)
            hub = self._hub = self._hub or acquire_shared()
            try:
                hub.call(self._start_on_hub, what="producer start")
            except BaseException:
                if self._own_hub:
                    release_shared(hub)
                raise
            self.async_window = AsyncWindow(*self._window_bounds)
            self._callbacks = hub.executor(1, f"actormq-callback-{self.group}")
            self._callbacks.submit(lambda: None).result()  # start its thread now, not on the hub
            self._state = "running"
            if self.enable_msg_trace:
                self._start_msg_trace()
        return self

    def _start_on_hub(self) -> None:
        instance = ClientInstance(self.config)
        instance.members.producer_groups.add(self.group)
        instance.inbound_handlers[RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT] = self._replies.on_push
        instance.start()
        self._instance = instance
        self._sender = Sender(
            instance,
            self.group,
            retries=self.retries,
            async_retries=self.async_retries,
            latency_fault=self.latency_fault,
            retry_not_stored_ok=self.retry_not_stored_ok,
        )
        if self.auto_batch:
            delay, size, total = self._batch_bounds
            self._accumulator = Accumulator(
                self._begin,
                max_delay=delay,
                max_bytes=size,
                total_max_bytes=total,
                max_message_size=self.max_message_size,
            )

    def shutdown(self, timeout: float = 10.0) -> None:
        """Unregister from the brokers and close every connection. Idempotent. First, as
        Kafka's ``close``, the async sends in flight (and what ``auto_batch`` holds, sent now)
        are waited for: their callbacks run before this returns. ``timeout`` bounds the whole,
        but the unregistering always gets ``MIN_STOP_S`` (1 s)."""
        with self._lock:
            if self._state != "running":
                self._state = "shut down"
                return
            deadline = time.monotonic() + timeout
            self._flush_before_shutdown(timeout)
            self._state = "shut down"
            hub = self._hub
            assert hub is not None
            stop = max(deadline - time.monotonic(), MIN_STOP_S)
            try:
                hub.call(self._stop_on_hub, stop, timeout=stop + 2, what="producer shutdown")
            finally:
                if self._callbacks is not None:  # not joined from its own thread
                    self._callbacks.shutdown(wait=not self._in_own_callback())
                if self._own_hub:
                    release_shared(hub)
                if self.trace_dispatcher is not None:
                    self.trace_dispatcher.shutdown()  # after the last send's ``after``

    def __enter__(self) -> Producer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    # -- sends ------------------------------------------------------------------------------

    def _running_hub(self, what: str) -> ClientHub:
        hub = self._hub
        if self._state != "running" or hub is None:
            raise ClientStateError(f"{what} ({self.group})", self._state)
        return hub

    def _selection(
        self,
        msg: Message | None,
        queue: MessageQueue | None,
        sharding_key: str | None,
        selector: QueueSelector | None,
    ) -> Selection:
        given = sum(x is not None for x in (queue, sharding_key, selector))
        if given > 1:
            raise MessageInvalidError(
                "selection", "give at most one of queue, sharding_key, selector"
            )
        if queue is not None:
            if not isinstance(queue, MessageQueue):
                raise MessageInvalidError("queue", f"expected a MessageQueue, got {queue!r}")
            return Selection(queue=queue)
        if sharding_key is not None:
            return Selection(selector=ByShardingKey(str(sharding_key)), message=msg)
        if selector is not None:
            return Selection(selector=selector, message=msg)
        return ROUND_ROBIN

    def _prepare(
        self,
        msg: Message,
        sharding_key: str | None,
        msg_id: str | None = None,
        born_host: str | None = None,
    ) -> Outgoing:
        out = prepare(
            msg,
            max_size=self.max_message_size,
            compress_over=self.compress_over,
            compressor=self.compressor,
            uniq=msg_id,
        )
        if sharding_key is not None:
            # RocketMQ's sharding-key property, for brokers and tools that look at it.
            out = _with_property(out, P.SHARDING_KEY, str(sharding_key))
        if born_host:
            out = _with_property(out, P.BORN_HOST, born_host, "born_host")
        return out

    def send(
        self,
        msg: Message,
        *,
        queue: MessageQueue | None = None,
        sharding_key: str | None = None,
        selector: QueueSelector | None = None,
        timeout: float | None = None,
        msg_id: str | None = None,
        born_host: str | None = None,
    ) -> SendResult:
        """Send and wait until the broker stored it. Raises a ClientError subclass otherwise
        (``SendFailedError`` after retries, ``RequestTimeoutError`` when the outcome is unknown).
        ``msg_id``: the message's id (UNIQ_KEY) when the caller has one already (a RocketMQ 5
        client's, through actormq's proxy); by default a new one. ``born_host``: the host the
        message was born on when sending it for another (the proxy, for a gRPC client): kept as
        RocketMQ's ``__BORNHOST`` property."""
        self._running_hub("send")
        selection = self._selection(msg, queue, sharding_key, selector)

        def prepared() -> Outgoing:
            return self._prepare(msg, sharding_key, msg_id, born_host)

        if self._send_hooks:
            return self._send_sync_hooked(msg, prepared, selection, timeout, mq=queue)
        held = self._held(msg, selection) if msg_id is None and born_host is None else None
        if held is not None:
            return self._send_outgoing(held, selection, timeout)
        out = prepared()
        return self._send_outgoing(out, selection, timeout)

    def _send_outgoing(
        self,
        out: Outgoing | Entry,
        selection: Selection,
        timeout: float | None,
        hooked: HookedSend | None = None,
        what: str = "send",
    ) -> SendResult:
        """A sync send of a prepared message (with retries, within ``timeout``)."""
        hub = self._running_hub(what)
        timeout = self.send_timeout if timeout is None else timeout
        waiter = hub.new_waiter()

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                waiter.set_error(error)
            else:
                waiter.set(result)

        if hooked is not None:
            assert isinstance(out, Outgoing)
            self._run_hooked(hub, out, selection, timeout, done, False, hooked)
        else:
            self._dispatch(hub, out, selection, timeout, done)
        held = self._batch_bounds[0] if isinstance(out, Entry) else 0.0
        return waiter.wait(timeout + held + 1.0, what)

    def _begin(
        self,
        out: Outgoing,
        selection: Selection,
        timeout: float,
        done: Any,
        oneway: bool,
        hooked: HookedSend | None = None,
        *,
        asynchronous: bool = False,
    ) -> None:
        sender = self._sender
        if sender is None or self._state != "running":
            done(None, ClientStateError(f"send ({self.group})", self._state))
            return
        if self.namespace is not None:
            out, selection, done = _in_namespace(self.namespace, out, selection, done)
        sender.begin(
            out, selection, timeout, done, oneway=oneway, hooked=hooked, asynchronous=asynchronous
        )

    # -- routes -----------------------------------------------------------------------------

    def queues(self, topic: str, timeout: float = 5.0) -> list[MessageQueue]:
        """The topic's writable queues (fetches the route; TBW102-derived for a new topic)."""
        hub = self._running_hub("queues")
        instance = self._instance
        assert instance is not None

        ns = self.namespace
        wire = wire_name(ns, topic)

        def fetch() -> list[MessageQueue]:
            route = instance.fetch_route(wire, allow_default=True, timeout=timeout)
            return [plain_queue(ns, mq) for mq in route.publish]

        return hub.call(fetch, timeout=timeout + 5, what="queues")


def _in_namespace(
    ns: Namespace, out: Outgoing, selection: Selection, done: Any
) -> tuple[Outgoing, Selection, Any]:
    """A send of a producer with a namespace: its topic and any explicit queue wrapped, a
    selector choosing among the plain queues, the result naming the plain queue (RocketMQ's
    DefaultMQProducerImpl). A reply keeps its topic (``<cluster>_REPLY_TOPIC``)."""
    if not out.reply:
        out = msgspec.structs.replace(out, topic=ns.wrap(out.topic))
    if selection.queue is not None:
        selection = Selection(queue=ns.wrap_queue(selection.queue))
    elif selection.selector is not None:
        chosen = selection.selector

        def selector(queues: Sequence[MessageQueue], message: Message) -> MessageQueue:
            mq = chosen([ns.unwrap_queue(q) for q in queues], message)
            return ns.wrap_queue(mq) if isinstance(mq, MessageQueue) else mq

        selection = Selection(selector=selector, message=selection.message)

    def unwrapped(result: Any, error: BaseException | None) -> None:
        if isinstance(result, SendResult):
            result = msgspec.structs.replace(result, queue=ns.unwrap_queue(result.queue))
        done(result, error)

    return out, selection, unwrapped


def _with_property(out: Outgoing, name: str, value: str, field: str = "sharding_key") -> Outgoing:
    if "\x01" in value or "\x02" in value:
        raise MessageInvalidError(field, "contains a \\x01 or \\x02 separator")
    text = f"{out.properties}{name}\x01{value}\x02"
    if len(text) > MAX_PROPERTIES or len(text.encode()) > MAX_PROPERTIES:
        # (past it the request header would pass the frame's limit: the connection would close)
        raise MessageInvalidError(field, f"makes the properties longer than {MAX_PROPERTIES} bytes")
    return msgspec.structs.replace(out, properties=text)
