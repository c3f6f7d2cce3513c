"""SlaveSynchronize: a slave copies its master's metadata (RocketMQ's SlaveSynchronize).

Messages accepted:
- ``SyncTick`` (timer: just after start, then every ``interval_s``, 10 s): start a round unless
  one runs or no master address is known (``HAState.master_addr``: from the name server's
  registration reply, or the controller). Until a first round has succeeded, a tick that finds
  no master, or a round that fails, tries again after ``FIRST_RETRY_S`` (0.25 s) instead of
  waiting the interval: a slave that learns its master a few seconds after starting (controller
  mode) holds the topics soon after. The first success sets ``HAState.metadata_synced``: in
  controller mode the HAClient links for replication only then, so a slave never becomes
  electable (in sync) without its master's topics and consumer offsets.
- ``SyncNow(reply)``: start a round now; ``reply`` gets True/False when it ends (tests, tools).
- ``SyncDone(ok, reason, versions)``: internal, from the round's greenlet.
- ``VersionTick`` (timer, every ``POLL_S``, 1 s, once a round has succeeded): unless a round
  runs, ask the master for the data versions of its topics and subscription groups (and of its
  tail-loss guard record, so a guard raised there reaches the slave within about a second)
  (GET_METADATA_VERSION, 3012, actormq's; ``slave_sync_handler``) and copy its consumer offsets
  (GET_ALL_CONSUMER_OFFSET, 43, only the offsets that differ are committed; an actormq master
  sends only those changed since the previous copy, ``actormqSince``); ``Polled(versions)``
  (internal) starts a round at once when the versions differ from those read at the start of
  the last successful round, so a topic or group created on the master reaches the slave within
  about a second (a failover soon after loses neither). A master that does not serve 3012 is
  not asked for versions again; its offsets are still copied every second. The offsets are
  copied every second, not with the 10 s round, because under repeated failovers a slave is
  often promoted a few seconds after it started: with only its first round (taken just after
  its master was itself promoted, before the consumers' commits reached it) a promoted slave
  handed on offsets that stayed where they were at the first failover, and consumers re-read
  all the history since (docs/chaos.md, finding 11).

A round (a greenlet of its own; edge code, every call has a timeout) asks the master over remoting
for GET_ALL_TOPIC_CONFIG (21), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), GET_ALL_CONSUMER_OFFSET
(43), GET_ALL_DELAY_OFFSET (45), GET_TIMER_CHECK_POINT (60), GET_TRANSACTION_TABLE (3011,
actormq's) and GET_TAIL_LOSS_GUARD (3013, actormq's), then: creates or updates every topic and
subscription group the master has, and deletes the subscription groups only the slave has (topics
only the slave has are left alone: a deleted topic's config and offsets go when the slave's
Dispatcher applies the replicated deletion marker, where it stands in the log); commits every
consumer offset that differs (so a failover does not replay a group's history, or replays at most
about a second of it: the offsets poll) and forgets the offsets the master no longer has of topics
it still has (a group deleted with its offsets, ``deleteSubGroup -r true``: a promoted slave
brought them back; a deleted topic's go with its marker, as above); rewrites
``config/delayOffset.json``, ``config/timerProgress.json``, ``config/transaction.json`` and
``config/tailLossGuard.json`` (removed when the master has none) when they differ (the Scheduler,
TimerScheduler, TransactionManager and tail-loss guard of a promoted slave start from them; a slave
runs none of the four).

State owned: the remoting session to the master, whether a round runs, the last round's
outcome. Durability point: the store's own (topics.json, subscriptionGroup.json,
consumerOffset.json, the delay file).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from typing import Any

import gevent
import msgspec
import pykka
from loguru import logger

from actors.broker.slave_sync_handler import (
    DELAY_FILE,
    DELTA,
    GET_METADATA_VERSION,
    GET_TAIL_LOSS_GUARD,
    GET_TIMER_CHECK_POINT,
    GET_TRANSACTION_TABLE,
    SINCE,
    TIMER_FILE,
    TRANSACTION_FILE,
    VERSION,
    DelayTable,
    OffsetTable,
    TimerTable,
    TransactionTable,
)
from actors.broker.store_adapter import to_store
from runtime import tls
from runtime.acl.signature import SessionCredentials, signer_for
from runtime.actor import GeventActor, offload
from runtime.errors import ActorFailure, ProtocolError
from runtime.ha.state import HAState
from runtime.remoting.bodies import (
    SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
    decode_body,
)
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle, connect
from runtime.store import tail_record
from runtime.store.configfile import replace_checked

CALL_TIMEOUT_S = 5.0
POLL_S = 1.0
"""How often a slave asks whether its master's topics or groups changed (a cheap request)."""
FIRST_RETRY_S = 0.25
FIRST_ROUND_S = 0.05  # after start


class NotServed(ConnectionError):
    """The master answered REQUEST_CODE_NOT_SUPPORTED (an older actormq, or RocketMQ's)."""


class SyncTick(msgspec.Struct, frozen=True, tag=True):
    pass


class SyncNow(msgspec.Struct, frozen=True, tag=True):
    reply: Any = None


