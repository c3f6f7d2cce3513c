"""ProxyService: RocketMQ 5's ``MessagingService`` calls, served over actormq's own client.

One object per proxy process: a ``Producer`` (group ``PROXY_PRODUCER``) for every gRPC
producer's sends, an ``Admin`` for routes, and a ``PopGroup`` (a lite pull consumer with
manual acks) per consumer group a gRPC consumer names. Each call is a method taking the
request message and the gRPC context and returning the response message (``telemetry`` is a
generator: a stream). ``actors.proxy.server`` binds them, and the calls of the modules that
take the service as their first argument: ``routes`` (QueryRoute, QueryAssignment),
``receiving`` (ReceiveMessage, acks), ``lite_calls`` (SyncLiteSubscription), ``recall``.

It also keeps what those share: the topics' message types (``TopicTypes``), the lite topics
made (``LiteTopics``) and each lite push consumer's lite subscriptions
(``LiteSubscriptions``), which clients are alive, and a sweep thread (every second: renewals,
idle groups, expired lite subscriptions; dead letters sent on ``SWEEP_SENDERS`` workers).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

from loguru import logger

from actors.client import Admin, Producer, PullConsumer
from actors.client.errors import (
    BrokerError,
    ClientError,
    MessageInvalidError,
    MessageTooLargeError,
    NoRouteError,
    RequestInvalidError,
    RequestTimeoutError,
    SendFailedError,
)
from actors.client.message import SendStatus
from actors.client.rebalance import ConsumeFrom
from actors.proxy.consumer_topics import subscribe_topics
from actors.proxy.convert import (
    ConvertError,
    encode_handle,
    outgoing,
    resource_name,
)
from actors.proxy.front import caller_address
from actors.proxy.group_owners import GroupOwners
from actors.proxy.lite import LiteError, LiteTopics, TopicTypes, TopicTypeUnknownError
from actors.proxy.lite_expiry import LiteExpiry
from actors.proxy.lite_groups import LiteGroups
from actors.proxy.lite_subscriptions import LiteSubscriptions
from actors.proxy.pop import PopGroup
from actors.proxy.proto import Code, M, MessageType
from actors.proxy.settings import LITE_CLIENTS, MAX_ATTEMPTS, ProxySettings
from actors.proxy.telemetry import Telemetry
from actors.proxy.transactions import ProxyTransactions
from actors.proxy.typed import typed
from runtime.remoting.codes import ResponseCode
from runtime.store.topic_names import split_lmq

PRODUCER_GROUP = "PROXY_PRODUCER"
SWEEP_INTERVAL_S = 1.0
SWEEP_SENDERS = 8
"""Groups whose dead-letter batches the sweep sends at once (each group's in order, one batch
at a time); the others' wait for a worker, their renewals never do."""
CLIENT_ALIVE_S = 30.0
"""A client not heard from this long is gone (RocketMQ 5 clients heartbeat every 10 s)."""
RELEASED_S = 1.0
"""A terminated client's auto-renewed deliveries come due this soon (RocketMQ's proxy:
``invisibleTimeMillisWhenClear``, 1 s); they waited their whole invisible duration (60 s for a
push consumer) before."""

_TX_CONFLICT = "a transactional message has no message group or delivery time"
_SEND_STATUS = {
    SendStatus.SEND_OK: Code.OK,
    SendStatus.FLUSH_DISK_TIMEOUT: Code.MASTER_PERSISTENCE_TIMEOUT,
    SendStatus.FLUSH_SLAVE_TIMEOUT: Code.SLAVE_PERSISTENCE_TIMEOUT,
    SendStatus.SLAVE_NOT_AVAILABLE: Code.HA_NOT_AVAILABLE,
}
_BROKER_CODES = {
    ResponseCode.TOPIC_NOT_EXIST: Code.TOPIC_NOT_FOUND,
    ResponseCode.NO_PERMISSION: Code.FORBIDDEN,
    ResponseCode.MESSAGE_ILLEGAL: Code.BAD_REQUEST,
    ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST: Code.CONSUMER_GROUP_NOT_FOUND,
}


