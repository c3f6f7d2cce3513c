"""What a master answers a slave's HELLO (``HAConnection`` sends it and acts on it).

    answer(ha, hello, peer, fetched) -> Refuse | Fetch | Truncate | Accept | Start

In order: a HELLO naming another group (``brokerName``: a slave pointed at the wrong master,
whose log the master must neither replicate to nor, while it reconciles, fetch from), a node id
that is no slave's, a broker that is not a master that may replicate
(fenced; in controller mode without a confirmed term) or a different segment size: REFUSED.
Then the last point where the two logs agree (``consistent_point``: the epochs). A slave that
holds more of the master's current term than the master (the master lost records it had sent:
a power loss under ASYNC_FLUSH) gets FETCH while the master reconciles (``HAState.reconciling``,
once per link: ``fetched``), else, in classic mode, REFUSED diverged with an ERROR a minute
saying how to choose the log that wins (cutting it back would lose those records everywhere).
A slave past the point gets TRUNCATE there; an empty slave of a master whose log no longer
starts at 0 (retention deleted its first segments) START at the master's first segment (it
copies everything the master holds, as a slave of a log starting at 0 does; RocketMQ starts
one at the master's last segment); one whose end the master no longer holds, or whose end is
not a record boundary of the master's log, REFUSED; any other ACCEPT from its end.

Pure but for the log lines and a read of the master's log (whether the end is a record
boundary): no state of the link changes here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
from loguru import logger

from runtime.ha import protocol as P
from runtime.ha.epoch import consistent_point
from runtime.ha.state import Role
from runtime.store.raw import RawDamaged, read_raw

if TYPE_CHECKING:
    from actors.broker.ha_service import HAContext


class Refuse(msgspec.Struct, frozen=True, tag=True):
    reason: P.RefuseReason
    text: str


class Fetch(msgspec.Struct, frozen=True, tag=True):
    """Ask the slave for its log from ``offset`` (the master's end) before answering."""

    offset: int


class Truncate(msgspec.Struct, frozen=True, tag=True):
    offset: int


class Accept(msgspec.Struct, frozen=True, tag=True):
    offset: int


class Start(msgspec.Struct, frozen=True, tag=True):
    """An empty slave starts its log at ``offset``, the master's first segment (sent as an
    ACCEPT there, then the link closes: the slave restarts on a log that begins there)."""

    offset: int


Answer = Refuse | Fetch | Truncate | Accept | Start


def answer(ha: HAContext, hello: P.Hello, peer: str, fetched: bool = False) -> Answer:
    """See the module docstring (``fetched``: this link already fetched the slave's tail)."""
    state = ha.state
    log = ha.store.require_open().log
    group = ha.store.settings.broker_name
    if hello.group and hello.group != group:  # (a version 1 HELLO names none: trusted)
        return Refuse(
            P.RefuseReason.OTHER_GROUP,
            f"this is the HA port of a {group} master; the slave is of {hello.group}",
        )
    if hello.node < 0 or hello.node == state.node_id:  # (a node keeps its configured id)
        return Refuse(P.RefuseReason.NOT_READY, f"{hello.node} is no slave's node id")
    if state.role is not Role.MASTER or state.fenced:
        return Refuse(P.RefuseReason.FENCED, "this broker is not the master")
    if state.controller_mode and not (state.lease_valid() and state.epoch > 0):
        return Refuse(P.RefuseReason.NOT_READY, "no confirmed term yet")
    if hello.segment_size != log.segment_size:
        return Refuse(
            P.RefuseReason.SEGMENT_SIZE,
            f"mappedFileSizeCommitLog differs: master {log.segment_size}, "
            f"slave {hello.segment_size}",
        )
    epochs = ha.epochs.entries
    point = consistent_point(epochs, log.write_offset, hello.epochs, hello.max_offset)
    # the slave holds more of the master's current term than the master (a power loss took
    # the master's tail): not after a new epoch began at the master's end
    same_term = last_epoch(hello.epochs) == last_epoch(epochs)
    ahead = same_term and point == log.write_offset < hello.max_offset
    if ahead and state.reconciling and not fetched:
        logger.warning(
            "HA link {}: reconciling: slave {} holds this master's log from {} to {}; fetching it",
            peer,
            hello.node,
            point,
            hello.max_offset,
        )
        return Fetch(point)
    if ahead and not state.controller_mode:
        _log_slave_ahead(ha.service, hello.node, point, hello.max_offset)
        return Refuse(
            P.RefuseReason.DIVERGED,
            f"slave {hello.node} holds {hello.max_offset - point} bytes of this master's "
            f"term past its end {point}: the master lost them (a power loss?); not cutting "
            "the slave back",
        )
    if point < hello.max_offset:
        logger.warning(
            "HA link {}: slave {} diverges at {} (its log ends at {}): truncate",
            peer,
            hello.node,
            point,
            hello.max_offset,
        )
        return Truncate(point)
    if point < log.min_offset:
        if not point:  # (an empty slave: nothing above cut it back to 0)
            logger.info(
                "HA link {}: slave {} is empty and this master's log starts at {}: it starts "
                "its log there",
                peer,
                hello.node,
                log.min_offset,
            )
            return Start(log.min_offset)
        return Refuse(
            P.RefuseReason.OFFSET_GONE,
            f"the master's log starts at {log.min_offset}, after the slave's end {point} "
            "(retention deleted what the slave lacks): stop the slave and empty its store (it "
            "then starts at the master's first segment), or copy the master's store to it",
        )
    try:
        boundary = point >= log.write_offset or read_raw(log, point, 8, log.write_offset).data
    except RawDamaged as exc:  # the record there cannot be sent: an ERROR, the slave waits
        if once_a_minute("damaged", str(point)):
            logger.error("HA: slave {} at {}: {}", hello.node, peer, exc)
        return Refuse(P.RefuseReason.NOT_READY, str(exc))
    if not boundary:
        return Refuse(
            P.RefuseReason.DIVERGED,
            f"the slave's log ends at {point}, which is not a record boundary of the "
            "master's log: the logs diverged without an epoch change; rebuild the slave",
        )
    return Accept(point)


def last_epoch(epochs: Sequence[P.Epoch]) -> int:
    return epochs[-1].epoch if epochs else 0


_logged_at: dict[tuple[str, str], float] = {}


def once_a_minute(kind: str, key: str) -> bool:
    """Whether a line of ``kind`` about ``key`` may be logged now (one a minute each)."""
    now = time.monotonic()
    if now - _logged_at.get((kind, key), float("-inf")) < 60.0:
        return False
    if len(_logged_at) > 1024:
        _logged_at.clear()
    _logged_at[(kind, key)] = now
    return True


def _log_slave_ahead(service: str, node: int, end: int, slave_end: int) -> None:
    if not once_a_minute("slave-ahead", service):
        return
    logger.error(
        "{}: slave {} holds the log of this master's own term up to {}, past this master's "
        "end {}: this master lost records it had replicated (a power loss under ASYNC_FLUSH), "
        "or the two swapped roles. The slave is not cut back, so nothing more replicates: "
        "choose the log that wins (the slave's, copied over this master's store while both are "
        "stopped, if this master took no writes since; else wipe the slave's store, losing "
        "what only it holds) and restart (logged once a minute)",
        service,
        node,
        slave_end,
        end,
    )
