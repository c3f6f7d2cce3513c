"""GET_ALL_CONSUMER_OFFSET (43), GET_ALL_DELAY_OFFSET (45) and GET_TIMER_CHECK_POINT (60): what
a slave copies from its master every 10 s (``SlaveSynchronize``), with GET_ALL_TOPIC_CONFIG (21,
in ``admin_handler``).

Bodies: consumer offsets as RocketMQ's JSON ``{"offsetTable": {"topic@group": {"0": 12}}}``
(ConsumerOffsetManager.encode); with ``actormqSince`` in the request (actormq's slaves), only
the entries changed since that version, and the answer's ``actormqVersion`` (ask with it next
time) and ``actormqDelta`` (``false``: the whole table, the version was not this master's).
Delay progress is the master's ``delayOffset.json`` as stored (``{"offsetTable": {"1":
345}}``, level -> offset in SCHEDULE_TOPIC_XXXX), or an empty table;
timer progress is the master's ``timerProgress.json`` (actormq's own shape,
``{"watermark": 12, "deliveredRanges": [[14, 15]]}``; RocketMQ 5 sends a binary checkpoint
under code 60),
so a promoted slave does not deliver timer messages its master already delivered.

GET_TRANSACTION_TABLE (3011, actormq's own code) answers the master's ``transaction.json`` (the
open half messages), so a promoted slave still accepts END_TRANSACTION for them and checks
them back.

GET_TAIL_LOSS_GUARD (3013, actormq's own code) answers the master's tail-loss guard record
(``runtime.store.tail_record``; an empty body: none), so a promoted slave still guards the
consumers of a term that began on a short log.

GET_METADATA_VERSION (3012, actormq's own code) answers the data versions of the topic table and
of the subscription groups (header fields ``topics`` and ``groups``, each ``timestamp:counter``)
and of the tail-loss guard record (``guard``: ``tail_record.version``),
which a slave polls every second so that a new topic or group reaches it within about a second,
not with the next 10 s round.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from actors.broker.context import BrokerContext, reply
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle
from runtime.store import tail_record
from runtime.store.configfile import read_bytes

DELAY_FILE = "delayOffset.json"
TIMER_FILE = "timerProgress.json"
GET_TIMER_CHECK_POINT = 60
TRANSACTION_FILE = "transaction.json"
GET_TRANSACTION_TABLE = 3011
GET_METADATA_VERSION = 3012
GET_TAIL_LOSS_GUARD = 3013
SINCE, VERSION, DELTA = "actormqSince", "actormqVersion", "actormqDelta"
"""GET_ALL_CONSUMER_OFFSET's fields for a slave's copy of what changed."""


class OffsetTable(msgspec.Struct, rename="camel"):
    offset_table: dict[str, dict[int, int]]


class DelayTable(msgspec.Struct, rename="camel"):
    offset_table: dict[str, int] = {}


class TimerTable(msgspec.Struct, rename="camel"):
    watermark: int = 0
    delivered: list[int] = []


class TransactionTable(msgspec.Struct):
    half: list[dict[str, Any]] = []


def all_consumer_offsets(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    since = request.ext_fields.get(SINCE)
    if since is None:
        table = ctx.ask(ctx.store.store.all_offsets())
        return reply(request, body=msgspec.json.encode(OffsetTable(table)))
    delta = ctx.ask(ctx.store.store.offsets_since(str(since)))
    return reply(
        request,
        ext_fields={VERSION: delta.version, DELTA: "false" if delta.whole else "true"},
        body=msgspec.json.encode(OffsetTable(delta.table)),
    )


def all_delay_offsets(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    return reply(request, body=_config_file(ctx, DELAY_FILE, DelayTable()))


def timer_check_point(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    return reply(request, body=_config_file(ctx, TIMER_FILE, TimerTable()))


def transaction_table(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    return reply(request, body=_config_file(ctx, TRANSACTION_FILE, TransactionTable()))


def tail_loss_guard(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    return reply(request, body=tail_record.file_bytes(ctx.store.store.settings.config_dir))


def _config_file(ctx: BrokerContext, name: str, empty: msgspec.Struct) -> bytes:
    stored = read_bytes(os.path.join(ctx.store.store.settings.config_dir, name))
    return msgspec.json.encode(empty) if stored is None else stored


def metadata_version(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    topics = ctx.ask(ctx.store.store.all_topics()).data_version
    groups = ctx.ask(ctx.store.store.all_groups()).data_version
    guard = tail_record.version(ctx.store.store.settings.config_dir)
    return reply(
        request,
        ext_fields={
            "topics": version_text(topics),
            "groups": version_text(groups),
            "guard": guard,
        },
    )


def version_text(version: Any) -> str:
    """A DataVersion as ``timestamp:counter`` (``None``: ``-``)."""
    return "-" if version is None else f"{version.timestamp}:{version.counter}"
