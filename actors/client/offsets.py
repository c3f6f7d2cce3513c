"""OffsetStore: a consumer group's consume offsets, kept by this client and persisted.

Two flavours, as RocketMQ: **remote** (clustering: the broker that owns the queue keeps the
group's offset; UPDATE_CONSUMER_OFFSET / QUERY_CONSUMER_OFFSET) and **local** (broadcasting:
every client keeps its own offsets in a JSON file, written atomically: tmp + fsync + rename).

Messages:
- ``UpdateOffset(mq, offset, force)``: the next offset to consume on ``mq`` (only ever raised
  unless ``force``, which seeks use).
- ``ReadOffset(mq, reply)``: the stored offset, -1 when the group has none; ``reply`` gets it.
- ``Persist(mqs, reply)``: write the offsets that changed (``mqs`` None: all of them) to the
  brokers or the file; ``reply`` (optional) gets how many were written. A 5 s timer tells it.
  Local, with that timer: a ``Persist(mqs)`` of start offsets only (set by a forced update of
  a queue the table did not hold, not moved since; what the rebalancer commits for each queue
  it starts) writes nothing at once: they go to the file with the next write, as RocketMQ's
  LocalFileOffsetStore writes none at start (its 5 s ``persistAll`` and shutdown do). A
  broadcasting consumer of 500 queues wrote and fsynced the whole file once per queue at start
  (500 writes, 2.5 s of its start; 0.35 s without them).
- ``Forget(mq)``: drop a queue taken away (after its offset was persisted). A commit of it
  still waiting for its write (a periodic ``Persist`` waiting for a connection or its turn) is
  then not written: each commit takes its offset from the table right before its write
  (``_commit_request``), so no commit written after the handover carries an older offset.

State owned: the offset table, which entries are dirty, and (local) the file's contents, the
start offsets not yet written and the entries not yet written. Network calls run in
greenlets; a persist of one queue never waits behind another queue's broker.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.client.errors import BrokerError, ClientError
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.remoting import Request, make_request
from runtime.actor import GeventActor
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand

COMMITS_IN_FLIGHT = 256
"""Offset commits (one request per queue) sent at once: a consumer of thousands of queues sent
them all together, past the broker's 4,096 requests in flight per connection, and the rest
were refused SYSTEM_BUSY."""


class NotHeld(ClientError):
    """An offset commit not written: its queue was forgotten (handed over) before its turn."""


class UpdateOffset(msgspec.Struct, frozen=True, tag=True):
    mq: MessageQueue
    offset: int
    force: bool = False


class ReadOffset(msgspec.Struct, frozen=True, tag=True):
    mq: MessageQueue
    reply: Any  # GeventFuture[int]


class Persist(msgspec.Struct, frozen=True, tag=True):
    mqs: tuple[MessageQueue, ...] | None = None
    reply: Any = None  # GeventFuture[int] | None


class Forget(msgspec.Struct, frozen=True, tag=True):
    mq: MessageQueue


class _Persisted(msgspec.Struct, frozen=True, tag=True):
    written: dict[MessageQueue, int]


def local_offsets_path(
    base: str | os.PathLike[str] | None, client_ip: str, instance: str, group: str
) -> pathlib.Path:
    """``<base>/<ip>@<instance>/<group>/offsets.json``; base defaults to
    ``$ACTORMQ_CLIENT_OFFSETS`` or ``~/.actormq/client-offsets``."""
    root = base or os.environ.get("ACTORMQ_CLIENT_OFFSETS") or "~/.actormq/client-offsets"
    return pathlib.Path(root).expanduser() / f"{client_ip}@{instance}" / group / "offsets.json"


class OffsetStore(GeventActor):
    """See the module docstring."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        *,
        local_path: pathlib.Path | None = None,
        interval: float = 5.0,
        timeout: float = 3.0,
    ) -> None:
        super().__init__()
        self.instance = instance
        self.group = group
        self.local_path = local_path
        self.interval = interval
        self.timeout = timeout
        self.table: dict[MessageQueue, int] = {}
        self._dirty: set[MessageQueue] = set()
        self._local: dict[MessageQueue, int] = {}
        self._fresh: set[MessageQueue] = set()
        """Local: queues whose offset is the start offset a forced update set, not moved since."""
        self._unwritten: set[MessageQueue] = set()
        """Local: entries of ``_local`` the file does not hold yet (deferred start offsets)."""

    @property
    def is_local(self) -> bool:
        return self.local_path is not None

    def on_start(self) -> None:
        if self.local_path is not None:
            self._local = read_local(self.local_path)
        if self.interval > 0:
            self.send_every(self.interval, Persist())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, UpdateOffset):
            current = self.table.get(message.mq, -1)
            if message.force or message.offset > current:
                if message.mq not in self.table and message.force and self.is_local:
                    self._fresh.add(message.mq)
                elif message.offset != current:
                    self._fresh.discard(message.mq)
                self.table[message.mq] = message.offset
                self._dirty.add(message.mq)
        elif isinstance(message, ReadOffset):
            if message.mq in self.table:
                message.reply.set(self.table[message.mq])
            elif self.local_path is not None:
                message.reply.set(self._local.get(message.mq, -1))
            else:
                gevent.spawn(self._query, message.mq, message.reply)
        elif isinstance(message, Persist):
            self._persist(message)
        elif isinstance(message, _Persisted):
            for mq, offset in message.written.items():
                if self.table.get(mq) == offset:
                    self._dirty.discard(mq)
        elif isinstance(message, Forget):
            self.table.pop(message.mq, None)
            self._dirty.discard(message.mq)
            self._fresh.discard(message.mq)
        return None

    def offsets(self) -> dict[MessageQueue, int]:
        """A copy of the table (ask, for tests and the lite consumer's ``committed``)."""
        return dict(self.table)

    # -- reading ---------------------------------------------------------------------------

    def _query(self, mq: MessageQueue, reply: Any) -> None:
        try:
            reply.set(query_remote_offset(self.instance, self.group, mq, self.timeout))
        except ClientError as exc:
            reply.set_exception((type(exc), exc, None))

    # -- persisting -------------------------------------------------------------------------

    def _persist(self, message: Persist) -> None:
        # not ``set(message.mqs) & set(self.table)``: a copy of the whole table for each
        # queue's first commit made starting thousands of queues quadratic
        wanted = self._dirty if message.mqs is None else message.mqs
        snapshot = {mq: self.table[mq] for mq in wanted if mq in self.table}
        if self.local_path is not None:
            self._persist_local(self.local_path, message, snapshot)
            return
        if not snapshot:
            if message.reply is not None:
                message.reply.set(0)
            return
        gevent.spawn(self._persist_remote, snapshot, message.reply)

    def _persist_local(
        self, path: pathlib.Path, message: Persist, snapshot: dict[MessageQueue, int]
    ) -> None:
        self._local.update(snapshot)
        if self.interval > 0 and message.mqs is not None and self._fresh.issuperset(snapshot):
            # start offsets only: with the next write (see the module docstring)
            self._unwritten.update(snapshot)
            self._dirty.difference_update(snapshot)
            if message.reply is not None:
                message.reply.set(0)
            return
        written = self._unwritten.union(snapshot)
        if written or message.mqs is not None:
            try:
                write_local(path, self._local)
            except OSError as exc:
                logger.error("client: offsets file {} not written: {}", path, exc)
                written = set()
            else:
                self._unwritten.clear()
                self._dirty.difference_update(snapshot)
        if message.reply is not None:
            message.reply.set(len(written))

    def _persist_remote(self, snapshot: dict[MessageQueue, int], reply: Any) -> None:
        calls: list[tuple[str, Request]] = []
        order = []
        sent: dict[MessageQueue, int] = {}
        for mq in snapshot:
            address = _broker_address(self.instance, mq)
            if address is None:
                continue
            calls.append((address, functools.partial(self._commit_request, mq, sent)))
            order.append(mq)
        results = self.instance.remoting.invoke_all(
            calls, self.timeout, "offset commit", in_flight=COMMITS_IN_FLIGHT
        )
        written: dict[MessageQueue, int] = {}
        for mq, result in zip(order, results, strict=True):
            if isinstance(result, BaseException):  # (NotHeld among them)
                logger.debug("client: offset of {} not committed: {}", mq, result)
            elif result.code != ResponseCode.SUCCESS:
                logger.warning(
                    "client: offset of {} refused: {} {}", mq, result.code, result.remark
                )
            else:
                written[mq] = sent[mq]
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Persisted(written))
        if reply is not None:
            reply.set(len(written))

    def _commit_request(self, mq: MessageQueue, sent: dict[MessageQueue, int]) -> RemotingCommand:
        """UPDATE_CONSUMER_OFFSET of ``mq`` with the offset the table holds now, made right
        before its write (``Remoting.invoke``): a commit that waited for its route, its
        connection or its turn (``COMMITS_IN_FLIGHT``) while the queue was handed over (its
        last offset persisted, then ``Forget``) is not written (``NotHeld``), and one that
        waited while the table moved on writes the newer offset. Either way a commit written
        after another never carries an older offset, save a seek's. (A read of the table from
        a greenlet of this actor's hub: nothing yields between it and the write.)"""
        offset = self.table.get(mq)
        if offset is None:
            raise NotHeld(f"{mq} is no longer held by this consumer")
        sent[mq] = offset
        ext = {
            "consumerGroup": self.group,
            "topic": mq.topic,
            "queueId": str(mq.queue_id),
            "commitOffset": str(offset),
        }
        return make_request(RequestCode.UPDATE_CONSUMER_OFFSET, ext)


