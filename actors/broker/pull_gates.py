"""Pull gates: what a pull must pass before a broker reads its log out to it.

    await_term(ctx, request, h, session) -> an answer, or None  (controller mode: settled)
    past_bound(ctx, request, h, client) -> an answer, or None   (the tail-loss guard)
    moves_consumers(ctx) -> bool                           (may say an offset is out of range)
    hold_s(ctx, h) -> float                                (how long a suspended pull is held)
    unsettled(ctx, request, code) -> an answer, or None    (any other read of the log's records)
    backlogged(request, session) -> an answer, or None     (its client does not read answers)

A controller-mode node that has held no lease, and whose log no master accepted, since it
started (``HAState.serves_reads``) reads out nothing: recovery made all of its log visible,
also a tail the group never confirmed. After a term began on a log that may have lost its
tail (``runtime.store.tail_guard``), a pull past what the master vouched for the group is
answered PULL_OFFSET_MOVED back to it: new messages took those offsets. The other requests
that read records out (VIEW_MESSAGE_BY_ID, QUERY_MESSAGE, CONSUME_MESSAGE_DIRECTLY) pass
``unsettled`` alone: they name records by commit-log offset or key, not by a consumer's
position. Those reads are also answered SYSTEM_BUSY, without their records, while their
connection's unwritten answers pass ``MAX_BACKLOG`` (``backlogged``), as a pull that finds
messages is (``pull_handler``, ``[PULL_BACKLOG]``).
"""

from __future__ import annotations

import time

from actors.broker.context import BrokerContext, reply
from runtime.errors import ActorFailure
from runtime.ha.state import HAState
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.headers import PullMessageRequestHeader
from runtime.request_context import mark_held
from runtime.session import SessionHandle
from runtime.session_handle import MAX_BACKLOG

FLAG_SUSPEND = 2
MASTER_ID = 0
STORE_STOPPED = "store stopped (the broker is restarting or changing role); pull again"
TERM_RECHECK_S = 5.0
"""How often a pull waiting for the node's term checks that its connection is still open (as a
held pull's recheck, ``pull_handler.RECHECK_S``)."""
UNSETTLED = "no term yet: this broker reads out its log once the controller confirms it"


def await_term(
    ctx: BrokerContext,
    request: RemotingCommand,
    h: PullMessageRequestHeader,
    session: SessionHandle,
) -> RemotingCommand | None:
    """A controller-mode node not settled since it started (``HAState.serves_reads``: no
    lease held, no master accepted its log): a suspended pull waits (long polling) for that;
    None once settled, else PULL_NOT_FOUND keeping the consumer's offset (nothing of its log
    read yet). The wait is
    the pull's hold (``hold_s``), not one more: the hold that may follow gets what is left,
    so the answer comes within the consumer's suspend timeout. It ends within a recheck
    (``TERM_RECHECK_S``) when the pull's connection closed, answered so (nobody reads it), as
    a held pull's does."""
    if h.sys_flag & FLAG_SUSPEND and h.suspend_timeout_millis > 0:
        mark_held()
        if _wait_for_term(ctx.ha, hold_s(ctx, h), session):
            return None
    ext = {
        "nextBeginOffset": h.queue_offset,
        "minOffset": h.queue_offset,
        "maxOffset": h.queue_offset,
        "suggestWhichBrokerId": MASTER_ID,
    }
    return reply(
        request,
        ResponseCode.PULL_NOT_FOUND,
        ext_fields=ext,
        remark=UNSETTLED,
    )


def _wait_for_term(ha: HAState, hold: float, session: SessionHandle) -> bool:
    """Wait up to ``hold`` seconds for ``ha`` to serve reads (True), in slices of
    ``TERM_RECHECK_S``: False at the end of the hold, or once ``session`` closed (a closed
    connection's pulls held for a long suspend timeout piled up greenlets without bound)."""
    deadline = time.monotonic() + hold
    remaining = hold
    while True:
        if ha.wait_until(lambda s: s.serves_reads(), max(0.0, min(remaining, TERM_RECHECK_S))):
            return True
        if remaining <= TERM_RECHECK_S or not session.alive:
            return False
        remaining = deadline - time.monotonic()


