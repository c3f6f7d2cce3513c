"""The transaction table catches up with the commit log when its manager starts: a slave made
master holds its last copy of the master's table (copied every 10 s), a master that crashed
lacks what was under way. Half messages the log holds past the table's ``scanFrom`` are opened
(and checked back), the ones a COMMIT copy settled are forgotten: a commit sent to the new
master was answered SUCCESS with nothing done, and a half message committed since the copy was
committed twice."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import msgspec
import pytest

from actors.broker.transaction_manager import HalfMessage, TransactionManager
from runtime.directory import Directory
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.actors.test_broker_end_transaction import end, visible
from tests.wire import WireClient, send_v2_header

pytestmark = pytest.mark.timeout(60)

COMMIT, ROLLBACK = 8, 12


def half(client: WireClient, key: str) -> int:
    """Send a half message of group pg to Tx/0: its commit-log offset."""
    props = encode_properties({"TRAN_MSG": "true", "PGROUP": "pg", "UNIQ_KEY": key})
    ext = send_v2_header("Tx", group="pg", sys_flag=4, properties=props)
    sent = client.call(RequestCode.SEND_MESSAGE_V2, ext, key.encode())
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    return int(sent.ext_fields["msgId"][16:], 16)


def table_of(data: pathlib.Path) -> pathlib.Path:
    (found,) = data.rglob("transaction.json")
    return found


def test_a_table_behind_the_log_opens_the_new_half_messages_and_forgets_the_committed(
    tmp_path: pathlib.Path,
) -> None:
    data = tmp_path / "b"
    saved = tmp_path / "transaction.json"
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Given half message h1, and a copy of the table then (a slave's last copy)
        h1 = half(client, "h1")
        shutil.copy(table_of(data), saved)
        # And since: h1 committed, h2 sent, h3 sent and committed
        assert end(client, h1, COMMIT).code == ResponseCode.SUCCESS
        h2 = half(client, "h2")
        h3 = half(client, "h3")
        assert end(client, h3, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 2
        assert errors == []
    # When the broker starts on that log with the old table (a slave made master)
    shutil.copy(saved, table_of(data))
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Then h2's commit is done (it was answered SUCCESS with nothing stored)
        assert end(client, h2, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 3
        # And h1 and h3, committed already, are not committed twice
        for offset in (h1, h3):
            assert end(client, offset, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 3
        assert errors == []


def test_a_half_message_rolled_back_since_the_copy_stays_settled(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "b"
    saved = tmp_path / "transaction.json"
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Given half messages h1 and h2, and a copy of the table then (a slave's last copy)
        h1 = half(client, "h1")
        h2 = half(client, "h2")
        shutil.copy(table_of(data), saved)
        # And since: h1 rolled back
        assert end(client, h1, ROLLBACK).code == ResponseCode.SUCCESS
        assert errors == []
    # When the broker starts on that log with the old table (a slave made master)
    shutil.copy(saved, table_of(data))
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Then h1 is settled (its ROLLBACK mark is in the log): a late COMMIT does nothing
        assert end(client, h1, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 0
        # And h2, still open, commits
        assert end(client, h2, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 1
        assert errors == []


def test_the_catch_up_point_stays_below_puts_and_ends_under_way(tmp_path: pathlib.Path) -> None:
    # Given a manager on a log ending at 100
    log_end = [100]
    manager = TransactionManager.start(
        Directory(),
        "producers",
        str(tmp_path),
        lambda _offset: None,
        timeout_s=60.0,
        check_max=15,
        check_interval_s=3600.0,
        log_end=lambda: log_end[0],
    )
    table = tmp_path / "transaction.json"

    def scan_from() -> Any:
        return msgspec.json.decode(table.read_bytes())["scanFrom"]

    try:
        proxy = manager.proxy()
        proxy.prepared(HalfMessage(40, "pg", "Tx", "id40", "k40", stored_ms=0)).get(timeout=5)
        assert scan_from() == 100
        # When a half message's put begins there, and the log grows meanwhile
        token = proxy.preparing().get(timeout=5)
        log_end[0] = 300
        # Then a table written meanwhile is caught up from where that put began
        proxy.prepared(HalfMessage(120, "pg", "Tx", "id120", "k120", stored_ms=0)).get(timeout=5)
        assert scan_from() == 100
        # And once it is registered, from the log's end
        proxy.prepared(HalfMessage(200, "pg", "Tx", "id200", "k200", stored_ms=0), token).get(
            timeout=5
        )
        assert scan_from() == 300
        # And the same for an END under way (its COMMIT copy lands past where it began)
        assert proxy.claim(40).get(timeout=5)
        log_end[0] = 400
        proxy.prepared(HalfMessage(350, "pg", "Tx", "id350", "k350", stored_ms=0)).get(timeout=5)
        assert scan_from() == 300
        assert proxy.resolve(40).get(timeout=5)
        assert scan_from() == 400
        # And a put that stored nothing no longer holds it back
        token = proxy.preparing().get(timeout=5)
        log_end[0] = 500
        proxy.abandoned(token).get(timeout=5)
        proxy.resolve(120).get(timeout=5)
        assert scan_from() == 500
    finally:
        manager.stop()


def old_format_table(entries: list[tuple[int, str]]) -> bytes:
    """``transaction.json`` as versions before session 30 wrote it: the open half messages only
    (no ``scanFrom``, no ``discarded``, no ``immunity_ms``)."""
    half = [
        {
            "offset": offset,
            "group": "pg",
            "topic": "Tx",
            "msg_id": f"id{offset}",
            "transaction_id": key,
            "stored_ms": 0,
            "checks": 0,
        }
        for offset, key in entries
    ]
    return msgspec.json.encode({"half": half})


def test_a_table_of_an_older_version_is_caught_up_from_the_start_of_the_log(
    tmp_path: pathlib.Path,
) -> None:
    data = tmp_path / "b"
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Given half messages h1, h2, h3 in the log, h3 committed
        h1 = half(client, "h1")
        h2 = half(client, "h2")
        h3 = half(client, "h3")
        assert end(client, h3, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 1
        assert errors == []
    # When the broker starts with a table an older version wrote holding h1 only (its copy
    # lagged: a slave made master, or a crash, at the upgrade)
    table_of(data).write_bytes(old_format_table([(h1, "h1")]))
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Then h2, which that table lacked, is open: its commit is done
        assert end(client, h2, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 2
        # And h1 commits too, and h3, committed already, is not committed twice
        assert end(client, h1, COMMIT).code == ResponseCode.SUCCESS
        assert end(client, h3, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 3
        # And the table now has a scanFrom (the next start reads from there)
        assert "scanFrom" in msgspec.json.decode(table_of(data).read_bytes())
        assert errors == []


def test_no_table_at_all_is_caught_up_from_the_start_of_the_log(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "b"
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Given an open half message in the log
        h1 = half(client, "h1")
        assert errors == []
    # When the broker starts without a transaction table (a slave made master before its
    # first copy of the master's)
    table_of(data).unlink()
    with lone_broker(data) as client, no_errors_logged() as errors:
        # Then the half message is open: its commit is done
        assert end(client, h1, COMMIT).code == ResponseCode.SUCCESS
        assert visible(client) == 1
        assert errors == []
