"""A connection that does not read its answers is not given records by offset or key either:
VIEW_MESSAGE_BY_ID (33) and QUERY_MESSAGE (12, also by unique key) answer SYSTEM_BUSY without
them while more than ``MAX_BACKLOG`` bytes of its answers wait to be written, as a pull that
finds messages does (``pull_gates.backlogged``; ``[PULL_BACKLOG]`` in ``pull_handler``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors.broker import admin_handler
from actors.broker.pull_gates import MAX_BACKLOG
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand

pytestmark = pytest.mark.timeout(30)

RECORD = b"r" * 4096


class Store:
    """Every offset and key names RECORD; counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def message_at(self, physical_offset: int) -> bytes | None:
        self.reads += 1
        return RECORD

    def query_by_key(self, topic: str, key: str, max_num: int, begin: int, end: int) -> list:
        self.reads += 1
        return [RECORD] * max_num


class Session:
    """The SessionHandle part these reads look at: its unwritten answers' bytes."""

    def __init__(self, backlog: int) -> None:
        self.remote_address = "c:1"
        self.backlog = backlog


def view(ctx: Any, session: Session) -> RemotingCommand:
    request = RemotingCommand.request(RequestCode.VIEW_MESSAGE_BY_ID, {"offset": "1024"})
    return admin_handler.view_message(ctx, session, request)  # type: ignore[arg-type]


def query(ctx: Any, session: Session, **more: str) -> RemotingCommand:
    fields = {
        "topic": "Orders",
        "key": "order-42",
        "maxNum": "64",
        "beginTimestamp": "0",
        "endTimestamp": str(2**62),
        **more,
    }
    request = RemotingCommand.request(RequestCode.QUERY_MESSAGE, fields)
    return admin_handler.query_message(ctx, session, request)  # type: ignore[arg-type]


def by_unique_key(ctx: Any, session: Session) -> RemotingCommand:
    return query(ctx, session, _UNIQUE_KEY_QUERY="true")


@pytest.mark.parametrize("read", [view, query, by_unique_key])
def test_a_connection_that_does_not_read_its_answers_gets_no_records(read: Any) -> None:
    # Given a connection with more answers waiting to be written than its backlog bound
    ctx = SimpleNamespace(ha=None, store=Store(), acl=None)
    session = Session(MAX_BACKLOG + 1)
    # When it asks for records by offset or key
    answer = read(ctx, session)
    # Then it is told to ask again later, without them (they would wait in memory too), and
    # the log is not read for them
    assert answer.code == ResponseCode.SYSTEM_BUSY, answer.remark
    assert answer.body == b""
    assert "[READ_BACKLOG]" in (answer.remark or "")
    assert ctx.store.reads == 0
    # and once its answers drain, the same request gets them
    session.backlog = MAX_BACKLOG
    answer = read(ctx, session)
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    assert RECORD in answer.body