def _broker_address(instance: ClientInstance, mq: MessageQueue) -> str | None:
    route = instance.routes.get(mq.topic)
    if route is None:
        try:
            route = instance.route(mq.topic)
        except ClientError:
            return None
    return route.master(mq.broker_name) or route.any_address(mq.broker_name)


def query_remote_offset(
    instance: ClientInstance, group: str, mq: MessageQueue, timeout: float
) -> int:
    """QUERY_CONSUMER_OFFSET: the group's offset on ``mq``, -1 when the broker has none.

    Sends ``setZeroIfNotFound=false`` (RocketMQ 5's way to ask for QUERY_NOT_FOUND instead of
    a guessed 0), so the consumer applies its consume-from policy to a new group."""
    address = _broker_address(instance, mq)
    if address is None:
        raise BrokerError(ResponseCode.SYSTEM_ERROR, f"no broker for {mq}", "?", "offset query")
    ext = {
        "consumerGroup": group,
        "topic": mq.topic,
        "queueId": str(mq.queue_id),
        "setZeroIfNotFound": "false",
    }
    cmd = make_request(RequestCode.QUERY_CONSUMER_OFFSET, ext)
    response = instance.remoting.invoke(address, cmd, timeout, "offset query")
    if response.code == ResponseCode.QUERY_NOT_FOUND:
        return -1
    if response.code != ResponseCode.SUCCESS:
        raise BrokerError(response.code, response.remark, address, "offset query")
    try:
        return int(response.ext_fields.get("offset", "-1"))
    except ValueError:
        raise BrokerError(
            ResponseCode.SYSTEM_ERROR, "offset is not a number", address, "offset query"
        ) from None


