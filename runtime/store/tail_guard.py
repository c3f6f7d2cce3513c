"""TailLossGuard: after a master's log may have lost its tail, consumers still running must not
pass the queue offsets that new messages take again.

    guard.raise_at(ends)                      a master's term starts on a log that may be short
    guard.lower()                             the node is a slave: nothing to guard
    guard.forget(topic=..., group=...)        a topic deleted, a group's offsets removed
    guard.bound(group, topic, queue_id, client)  -> the highest offset it may pull from, or None
    guard.vouch(group, topic, queue_id, offset, client)   an offset this master handed it
    guard.commit_value(group, topic, queue_id, offset, client)  -> the offset to store

A power loss under ASYNC_FLUSH leaves a master whose queues end below offsets its consumers had
already read (``F``, the queue's end when the term starts). New messages take those offsets
again. RocketMQ answers a pull past a queue's end with PULL_OFFSET_MOVED back to the end, but
only while the end is still below the consumer's position: once new messages reach it, a
consumer that kept its position skips every one of them between ``F`` and where it was, and
commits that position, so a consumer that starts later skips them too (the store lowers
committed offsets past the ends when it opens: ``clamp_to_ends``; a consumer left running
commits its old position again).

Raised when such a term starts (``ConsumerOffsets``: a master whose machine lost power since it
last ran), the guard knows, per group, client connection and queue, the highest offset this
master has vouched for: ``F`` or any ``nextBeginOffset`` it answered that connection from its
log since, or a committed offset it answered it (a client given the queue resumes there); and
for every connection of the group, the offsets an operator reset or cloned the group to and the
offsets the group committed within its bound (what it consumed in this term). A
pull from further on is a position from the old log: it is answered PULL_OFFSET_MOVED to that
offset (the consumer reads the new messages from ``F``: duplicates of what it had read, never
a skip), and a commit further on is stored as that offset. Every group is guarded, also one
without a committed offset (its first commits may have been lost with the tail), except on a
topic deleted since or for a group whose offsets were removed since (``forget``: made again,
they hold no position of the old log).

Costs, all duplicates and only until the process restarts: a group that starts from the last
offset or a timestamp past ``F`` (a queue whose minimum offset is above 0; else a new group
starts at 0), a group that read from a slave (``slaveReadEnable``) past what this master
answered it, a lite consumer's seek past it, or an UPDATE_CONSUMER_OFFSET past it (use
resetOffsetByTime, which vouches), or a client that reconnected (a new connection), is moved
back to the group's last commit within its bound, or to ``F`` (session 30: before, to ``F``
whatever the group had committed since, re-reading the whole term). A master restarted within
a day of the raise raises it again from its record (``runtime.store.tail_record``; session 31:
before, a restart guarded nothing). Not covered: a consumer that meets another replica's
later term first (a failover soon after the power loss) gets RocketMQ's answer.

State: the queue ends when raised and when, the vouched offsets, the forgotten topics and
groups (all but the vouched offsets kept on disk by ``runtime.store.tail_record``). Plain data
shared by the pull and offset handlers and the ConsumerOffsets actor, all on one hub.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from loguru import logger

QueueKey = tuple[str, int]


class TailLossGuard:
    """See the module docstring."""

    def __init__(self) -> None:
        self.raised = False
        self.raised_ms = 0
        self.ends: dict[QueueKey, int] = {}
        self.free_topics: set[str] = set()
        self.free_groups: set[str] = set()
        self._vouched: dict[tuple[str, str, int, str], int] = {}
        self._told: set[tuple[str, str, str, int]] = set()

    def raise_at(self, ends: Mapping[QueueKey, int], raised_ms: int | None = None) -> None:
        """Guard every group from the queue ``ends`` (the next offset of each (topic, queueId);
        a queue not in it ends at 0), raised at ``raised_ms`` (default: now)."""
        self.lower()
        self.ends = dict(ends)
        self.raised = True
        self.raised_ms = int(time.time() * 1000) if raised_ms is None else raised_ms

    def lower(self) -> None:
        self.raised = False
        self.ends, self._vouched, self._told = {}, {}, set()
        self.free_topics, self.free_groups = set(), set()

    def forget(self, *, topic: str | None = None, group: str | None = None) -> None:
        """The offsets of ``topic`` (deleted) or of ``group`` (its offsets removed) are gone:
        a group reading the topic or the group made again holds no position of the old log,
        so it is no longer guarded there (a CONSUME_FROM_LAST_OFFSET is not moved back)."""
        if not self.raised:
            return
        if topic is not None:
            self.free_topics.add(topic)
        if group is not None:
            self.free_groups.add(group)
        self._vouched = {k: v for k, v in self._vouched.items() if k[1] != topic and k[0] != group}

    def bound(self, group: str, topic: str, queue_id: int, client: str = "") -> int | None:
        """The highest offset ``group``'s ``client`` (its connection; "": any) may pull
        ``topic``/``queue_id`` from; None: any."""
        if not self.raised or topic in self.free_topics or group in self.free_groups:
            return None
        vouched = self._vouched.get
        return max(
            self.ends.get((topic, queue_id), 0),
            vouched((group, topic, queue_id, ""), 0),
            vouched((group, topic, queue_id, client), 0) if client else 0,
        )

    def vouch(self, group: str, topic: str, queue_id: int, offset: int, client: str = "") -> None:
        """This master handed ``group``'s ``client`` the position ``offset`` (a pull's
        nextBeginOffset, a committed offset it asked for; "": every client, a reset): it may
        pull and commit up to it. Per client: another instance of the group holding the queue
        a moment ago (a rebalance) does not let this one's old position through."""
        if not self.raised:
            return
        key = (group, topic, queue_id, client)
        if offset > self._vouched.get(key, 0):
            self._vouched[key] = offset

    def _first(self, what: str, group: str, topic: str, queue_id: int) -> bool:
        """Whether this is the first ``what`` of the queue and group to log."""
        key = (what, group, topic, queue_id)
        if key in self._told:
            return False
        self._told.add(key)
        return True

    def moved(self, group: str, topic: str, queue_id: int, offset: int, bound: int) -> None:
        """Log, once per queue and group, that a pull from ``offset`` was moved to ``bound``."""
        if self._first("pull", group, topic, queue_id):
            logger.warning(
                "{} pulled {}/{} from {}, a position this master has not handed it since its "
                "term began on a log that may have lost a tail (new messages take those "
                "offsets): moved to {}",
                group,
                topic,
                queue_id,
                offset,
                bound,
            )

    def commit_value(
        self, group: str, topic: str, queue_id: int, offset: int, client: str = ""
    ) -> int:
        """What to store for ``group``'s (``client``'s) commit of ``offset``: at most its
        bound."""
        bound = self.bound(group, topic, queue_id, client)
        if bound is None:
            return offset
        if offset <= bound:
            # the group consumed up to it since the term began: a position for every instance
            # (one that reconnects or is given the queue resumes there, not at ``F``)
            self.vouch(group, topic, queue_id, offset)
            return offset
        if self._first("commit", group, topic, queue_id):
            logger.warning(
                "{} committed {}/{} at {}, past what this master vouched for since its term "
                "began: stored {}",
                group,
                topic,
                queue_id,
                offset,
                bound,
            )
        return bound