def unsettled(ctx: BrokerContext, request: RemotingCommand, code: int) -> RemotingCommand | None:
    """``code`` (the request's "not found" answer) when this controller-mode node is not
    settled since it started (``HAState.serves_reads``): a record of its unconfirmed tail may
    be cut by the term the controller starts, and its offset given to another message; None
    when it may read its log out."""
    if ctx.ha is None or ctx.ha.serves_reads():
        return None
    return reply(request, code, remark=UNSETTLED)


def backlogged(
    request: RemotingCommand,
    session: SessionHandle | None,
    tag: str = "READ_BACKLOG",
    again: str = "ask",
) -> RemotingCommand | None:
    """SYSTEM_BUSY without the records asked for while more than ``MAX_BACKLOG`` bytes of
    ``session``'s answers wait to be written (its client does not read them): the session
    stops reading new requests then, but up to 4,096 already admitted could each hold a large
    answer (a pull's first message of 4 MiB, a record by id, 64 by key) in memory; None
    otherwise. Reads that change nothing, so the client may ask again later (a RocketMQ
    consumer pulls again 3 s later). ``tag`` and ``again`` name the read in the remark."""
    backlog = getattr(session, "backlog", 0)
    if backlog <= MAX_BACKLOG:
        return None
    remark = (
        f"[{tag}] {backlog} bytes of this connection's answers wait to be written "
        f"(it does not read them): {again} again later"
    )
    return reply(request, ResponseCode.SYSTEM_BUSY, remark=remark)


def hold_s(ctx: BrokerContext, h: PullMessageRequestHeader) -> float:
    """How long a suspended pull may be held: its ``suspendTimeoutMillis``, at most
    ``shortPollingTimeMills`` without ``longPollingEnable``."""
    seconds = h.suspend_timeout_millis / 1000
    if not ctx.cfg.long_polling_enable:
        seconds = min(seconds, ctx.cfg.short_polling_time_mills / 1000)
    return seconds


def past_bound(
    ctx: BrokerContext, request: RemotingCommand, h: PullMessageRequestHeader, client: str
) -> RemotingCommand | None:
    """PULL_OFFSET_MOVED when this node moves consumers and the pull's offset is past what the
    tail-loss guard allows the group's ``client`` (its connection) on this queue
    (``runtime.store.tail_guard``); None otherwise."""
    guard = ctx.store.tail_guard
    if not guard.raised or not moves_consumers(ctx):
        return None
    bound = guard.bound(h.consumer_group, h.topic, h.queue_id, client)
    if bound is None or h.queue_offset <= bound:
        return None
    guard.moved(h.consumer_group, h.topic, h.queue_id, h.queue_offset, bound)
    return _moved_back(ctx, request, h, bound)


def _moved_back(
    ctx: BrokerContext, request: RemotingCommand, h: PullMessageRequestHeader, bound: int
) -> RemotingCommand:
    """PULL_OFFSET_MOVED to ``bound``: the consumer's offset is one of the log this master's
    term replaced (``runtime.store.tail_guard``)."""
    try:
        low, high = (
            ctx.store.min_offset(h.topic, h.queue_id),
            ctx.store.max_offset(h.topic, h.queue_id),
        )
    except ActorFailure:
        if ctx.store.running:
            raise
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=STORE_STOPPED)
    ext = {
        "nextBeginOffset": bound,
        "minOffset": low,
        "maxOffset": high,
        "suggestWhichBrokerId": MASTER_ID,
    }
    remark = (
        f"OFFSET_PAST_LOST_TAIL: offset {h.queue_offset} is past what this master handed the "
        f"group since its log lost a tail; new messages took those offsets: from {bound}"
    )
    return reply(request, ResponseCode.PULL_OFFSET_MOVED, ext_fields=ext, remark=remark)


def moves_consumers(ctx: BrokerContext) -> bool:
    """Whether this node may tell a consumer its offset is out of range: a master that holds
    the log (classic mode: the master; controller mode: a master with its lease)."""
    if ctx.ha is None:
        return ctx.cfg.is_master
    return ctx.cfg.is_master and ctx.ha.accepting_writes()
