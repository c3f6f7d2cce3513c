"""GET_ALL_CONSUMER_OFFSET (43) and GET_ALL_DELAY_OFFSET (45): what a slave copies from its
master every 10 s (``SlaveSynchronize``), with GET_ALL_TOPIC_CONFIG (21, in ``admin_handler``).

Bodies are RocketMQ's JSON: consumer offsets ``{"offsetTable": {"topic@group": {"0": 12}}}``
(ConsumerOffsetManager.encode); delay progress is the master's ``delayOffset.json`` as stored
(``{"offsetTable": {"1": 345}}``, level -> offset in SCHEDULE_TOPIC_XXXX), or an empty table.
"""

from __future__ import annotations

import os

import msgspec

from actors.broker.context import BrokerContext, reply
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle

DELAY_FILE = "delayOffset.json"


class OffsetTable(msgspec.Struct, rename="camel"):
    offset_table: dict[str, dict[int, int]]


class DelayTable(msgspec.Struct, rename="camel"):
    offset_table: dict[str, int] = {}


def all_consumer_offsets(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    table = ctx.ask(ctx.store.store.all_offsets())
    return reply(request, body=msgspec.json.encode(OffsetTable(table)))


def all_delay_offsets(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    path = os.path.join(ctx.store.store.settings.config_dir, DELAY_FILE)
    try:
        with open(path, "rb") as fh:
            body = fh.read()
    except FileNotFoundError:
        body = msgspec.json.encode(DelayTable())
    return reply(request, body=body)
