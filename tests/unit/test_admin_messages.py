"""Reading queues without consuming (``actors.client.admin_messages``) over canned pulls, and how
``python -m runtime admin`` prints messages and perms."""

from __future__ import annotations

from typing import Any

import pytest

from actors.client import ClientError, MessageExt, MessageQueue, PullStatus
from actors.client.admin_messages import MessageAdmin, TopicPermChange, perm_text
from actors.client.pull import PullResult
from runtime.admin_messages import _print_messages, describe
from runtime.remoting import properties as P
from runtime.remoting.bodies import TopicConfig

MQ = MessageQueue(topic="T", broker_name="broker-a", queue_id=0)


def message(offset: int, tags: str = "paid", body: bytes = b"hi") -> MessageExt:
    props = P.encode_properties({P.TAGS: tags, P.KEYS: "k1 k2", P.UNIQ_KEY: f"ID{offset}"})
    return MessageExt("T", body, props, "broker-a", 0, offset, 100 + offset)


class CannedAdmin(MessageAdmin):
    """Answers pulls from a queue of ``stored`` messages, 3 at most per pull, noting each."""

    def __init__(self, stored: list[MessageExt], stuck_at: int | None = None) -> None:
        self.stored = stored
        self.stuck_at = stuck_at
        self.pulls: list[tuple[int, int]] = []

    def queue_address(self, mq: MessageQueue) -> str:
        return "127.0.0.1:10911"

    def pull(self, mq: MessageQueue, offset: int, max_nums: int = 32, **_: Any) -> PullResult:
        self.pulls.append((offset, max_nums))
        if offset == self.stuck_at:
            return PullResult(status=PullStatus.NO_MATCHED_MSG, next_begin_offset=offset)
        found = [m for m in self.stored if m.queue_offset >= offset][: min(max_nums, 3)]
        if not found:
            return PullResult(status=PullStatus.NO_NEW_MSG, next_begin_offset=offset)
        nxt = found[-1].queue_offset + 1
        return PullResult(status=PullStatus.FOUND, next_begin_offset=nxt, messages=found)


def test_iter_messages_reads_exactly_the_range_in_batches() -> None:
    admin = CannedAdmin([message(i) for i in range(10)])
    # When offsets 2 to 8 are read
    got = [m.queue_offset for m in admin.iter_messages(MQ, 2, 8)]
    # Then each comes once, in order, and no pull asks past the end
    assert got == [2, 3, 4, 5, 6, 7]
    assert admin.pulls == [(2, 6), (5, 3)]


def test_iter_messages_stops_at_the_queues_end_and_at_a_broker_that_does_not_move() -> None:
    assert [m.queue_offset for m in CannedAdmin([message(0)]).iter_messages(MQ, 0, 5)] == [0]
    stuck = CannedAdmin([message(i) for i in range(5)], stuck_at=3)
    with pytest.raises(ClientError, match="does not move past offset 3"):
        list(stuck.iter_messages(MQ, 0, 5))


def test_message_at_is_the_message_at_that_offset_or_none() -> None:
    admin = CannedAdmin([message(4), message(5)])
    found = admin.message_at(MQ, 4)
    assert found is not None and found.queue_offset == 4
    assert admin.message_at(MQ, 9) is None


def test_perms_read_as_rocketmq_writes_them() -> None:
    assert [perm_text(p) for p in (6, 4, 2, 7)] == ["RW-", "R--", "-W-", "RWX"]
    change = TopicPermChange("h:1", TopicConfig(topic_name="T", perm=6), 4)
    assert (change.old_perm, change.new_perm, change.changed) == (6, 4, True)


def test_a_message_prints_with_queue_offset_ids_tags_keys_and_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = message(7, body="订单已付".encode("gbk"))
    text = describe(m)
    assert "queueId=0, queueOffset=7" in text and "commitLogOffset=107" in text
    assert "KEYS=k1 k2" in text and "TAGS=paid" in text and "body=[" in text
    # When printed as mqadmin's printMsg does, in the charset asked for, then without bodies
    assert _print_messages([m], "gbk", True, header="Consume ok") == 1
    assert _print_messages([m], "utf-8", False) == 1
    first, second, third = capsys.readouterr().out.splitlines()
    assert first == "Consume ok"
    assert second.startswith("MSGID: ID7 MessageExt [") and second.endswith(" BODY: 订单已付")
    assert third.endswith(" BODY: NOT PRINT BODY")