def status(response: Any, code: int, text: str = "") -> Any:
    response.status.code = code
    response.status.message = text or Code(code).name
    return response


def error_code(exc: ClientError) -> int:
    """The gRPC ``Code`` for a failed request of actormq's client."""
    if isinstance(exc, MessageTooLargeError):
        return Code.MESSAGE_BODY_TOO_LARGE
    if isinstance(exc, MessageInvalidError | RequestInvalidError):
        return Code.BAD_REQUEST
    if isinstance(exc, NoRouteError):
        return Code.TOPIC_NOT_FOUND
    if isinstance(exc, RequestTimeoutError):
        return Code.PROXY_TIMEOUT
    if isinstance(exc, BrokerError):
        return _BROKER_CODES.get(exc.code, Code.INTERNAL_SERVER_ERROR)
    if isinstance(exc, TopicTypeUnknownError):
        return Code.PROXY_TIMEOUT
    if isinstance(exc, SendFailedError) and exc.errors:
        return error_code(exc.errors[-1])  # every attempt failed: as the last one did
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return error_code(cause)
    return Code.INTERNAL_SERVER_ERROR


def client_id(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-mq-client-id":
            return str(value)
    return ""


class ProxyService:
    def __init__(
        self,
        namesrv: str,
        advertised: tuple[str, int],
        settings: ProxySettings | None = None,
        **client_options: Any,
    ) -> None:
        self.namesrv = namesrv
        self.advertised = advertised
        self.advertise_always = False
        """True: routes name ``advertised`` even to clients that came through another address
        (``--proxy-advertise``); False: a client is told the address it used."""
        self.settings = settings or ProxySettings()
        self.client_options = client_options
        """Passed to every client object (``tls``, ``credentials``)."""
        self.producer = Producer(PRODUCER_GROUP, namesrv, **client_options)
        self.admin = Admin(namesrv, **client_options)
        self.groups: dict[str, PopGroup] = {}
        self.owners = GroupOwners()
        """Who made each group (``group_owners``: a client's share of ``MAX_GROUPS``)."""
        self.topic_types = TopicTypes(self.admin)
        self.lite_topics = LiteTopics(self.admin, self.settings.max_lite_topics)
        self.lite = LiteSubscriptions()
        expiry = LiteExpiry(self.admin, self.topic_types, self.lite_topics, self.lite.in_use)
        self.lite_groups = LiteGroups(self.lite, lambda: self.groups, expiry)
        self.telemetry_streams = Telemetry(self.settings, self._apply, _settings_error)
        self.transactions = ProxyTransactions(namesrv, self.telemetry_streams, **client_options)
        self._lock = threading.Lock()
        self.seen: dict[str, float] = {}
        """Client id -> when it last called (heartbeats every 10 s, receives): who is alive."""
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._burials = concurrent.futures.ThreadPoolExecutor(
            max_workers=SWEEP_SENDERS, thread_name_prefix="actormq-proxy-dlq"
        )
        """The sweep's dead-letter sends: ``SWEEP_SENDERS`` groups' batches at once."""

    def start(self) -> None:
        self.producer.start()
        self.transactions.start()
        self.admin.start()
        self._sweeper = threading.Thread(
            target=self._sweep_loop, name="actormq-proxy-sweep", daemon=True
        )
        self._sweeper.start()
        threading.Thread(
            target=self.lite_groups.run,
            args=(self._stopping,),
            name="actormq-proxy-lite",
            daemon=True,
        ).start()

    def _sweep_loop(self) -> None:
        while not self._stopping.wait(SWEEP_INTERVAL_S):
            self.sweep()

    def sweep(self) -> None:
        """Once every ``SWEEP_INTERVAL_S``: clients silent for ``CLIENT_ALIVE_S`` forgotten;
        each group's deliveries renewed or out of attempts (``PopGroup.due_dead_letters``,
        no network call), the latter sent to its DLQ on a worker of ``_burials`` (so a broker
        that does not answer holds only its own groups' sends: before, the groups were swept
        one after another and a hung broker delayed every group's renewals by its timeout,
        ~3 s, per group); groups idle for ``group_idle_s`` left."""
        now = time.monotonic()
        for who, at in list(self.seen.items()):
            if now - at > CLIENT_ALIVE_S:
                self.seen.pop(who, None)
        idle_before = now - self.settings.group_idle_s
        for group in list(self.groups.values()):
            try:
                batch = group.due_dead_letters()
                if batch:
                    self._bury_later(group, batch)
                elif group.last_used < idle_before and not group.burying:
                    self._leave(group)
            except Exception as exc:  # one group's trouble must not stop the others'
                logger.opt(exception=exc).error("proxy: sweep of {} failed", group.group)

    def _bury_later(self, group: PopGroup, batch: list[Any]) -> None:
        """``group``'s batch to its DLQ on a worker (in order; the group's next batch is taken
        once this one is done: ``PopGroup.burying``); here when the workers stopped."""
        try:
            self._burials.submit(_bury, group, batch)
        except RuntimeError:  # (shut down: the proxy stops)
            _bury(group, batch)

    def _leave(self, group: PopGroup) -> None:
        with self._lock:
            if self.groups.get(group.group) is not group:
                return
            del self.groups[group.group]
            self.owners.left(group.group)
        logger.info(
            "proxy: group {} idle for {:g} s: leaving it ({} deliveries unacked)",
            group.group,
            self.settings.group_idle_s,
            len(group.in_flight),
        )
        group.shutdown()

    def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=SWEEP_INTERVAL_S * 2)
        # (a batch not sent yet stays unacked: the group's next reader gets its messages again)
        self._burials.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            groups, self.groups = list(self.groups.values()), {}
        for group in groups:
            try:
                group.shutdown()
            except ClientError as exc:
                logger.warning("proxy: consumer of {} did not shut down: {}", group.group, exc)
        self.producer.shutdown()
        self.transactions.stop()
        self.admin.shutdown()

    # -- groups ------------------------------------------------------------------------------

    def group(self, name: str, lite: bool | None = None, owner: str = "") -> PopGroup:
        """The group's PopGroup (its consumer starts with its first subscription), as the
        brokers' config of the group says: FIFO with ``consumeMessageOrderly``, its
        ``retryMaxTimes`` + 1 deliveries (unless the proxy's ``max_attempts`` says for all).
        ``lite``: True for lite consumers (FIFO per lite topic, a new lite topic read from
        its first message), False for others: LiteError ILLEGAL_CONSUMER_GROUP when the group
        is the other kind; None (a lookup): either, a missing group made a regular one.
        ``owner`` (``group_owners.owner_of``) makes a new group: TOO_MANY_REQUESTS when it made
        its share already."""
        fifo, retries = (False, None)
        existing = self.groups.get(name)
        if existing is None or existing.broken:
            fifo, retries = self._config(name)  # a network call: unlocked
        attempts = self.settings.max_attempts or (
            retries + 1 if retries is not None else MAX_ATTEMPTS
        )
        with self._lock:
            found = self.groups.get(name)
            if found is None and len(self.groups) >= MAX_GROUPS:
                # (each is a consumer of the cluster: its threads, sockets and memory)
                text = f"this proxy serves {MAX_GROUPS} consumer groups: try another proxy"
                raise LiteError(Code.TOO_MANY_REQUESTS, text)
            refused = self.owners.refusal(owner) if found is None else None
            if refused is not None:
                raise LiteError(Code.TOO_MANY_REQUESTS, refused)
            if found is None:
                self.owners.made(owner, name)
            if found is None or found.broken:
                first = self.settings.consume_from_first or bool(lite)
                consumer = PullConsumer(
                    name,
                    self.namesrv,
                    manual_ack=True,
                    consume_from=ConsumeFrom.FIRST if first else ConsumeFrom.LAST,
                    **self.client_options,
                )
                found = self.groups[name] = PopGroup(
                    name,
                    consumer,
                    max_attempts=attempts,
                    fifo=fifo or bool(lite),
                    lite=bool(lite),
                    alive=self.alive,
                )
        if lite is not None and found.lite != lite:
            kind = "a lite group must use LITE mode" if found.lite else "a regular group"
            raise LiteError(Code.ILLEGAL_CONSUMER_GROUP, f"{name}: {kind}")
        return found

    def _config(self, group: str) -> tuple[bool, int | None]:
        """(``consumeMessageOrderly``, ``retryMaxTimes``) of the group on the first master
        that has its config; (False, None) when none has (yet: a broker makes it at the
        group's first heartbeat, with retryMaxTimes 16)."""
        try:
            masters = self.admin.masters()
        except ClientError:
            return False, None
        for address in masters.values():
            try:
                config = self.admin.subscription_group(group, address)
            except ClientError:
                continue
            return config.consume_message_orderly, config.retry_max_times
        return False, None

    # -- sending -----------------------------------------------------------------------------

    def send_message(self, request: Any, context: Any) -> Any:
        response = M.SendMessageResponse()
        if not request.messages:
            return status(response, Code.BAD_REQUEST, "no message")
        if len({resource_name(m.topic) for m in request.messages}) > 1:
            return status(response, Code.MESSAGE_CORRUPTED, "the messages name different topics")
        codes: list[int] = []
        caller = caller_address(context)
        for msg in request.messages:
            entry = response.entries.add()
            entry.message_id = msg.system_properties.message_id
            born = born_host_of(msg.system_properties.born_host, caller)
            code, text = self._send_one(msg, entry, born)
            status(entry, code, text)
            codes.append(code)
        first = codes[0]
        if all(code == first for code in codes):
            return status(response, first, response.entries[0].status.message)
        return status(response, Code.MULTIPLE_RESULTS)

    def _send_one(self, msg: Any, entry: Any, born_host: str) -> tuple[int, str]:
        transactional = msg.system_properties.message_type == MessageType.TRANSACTION
        try:
            message, msg_id, group = outgoing(msg, Code.BAD_REQUEST)
            message, selector = typed(msg, message, group, self.topic_types, self.lite_topics)
            lite = split_lmq(message.topic)
            if transactional:
                if group is not None or message.deliver_at_ms is not None:
                    return Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, _TX_CONFLICT
                result = self.transactions.send_half(message, msg_id or None, born_host)
            else:
                try:
                    result = self.producer.send(
                        message,
                        sharding_key=group,
                        selector=selector,
                        msg_id=msg_id or None,
                        born_host=born_host,
                    )
                except ClientError as exc:
                    if lite is None or error_code(exc) != Code.TOPIC_NOT_FOUND:
                        raise
                    # a lite topic deleted (idle past its expiration) since this proxy made it
                    self.lite_topics.forget(message.topic)
                    self.lite_topics.ensure(*lite)
                    result = self.producer.send(message, msg_id=msg_id or None, born_host=born_host)
        except (ConvertError, LiteError) as exc:
            return exc.code, str(exc)
        except ClientError as exc:
            return error_code(exc), str(exc)
        entry.message_id = result.msg_id
        entry.offset = result.queue_offset
        if transactional:
            entry.transaction_id = result.msg_id
        elif message.deliver_at_ms is not None:
            due = message.deliver_at_ms
            entry.recall_handle = encode_handle(result.queue, result.msg_id, due)
        return _SEND_STATUS.get(result.status, Code.INTERNAL_SERVER_ERROR), ""

    def end_transaction(self, request: Any, context: Any) -> Any:
        code, text = self.transactions.end(request)
        return status(M.EndTransactionResponse(), code, text)

    # -- clients -----------------------------------------------------------------------------

    def touch(self, context: Any) -> str:
        """Note the calling client alive; its id."""
        who = client_id(context)
        if who:
            self.seen[who] = time.monotonic()
        return who

    def alive(self, who: str) -> bool:
        """Heard from within ``CLIENT_ALIVE_S`` (a push consumer's auto-renewed deliveries)."""
        return time.monotonic() - self.seen.get(who, float("-inf")) < CLIENT_ALIVE_S

    def heartbeat(self, request: Any, context: Any) -> Any:
        """A consumer's heartbeat keeps its group here in use (``group_idle_s``) while the
        group has deliveries out (a client processing them for long, or auto-renewing them)
        or the client received through it within ``pop.MEMBER_S`` (one polling less often
        than the idle limit: without it the group left and came back at each poll, and with
        several proxies its queues moved back and forth, delivering messages twice): a
        heartbeat of a client that never received does not keep it (each group is a consumer
        of the cluster; a probe kept groups it never received from)."""
        who = self.touch(context)
        if request.HasField("group"):
            pop = self.groups.get(resource_name(request.group))
            if pop is not None and (pop.in_flight or pop.is_member(who)):
                pop.last_used = max(pop.last_used, time.monotonic())
        return status(M.HeartbeatResponse(), Code.OK)

    def notify_client_termination(self, request: Any, context: Any) -> Any:
        """A client that stops: it is alive no more, the messages it held (a push consumer's
        auto-renewed deliveries: those it received and had not consumed) come due within
        ``RELEASED_S``, as RocketMQ's proxy makes them visible again (its
        ``invisibleTimeMillisWhenClear``), and its lite subscriptions go."""
        who = client_id(context)
        self.seen.pop(who, None)
        if who:
            for pop in list(self.groups.values()):
                pop.let_go(who, RELEASED_S)
        for name in self.lite.drop_client(who):
            try:
                self.lite_groups.apply(name, wake=True)
            except ClientError as exc:  # matched again within a second
                logger.warning("proxy: lite topics of {} not matched yet: {}", name, exc)
        return status(M.NotifyClientTerminationResponse(), Code.OK)

    def telemetry(self, commands: Iterator[Any], context: Any) -> Iterator[Any]:
        """Answer each Settings the client writes, and carry the proxy's own commands
        (``actors.proxy.telemetry``); open until the client ends the stream."""
        return self.telemetry_streams.serve(commands, client_id(context), context)

    def _apply(self, who: str, given: Any) -> tuple[bool, int]:
        """A client's Settings (``who``: its ``group_owners.owner_of``): its group subscribed
        as it says. Whether the group is FIFO, and its deliveries before the DLQ."""
        default = (False, self.settings.max_attempts or MAX_ATTEMPTS)
        if not given.HasField("subscription"):
            return default
        group = resource_name(given.subscription.group)
        if not group:
            return default
        if given.client_type in LITE_CLIENTS:
            # its bind topic's lite topics come by SyncLiteSubscription: nothing to pull yet
            return True, self.group(group, lite=True, owner=who).max_attempts
        pop = self.group(group, lite=False, owner=who)
        # (bounded, topics that do not exist left out: ``actors.proxy.consumer_topics``)
        entries = given.subscription.subscriptions
        subscribe_topics(pop, entries, self.admin.topic_route, error_code)
        return pop.fifo, pop.max_attempts


def _bury(group: PopGroup, batch: list[Any]) -> None:
    try:
        group.bury(batch)
    except Exception as exc:  # (kept in flight by ``bury``: the next sweep tries again)
        logger.opt(exception=exc).error("proxy: dead-lettering for {} failed", group.group)


def _settings_error(exc: ClientError | LiteError) -> Any:
    code = exc.code if isinstance(exc, LiteError) else error_code(exc)
    return status(M.TelemetryCommand(), code, str(exc))


MAX_BORN_HOST = 255
MAX_GROUPS = 1000
"""Consumer groups one proxy serves at once (each a consumer of the cluster, ~0.5 MB and a few
sockets; an idle one leaves after 2 minutes): a new one past it is TOO_MANY_REQUESTS."""


def born_host_of(given: str, caller: str) -> str:
    """A message's born host: the client's own (RocketMQ's proxy's rule), else the address it
    called from; one too long or not printable text is not kept (the caller's instead)."""
    if given and len(given) <= MAX_BORN_HOST and given.isprintable():
        return given
    return caller
