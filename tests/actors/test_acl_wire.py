"""The broker's plain ACL over real sockets (one in-process broker with ``aclEnable``): requests
that used to slip past the check or made it fail, and the accounts file's admin codes."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator

import pytest
from loguru import logger

from runtime.acl import plain
from runtime.acl.signature import SessionCredentials, sign
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.wire import WireClient, send_v2_header

PRODUCER = SessionCredentials("orders-producer", "producer-secret")
OPERATOR = SessionCredentials("operator-key", "operator-secret")
ACL = """
accounts:
  - accessKey: orders-producer
    secretKey: producer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [AclOrders=PUB]
  - accessKey: operator-key
    secretKey: operator-secret
    admin: true
"""


@pytest.fixture
def acl_broker(tmp_path: pathlib.Path) -> Iterator[tuple[WireClient, pathlib.Path]]:
    acl_file = tmp_path / "plain_acl.yml"
    acl_file.write_text(ACL)
    with lone_broker(tmp_path / "data", acl_enable=True, acl_file=str(acl_file)) as client:
        for topic in ("AclOrders", "AclAudit"):
            ext = {"topic": topic, "readQueueNums": 1, "writeQueueNums": 1, "perm": 6}
            created = client.call(RequestCode.UPDATE_AND_CREATE_TOPIC, ext, credentials=OPERATOR)
            assert created.code == ResponseCode.SUCCESS, created.remark
        yield client, acl_file


def stored(client: WireClient, topic: str) -> int:
    got = client.call(RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": 0}, b"", OPERATOR)
    assert got.code == ResponseCode.SUCCESS, got.remark
    return int(got.ext_fields["offset"])


LONG_NAMES = ("producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId")


@pytest.mark.parametrize(
    ("code", "long_names"),
    [
        (RequestCode.SEND_MESSAGE_V2, True),
        (RequestCode.SEND_BATCH_MESSAGE, True),
        (RequestCode.SEND_REPLY_MESSAGE, False),
    ],
    ids=["send-v2-long-names", "batch-long-names", "reply-short-names"],
)
def test_a_send_needs_pub_on_the_topic_its_handler_reads_whatever_the_header_names(
    acl_broker: tuple[WireClient, pathlib.Path], code: int, long_names: bool
) -> None:
    client, _ = acl_broker
    # Given an account that may publish to AclOrders only, and a send whose header names are
    # the other kind than its code's usual ones (V2 and batch with the long names, a reply
    # with the short ones), which the send handlers accept
    short = send_v2_header("AclAudit")
    ext = dict(zip(LONG_NAMES, (short[k] for k in "abcde"), strict=True)) if long_names else short
    body = b"" if code == RequestCode.SEND_BATCH_MESSAGE else b"x"
    # When it sends to AclAudit that way
    with no_errors_logged() as errors:
        got = client.call(code, ext, body, credentials=PRODUCER)
    # Then the ACL refuses it as it refuses the usual names, and nothing is stored
    assert (got.code, got.remark) == (
        ResponseCode.SYSTEM_ERROR,
        "AclException: No permission for topic:AclAudit",
    )
    assert stored(client, "AclAudit") == 0
    assert errors == []


def test_a_v2_send_with_long_names_to_a_permitted_topic_is_served(
    acl_broker: tuple[WireClient, pathlib.Path],
) -> None:
    client, _ = acl_broker
    # Given the account's own topic in a V2 send with the long header names
    short = send_v2_header("AclOrders")
    ext = dict(zip(LONG_NAMES, (short[k] for k in "abcde"), strict=True))
    # When it sends, Then the message is stored
    got = client.call(RequestCode.SEND_MESSAGE_V2, ext, b"y", credentials=PRODUCER)
    assert got.code == ResponseCode.SUCCESS, got.remark
    assert stored(client, "AclOrders") == 1


def test_a_signature_with_non_ascii_characters_is_a_failed_check_not_a_crash(
    acl_broker: tuple[WireClient, pathlib.Path],
) -> None:
    client, _ = acl_broker
    # Given a send signed by the account, its Signature then replaced by non-ASCII text
    request = sign(
        RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, send_v2_header("AclOrders"), b"x"),
        PRODUCER,
    )
    forged = dict(request.ext_fields, Signature="sïgnature")
    # When the broker checks it
    with no_errors_logged() as errors:
        got = client.call_command(RemotingCommand.request(request.code, forged, request.body))
    # Then it is the ACL's refusal, not a failure of the broker's own
    assert got.code == ResponseCode.SYSTEM_ERROR
    assert got.remark == "AclException: Check signature failed for accessKey=orders-producer"
    assert errors == []
    assert stored(client, "AclOrders") == 0


def test_a_refusal_is_logged_on_one_bounded_line_whatever_the_access_key(
    acl_broker: tuple[WireClient, pathlib.Path],
) -> None:
    client, _ = acl_broker
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    # Given an unknown accessKey holding a line break (a forged log line after it) and
    # 30 000 more characters (the header may hold 64 KiB)
    key = "intruder\n2026-01-01 00:00:00 | ERROR | forged line" + "k" * 30_000
    try:
        # When the broker refuses it
        got = client.call(
            RequestCode.GET_MAX_OFFSET,
            {"topic": "AclOrders", "queueId": 0},
            credentials=SessionCredentials(key, "whatever-secret"),
        )
    finally:
        logger.remove(sink)
    # Then the client hears the whole reason, and the log gets one short line
    assert got.code == ResponseCode.SYSTEM_ERROR
    assert got.remark == f"AclException: No acl config for {key}"
    (line,) = [m for m in lines if "acl refused" in m]
    assert "\n" not in line and "intruder\\n2026" in line
    assert len(line) < 1000


def test_a_file_put_in_place_with_its_old_modification_time_is_reloaded(
    acl_broker: tuple[WireClient, pathlib.Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, acl_file = acl_broker
    monkeypatch.setattr(plain, "RELOAD_CHECK_S", 0.0)  # look at the file on every request
    # Given the producer publishing to AclOrders under the file's rules
    send = RequestCode.SEND_MESSAGE_V2
    assert client.call(send, send_v2_header("AclOrders"), b"1", PRODUCER).code == 0
    # When new rules (PUB changed to SUB: the same size) are put in place the way cp -p or
    # rsync -t do, keeping the old file's modification time
    before = acl_file.stat()
    new = acl_file.with_suffix(".new")
    new.write_text(ACL.replace("AclOrders=PUB", "AclOrders=SUB"))
    os.utime(new, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(new, acl_file)
    assert acl_file.stat().st_size == before.st_size
    # Then the next request is checked against the new rules
    got = client.call(send, send_v2_header("AclOrders"), b"2", PRODUCER)
    assert (got.code, got.remark) == (
        ResponseCode.SYSTEM_ERROR,
        "AclException: No permission for topic:AclOrders",
    )


def test_a_hand_edited_data_version_is_answered_and_replaced_by_the_next_change(
    acl_broker: tuple[WireClient, pathlib.Path],
) -> None:
    client, acl_file = acl_broker
    # Given the accounts file edited by hand: its dataVersion's counter is no number (the
    # file still loads: the broker does not read dataVersion)
    acl_file.write_text(ACL + "dataVersion:\n  - counter: three\n    timestamp: 1\n")
    with no_errors_logged() as errors:
        # When the version is asked, Then the broker answers why it cannot say
        info = client.call(RequestCode.GET_BROKER_CLUSTER_ACL_INFO, {}, b"", OPERATOR)
        assert info.code == ResponseCode.SYSTEM_ERROR
        assert "dataVersion is not" in (info.remark or "")
        # When an account is changed, Then the change is made and the version starts again
        ext = {"accessKey": "orders-producer", "defaultGroupPerm": "SUB", "admin": "false"}
        changed = client.call(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, ext, b"", OPERATOR)
        assert changed.code == ResponseCode.SUCCESS, changed.remark
        info = client.call(RequestCode.GET_BROKER_CLUSTER_ACL_INFO, {}, b"", OPERATOR)
        assert info.code == ResponseCode.SUCCESS, info.remark
        assert json.loads(info.ext_fields["version"])["counter"] == 1
    assert errors == []


def test_a_change_to_a_file_whose_accounts_are_no_maps_is_refused_with_the_reason(
    acl_broker: tuple[WireClient, pathlib.Path],
) -> None:
    client, acl_file = acl_broker
    # Given the file edited by hand into one the broker no longer loads (an account that is
    # no map: the previous rules stay in force)
    acl_file.write_text(ACL + "  - just-a-name\n")
    ext = {"accessKey": "new-account-key", "secretKey": "new-account-secret"}
    # When an account is created through the broker
    with no_errors_logged() as errors:
        got = client.call(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, ext, b"", OPERATOR)
    # Then the change is refused with the reason, the file left as it was
    assert got.code == ResponseCode.UPDATE_AND_CREATE_ACL_CONFIG_FAILED
    assert got.remark == "the file's accounts is not a list of accounts"
    assert acl_file.read_text().endswith("  - just-a-name\n")
    assert errors == []