def queue_offset(
    instance: ClientInstance, code: int, mq: MessageQueue, timeout: float, timestamp: int = 0
) -> int:
    """GET_MAX_OFFSET / GET_MIN_OFFSET / SEARCH_OFFSET_BY_TIMESTAMP for ``mq``."""
    address = _broker_address(instance, mq)
    if address is None:
        raise BrokerError(ResponseCode.SYSTEM_ERROR, f"no broker for {mq}", "?", "offset lookup")
    ext: dict[str, str] = {"topic": mq.topic, "queueId": str(mq.queue_id)}
    if code == RequestCode.SEARCH_OFFSET_BY_TIMESTAMP:
        ext["timestamp"] = str(timestamp)
    cmd = make_request(code, ext)
    response = instance.remoting.invoke_ok(address, cmd, timeout, "offset lookup")
    try:
        return int(response.ext_fields.get("offset", "0"))
    except ValueError:
        raise BrokerError(
            ResponseCode.SYSTEM_ERROR, "offset is not a number", address, "offset lookup"
        ) from None


# -- the local file ---------------------------------------------------------------------------


class _Entry(msgspec.Struct):
    topic: str
    brokerName: str
    queueId: int
    offset: int


class _File(msgspec.Struct):
    offsetTable: list[_Entry] = []


def read_local(path: pathlib.Path) -> dict[MessageQueue, int]:
    """The offsets in ``path`` ({} when the file does not exist; a corrupt file is logged and
    treated as empty, as the consumer would otherwise never start)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        parsed = msgspec.json.decode(data, type=_File)
    except msgspec.DecodeError as exc:
        logger.error("client: offsets file {} is unreadable ({}); starting empty", path, exc)
        return {}
    return {
        MessageQueue(topic=e.topic, broker_name=e.brokerName, queue_id=e.queueId): e.offset
        for e in parsed.offsetTable
    }


def write_local(path: pathlib.Path, table: dict[MessageQueue, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [
        {"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
        for mq, off in sorted(table.items())
    ]
    data = json.dumps({"offsetTable": entries}, indent=1).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