class SyncDone(msgspec.Struct, frozen=True, tag=True):
    ok: bool
    reason: str | None = None
    versions: tuple[str, str, str] | None = None  # the master's, read when the round began


class VersionTick(msgspec.Struct, frozen=True, tag=True):
    pass


class Polled(msgspec.Struct, frozen=True, tag=True):
    versions: tuple[str, str, str] | None  # None: the poll failed, or the master serves no 3012


class SlaveSynchronize(GeventActor):
    """See the module docstring. ``store`` is the slave's BrokerStore facade."""

    def __init__(
        self,
        store: Any,
        state: HAState,
        *,
        label: str,
        interval_s: float = 10.0,
        credentials: SessionCredentials | None = None,
    ):
        super().__init__()
        self.credentials = credentials
        """The broker's inner account, which signs the requests (the master's ACL takes it)."""
        self.store = store
        self.state = state
        self.label = label
        self.interval_s = interval_s
        self._session: SessionHandle | None = None
        self._session_addr: str | None = None
        self._running = False
        self._replies: list[Any] = []
        self.last_ok: bool | None = None
        self._synced = False  # a round has succeeded
        self._versions: tuple[str, str, str] | None = None  # the master's, as of the last round
        self._poll = True  # the master serves GET_METADATA_VERSION (until it says it does not)
        self._offsets_version: str | None = None
        """The master's consumer-offset table version at the last copy (the poll asks for what
        changed since; None: ask for all)."""

    def on_start(self) -> None:
        self.send_after(min(FIRST_ROUND_S, self.interval_s), SyncTick())  # a first round now
        self.send_every(self.interval_s, SyncTick())
        if self.interval_s > POLL_S:
            self.send_every(POLL_S, VersionTick())

    def on_stop(self) -> None:
        if self._session is not None:
            self._session.close()
        for reply in self._replies:
            with contextlib.suppress(Exception):
                reply.set(False)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SyncTick | SyncNow):
            if isinstance(message, SyncNow) and message.reply is not None:
                self._replies.append(message.reply)
            address = self.state.master_addr
            if self._running:
                return None
            if not address:
                self._finish(False)
                self._retry_first()
                return None
            self._running = True
            gevent.spawn(self._round, address)
        elif isinstance(message, VersionTick):
            address = self.state.master_addr
            if self._synced and not self._running and address:
                self._running = True
                gevent.spawn(self._poll_versions, address)
        elif isinstance(message, Polled):
            self._running = False
            changed = message.versions is not None and message.versions != self._versions
            if changed or self._replies:  # a SyncNow that came during the poll waits for a round
                self.actor_ref.tell(SyncTick())
        elif isinstance(message, SyncDone):
            self._running = False
            if not message.ok:
                logger.warning("{}: sync from the master failed: {}", self.label, message.reason)
                self._retry_first()
            else:
                self._synced = True
                self._versions = message.versions
                if not self.state.metadata_synced:
                    self.state.metadata_synced = True
                    self.state.notify()
            self._finish(message.ok)
        else:
            return super().on_receive(message)
        return None

    def _retry_first(self) -> None:
        """Before the first successful round, try again soon rather than in ``interval_s``."""
        if not self._synced and self.interval_s > FIRST_RETRY_S:
            self.send_after(FIRST_RETRY_S, SyncTick())

    def _finish(self, ok: bool) -> None:
        self.last_ok = ok
        replies, self._replies = self._replies, []
        for reply in replies:
            with contextlib.suppress(Exception):
                reply.set(ok)

    # -- one round (a greenlet) ------------------------------------------------------------------

    def _round(self, address: str) -> None:
        ok, reason, versions = True, None, None
        try:
            versions = self._master_versions(address)
            self._sync(address)
        except (OSError, ConnectionError, pykka.Timeout, ProtocolError, ActorFailure) as exc:
            ok, reason = False, f"{exc.__class__.__name__}: {exc}"
            self._drop_session()
        except Exception as exc:  # a round must always end with SyncDone
            ok, reason = False, repr(exc)
            logger.exception("{}: sync round failed", self.label)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(SyncDone(ok, reason, versions))

    def _poll_versions(self, address: str) -> None:
        message = Polled(None)
        try:
            versions = self._master_versions(address)
            self._sync_offsets(address, changed_only=True)
            message = Polled(versions)
        except (OSError, ConnectionError, pykka.Timeout, ProtocolError, ActorFailure) as exc:
            logger.debug("{}: metadata version poll failed: {}", self.label, exc)
            self._drop_session()
        except Exception:  # a poll must always end with Polled
            logger.exception("{}: metadata version poll failed", self.label)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    def _master_versions(self, address: str) -> tuple[str, str, str] | None:
        """The data versions of the master's topics and groups, and its tail-loss guard
        record's ("": an older master that does not say); None when it does not say
        (it does not serve GET_METADATA_VERSION: ``_poll`` goes False)."""
        if not self._poll:
            return None
        response = self._session_to(address).call(
            RemotingCommand.request(GET_METADATA_VERSION), timeout=CALL_TIMEOUT_S
        )
        if response.code != ResponseCode.SUCCESS:
            self._poll = False
            return None
        ext = response.ext_fields
        return str(ext.get("topics", "")), str(ext.get("groups", "")), str(ext.get("guard", ""))

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _session_to(self, address: str) -> SessionHandle:
        session = self._session
        if session is None or not session.alive or self._session_addr != address:
            if session is not None:
                session.close()
            session = self._session = connect(
                address,
                role=f"{self.label}->master",
                tls=tls.outbound(),
                signer=signer_for(self.credentials),
            )
            self._session_addr = address
        return session

    def _call(self, address: str, code: int) -> bytes:
        return self._call_with(address, code, None).body

    def _call_with(self, address: str, code: int, ext: dict[str, Any] | None) -> RemotingCommand:
        response = self._session_to(address).call(
            RemotingCommand.request(code, ext), timeout=CALL_TIMEOUT_S
        )
        if response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED:
            raise NotServed(f"request {code} is not served by {address}")
        if response.code != ResponseCode.SUCCESS:
            raise ConnectionError(f"request {code} answered {response.code} {response.remark}")
        return response

    def _sync(self, address: str) -> None:
        store = self.store
        topics = decode_body(
            TopicConfigSerializeWrapper, self._call(address, RequestCode.GET_ALL_TOPIC_CONFIG)
        )
        mine = store.all_topics().get(timeout=CALL_TIMEOUT_S).topics
        for name, config in topics.topic_config_table.items():
            wanted = to_store(config)
            if mine.get(name) != wanted:
                store.update_topic(wanted).get(timeout=CALL_TIMEOUT_S)
        groups = decode_body(
            SubscriptionGroupWrapper,
            self._call(address, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
        )
        have_groups = store.all_groups().get(timeout=CALL_TIMEOUT_S).subscription_group_table
        for name, group in groups.subscription_group_table.items():
            if have_groups.get(name) != group:
                store.update_group(group).get(timeout=CALL_TIMEOUT_S)
        for name in have_groups.keys() - groups.subscription_group_table.keys():
            store.delete_group(name).get(timeout=CALL_TIMEOUT_S)
        self._sync_offsets(address, master_topics=topics.topic_config_table.keys())
        self._copy_file(address, RequestCode.GET_ALL_DELAY_OFFSET, DELAY_FILE, DelayTable)
        self._copy_file(address, GET_TIMER_CHECK_POINT, TIMER_FILE, TimerTable)
        self._copy_file(address, GET_TRANSACTION_TABLE, TRANSACTION_FILE, TransactionTable)
        self._copy_guard(address)

    def _copy_guard(self, address: str) -> None:
        """The master's tail-loss guard record over ours (``runtime.store.tail_record``); a
        master that does not serve GET_TAIL_LOSS_GUARD (an older one) keeps ours as it is."""
        try:
            body = self._call(address, GET_TAIL_LOSS_GUARD)
        except NotServed:
            return
        offload(tail_record.copy, self.store.settings.config_dir, body or b"")

    def _sync_offsets(
        self,
        address: str,
        *,
        changed_only: bool = False,
        master_topics: Collection[str] | None = None,
    ) -> None:
        """Commit the master's consumer offsets that differ from ours: all of them (a round),
        or, ``changed_only`` (the poll), those changed since the last copy, when the master
        can tell (an actormq master of the same incarnation; else it answers all). A round
        (``master_topics``: the topics the master has, as it answered just before) also
        forgets the offsets the master no longer has, of topics it still has: those of a
        topic it deleted go when this slave's Dispatcher applies the replicated deletion
        marker, with the topic's data (a slave promoted before that keeps serving them)."""
        store = self.store
        code = RequestCode.GET_ALL_CONSUMER_OFFSET
        if changed_only:
            response = self._call_with(address, code, {SINCE: self._offsets_version or ""})
            body, ext = response.body, response.ext_fields
        else:
            body, ext = self._call(address, code), {}
        try:
            offsets = msgspec.json.decode(body, type=OffsetTable).offset_table
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            raise ProtocolError(f"consumer offsets body: {exc}") from None
        have = {} if ext.get(DELTA) == "true" else store.all_offsets().get(timeout=CALL_TIMEOUT_S)
        for key, queues in offsets.items():
            topic, _, group = key.partition("@")
            current = have.get(key, {})
            for queue_id, offset in queues.items():
                if current.get(queue_id) != offset:
                    store.commit_offset(group, topic, queue_id, offset)
        gone: tuple[str, ...] = ()
        if master_topics is not None:  # (a whole table: what the master forgot)
            gone = tuple(
                k for k in have.keys() - offsets.keys() if k.partition("@")[0] in master_topics
            )
        if gone:
            store.remove_offsets(gone).get(timeout=CALL_TIMEOUT_S)
        if changed_only:
            self._offsets_version = str(ext[VERSION]) if ext.get(VERSION) else None

    def _copy_file(self, address: str, code: int, name: str, shape: type) -> None:
        """The master's config file ``name`` (checked against ``shape``) over ours if it
        differs."""
        body = self._call(address, code)
        offload(replace_checked, os.path.join(self.store.settings.config_dir, name), body, shape)
