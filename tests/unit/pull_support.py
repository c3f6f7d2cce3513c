"""A fake store and a pull request for unit tests of the pull handler."""

from __future__ import annotations

from typing import Any

from actors.broker import pull_handler
from actors.broker.store_port import GetOutcome
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.store.tail_guard import TailLossGuard


class Session:
    """The SessionHandle parts a pull uses: its connection's address and whether it is open."""

    def __init__(self) -> None:
        self.remote_address = "c:1"
        self.alive = True


class FakeStore:
    """The StorePort calls a pull makes: T/0 holds offsets 0 .. ``end`` - 1 (1-byte records;
    twelve unless a test moves ``end``)."""

    running = True

    def __init__(self, guard: TailLossGuard) -> None:
        self.tail_guard = guard
        self.end = 12
        self.committed: list[tuple[str, str, int, int]] = []

    def subscription_group(self, group: str) -> None:
        return None

    def topic(self, topic: str) -> TopicConfig:
        return TopicConfig(topic_name=topic, read_queue_nums=1, write_queue_nums=1)

    def get_messages(self, group: str, topic: str, queue_id: int, offset: int, n: int, *_: Any):
        if offset > self.end:
            return GetOutcome("OFFSET_OVERFLOW_BADLY", self.end, 0, self.end, ())
        end = min(offset + 4, self.end)
        status = "FOUND" if offset < self.end else "OFFSET_OVERFLOW_ONE"
        return GetOutcome(status, end, 0, self.end, tuple(b"x" for _ in range(offset, end)))

    def min_offset(self, topic: str, queue_id: int) -> int:
        return 0

    def max_offset(self, topic: str, queue_id: int) -> int:
        return self.end

    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        self.committed.append((group, topic, queue_id, offset))


def pull_at(
    ctx: Any, offset: int, suspend_ms: int = 0, commit: int = 0, session: Any = None
) -> RemotingCommand:
    """PULL_MESSAGE of group g, T/0 from ``offset`` (suspended for ``suspend_ms`` if > 0;
    committing ``commit`` if > 0) on ``session`` (an open ``Session`` when None)."""
    ext = {
        "consumerGroup": "g",
        "topic": "T",
        "queueId": 0,
        "queueOffset": offset,
        "maxMsgNums": 4,
        # (the subscription comes with the pull; 1: the commit offset flag)
        "sysFlag": 4 | (2 if suspend_ms else 0) | (1 if commit else 0),
        "commitOffset": commit,
        "suspendTimeoutMillis": suspend_ms,
        "subscription": "*",
        "subVersion": 0,
        "expressionType": "TAG",
    }
    request = RemotingCommand.request(RequestCode.PULL_MESSAGE, ext)
    return pull_handler.pull(ctx, session or Session(), request)
