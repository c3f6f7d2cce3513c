"""PULL_MESSAGE (11) with long polling (RocketMQ's PullMessageProcessor + PullRequestHoldService);
LITE_PULL_MESSAGE (361, sent by Java's DefaultLitePullConsumer with the lite flag 16) alike.

Reads from slaves (RocketMQ 5's rules): a slave serves pulls when ``slaveReadEnable`` is on, or
while its master is unreachable (its replication link is down); otherwise it answers
PULL_RETRY_IMMEDIATELY with ``suggestWhichBrokerId`` 0 (the master). With ``slaveReadEnable``
a broker suggests the slave (1) to a consumer whose last pulled record lies further behind the
commit-log end than ``accessMessageInMemoryMaxRatio`` % of physical memory (the data is no
longer in the page cache), else the master (0); without it, always 0.

A pull that finds nothing new and carries the SUSPEND flag is held in its own greenlet for up to
``suspendTimeoutMillis``: it waits on the queue's arrival notification (rechecking every 5 s),
answers as soon as a matching message is there, and otherwise answers PULL_NOT_FOUND with
``nextBeginOffset`` = the requested offset; a hold ends at once, answered so, when the store
stops under it (a restart or a role change), and within a recheck (5 s) when its connection
closed. A pull that finds the store stopped gets SYSTEM_ERROR "store stopped", as RocketMQ
answers a pull on a store that shut down. Tag
filtering uses the tag hash in the consume queue; clients re-check tag strings, as RocketMQ's do.

Before reading, a pull passes ``actors.broker.pull_gates``: a controller-mode node that has
not settled since it started (no lease held, no master accepted its log) reads out nothing (a
suspended pull waits for that, until its connection closes at most, else PULL_NOT_FOUND
keeping the offset); after a term began on
a log that may have lost its tail, a pull past what the tail-loss guard allows is moved back,
checked again after a hold (which may span the start of a term). A commit past the guard's
bound is stored as the bound.

A classic master reconciling its log after a power loss (``HAState.reconciling``) answers a
pull past the end it kept (or at a queue it holds nothing of) as one at the end (held, then
PULL_NOT_FOUND keeping the consumer's offset): the fetched tail may bring that offset back, and
a consumer left running must neither be moved nor pull in a tight loop meanwhile.

Only the master of the log moves a consumer: an offset outside a queue (too small, too big, or a
queue this node does not have) is answered PULL_OFFSET_MOVED with where to go by a master that
accepts writes; any other node (a slave, or a controller-mode master without its lease yet, e.g.
an old master restarted before the controller told it to follow) answers PULL_RETRY_IMMEDIATELY
with ``nextBeginOffset`` = the requested offset and ``suggestWhichBrokerId`` 0: its log may lag
the master's, and its "too big" would send the consumer back to 0 (RocketMQ's
``nextOffsetCorrection`` and "PULL_OFFSET_MOVED:none correction" without
``offsetCheckInSlave``; docs/chaos.md, finding 13).

Every response carries nextBeginOffset, minOffset, maxOffset and suggestWhichBrokerId as strings.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

import msgspec

from actors.broker.context import BrokerContext, reply, topic_not_exist
from actors.broker.group_names import unknown_group
from actors.broker.pull_gates import (
    FLAG_SUSPEND,
    MASTER_ID,
    STORE_STOPPED,
    await_term,
    backlogged,
    hold_s,
    moves_consumers,
    past_bound,
)
from actors.broker.store_port import GetOutcome
from runtime.actor import call_now
from runtime.errors import ActorFailure
from runtime.filter import FilterError, Predicate, compile_cached
from runtime.remoting.bodies import SUB_ALL, SubscriptionGroupConfig, tags_of
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import PullMessageRequestHeader
from runtime.remoting.properties import decode_properties, tag_hash
from runtime.request_context import mark_held
from runtime.session import SessionHandle
from runtime.store.record import decode_record

PERM_READ = 4
FLAG_COMMIT_OFFSET, FLAG_SUBSCRIPTION = 1, 4
RECHECK_S = 5.0
NOT_FOUND = ("OFFSET_OVERFLOW_ONE", "OFFSET_FOUND_NULL")
RETRY_NOW = ("NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING")
MOVED = ("OFFSET_OVERFLOW_BADLY", "OFFSET_TOO_SMALL")
SLAVE_WHEN_SLOW = 1  # RocketMQ's subscription-group default (MASTER_ID 0: pull_gates)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 1024**3


TOTAL_PHYSICAL_MEMORY = _physical_memory()


class FilterRefused(NamedTuple):
    """Why a subscription's expression cannot be served: a response code and remark."""

    code: int
    remark: str


def subscription_filter(
    ctx: BrokerContext, expression_type: str, expression: str
) -> tuple[Predicate | None, frozenset[int] | None] | FilterRefused:
    """(SQL92 predicate, tag hash codes) for a subscription — None for "not filtered by it" —
    or why this broker cannot serve it (SQL92 without ``enablePropertyFilter``, an expression
    that does not compile, an unknown type). Pulls and CHECK_CLIENT_CONFIG both ask."""
    kind = (expression_type or "TAG").upper()
    if kind == "TAG":
        tags = tags_of(expression)
        return None, frozenset(tag_hash(t) for t in tags) if tags else None
    if kind != "SQL92":
        return FilterRefused(
            ResponseCode.SUBSCRIPTION_PARSE_FAILED,
            f"unknown expression type {expression_type}; TAG or SQL92",
        )
    if not ctx.cfg.enable_property_filter:
        return FilterRefused(
            ResponseCode.SYSTEM_ERROR,
            "The broker does not support consumer to filter message by SQL92 "
            "(enablePropertyFilter=false)",
        )
    try:
        return compile_cached(expression), None
    except FilterError as exc:
        return FilterRefused(ResponseCode.SUBSCRIPTION_PARSE_FAILED, str(exc))


def pull(ctx: BrokerContext, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
    h = decode_header(PullMessageRequestHeader, request.ext_fields, opaque=request.opaque)
    if not ctx.cfg.broker_permission & PERM_READ:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the broker[{ctx.cfg.broker_name}] pulling message is forbidden",
        )
    group_config = ctx.store.subscription_group(h.consumer_group)
    missing = unknown_group(ctx, request, h.consumer_group, group_config)
    if missing is not None:
        return missing
    if group_config is not None and not group_config.consume_enable:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"subscription group no permission, {h.consumer_group}",
        )
    if group_config is not None and not group_config.consume_broadcast_enable:
        info = ctx.ask(call_now(ctx.directory.require(ctx.consumers), "group", h.consumer_group))
        if info is not None and info.message_model == "BROADCASTING":
            return reply(
                request,
                ResponseCode.NO_PERMISSION,
                remark=f"the consumer group[{h.consumer_group}] can not consume by broadcast way",
            )
    config = ctx.store.topic(h.topic)
    if config is None:
        return topic_not_exist(request, h.topic)
    if not config.perm & PERM_READ:
        return reply(
            request,
            ResponseCode.NO_PERMISSION,
            remark=f"the topic[{h.topic}] pulling message is forbidden",
        )
    if _redirect_to_master(ctx):
        return reply(
            request,
            ResponseCode.PULL_RETRY_IMMEDIATELY,
            remark="slave reads are off (slaveReadEnable=false) while the master is up",
            ext_fields={
                "nextBeginOffset": h.queue_offset,
                "minOffset": 0,
                "maxOffset": 0,
                "suggestWhichBrokerId": MASTER_ID,
            },
        )
    if h.queue_id < 0 or h.queue_id >= config.read_queue_nums:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] topicConfig."
            f"readQueueNums:[{config.read_queue_nums}] consumer:[{session.remote_address}]",
        )
    found = _subscription(ctx, h)
    if found is None:
        # RocketMQ's answer: the client backs off and pulls again after its next heartbeat,
        # rather than receiving everything unfiltered.
        return reply(
            request,
            ResponseCode.SUBSCRIPTION_NOT_EXIST,
            remark=f"the consumer's subscription not exist, group: {h.consumer_group} "
            f"topic: {h.topic} (send the subscription with the pull, or heartbeat first)",
        )
    expression_type, expression, version = found
    if version < h.sub_version:
        # The client subscribed anew and its heartbeat has not come yet (a Java consumer
        # sends no subscription with its pulls, only its subVersion): filtered with the old
        # expression, a message of the new one would be skipped for good. RocketMQ's answer:
        # the client pulls again after its back-off.
        return reply(
            request,
            ResponseCode.SUBSCRIPTION_NOT_LATEST,
            remark=f"the consumer's subscription not latest, group: {h.consumer_group} "
            f"topic: {h.topic} (subVersion {h.sub_version}, the heartbeat's {version})",
        )
    chosen = subscription_filter(ctx, expression_type, expression)
    if isinstance(chosen, FilterRefused):
        return reply(request, chosen.code, remark=chosen.remark)
    predicate, tag_codes = chosen
    group, topic, queue_id = h.consumer_group, h.topic, h.queue_id
    guard, client = ctx.store.tail_guard, session.remote_address  # (vouched per connection)
    if h.sys_flag & FLAG_COMMIT_OFFSET and h.commit_offset > 0 and ctx.cfg.is_master:
        # (stored whatever the pull's answer, as RocketMQ does: also by a node not settled yet)
        committed = guard.commit_value(group, topic, queue_id, h.commit_offset, client)
        ctx.store.commit_offset(group, topic, queue_id, committed)
    held_from: float | None = None  # (a hold for the first lease counts against the pull's)
    if ctx.ha is not None and not ctx.ha.serves_reads():
        held_from = time.monotonic()
        unsettled = await_term(ctx, request, h, session)
        if unsettled is not None:
            return unsettled
    past = past_bound(ctx, request, h, client)
    if past is not None:
        return past

    # RocketMQ 4 clients send no maxMsgBytes: maxTransferBytesOnMessageInMemory (256 KiB) caps
    # the answer (a first message larger than it still comes whole)
    cap = ctx.cfg.max_transfer_bytes_on_message_in_memory
    max_bytes = min(h.max_msg_bytes, cap) if h.max_msg_bytes and h.max_msg_bytes > 0 else cap
    max_nums = max(1, min(h.max_msg_nums, ctx.cfg.max_transfer_count_on_message_in_memory))

    def get() -> GetOutcome:
        outcome = ctx.store.get_messages(
            h.consumer_group, h.topic, h.queue_id, h.queue_offset, max_nums, max_bytes, tag_codes
        )
        return outcome if predicate is None else _filter(outcome, predicate)

    try:
        outcome = get()
    except ActorFailure:
        if ctx.store.running:
            raise
        # RocketMQ's answer to a pull on a store that shut down; no traceback: a restart or a
        # role change (controller mode) rebuilds the store, and its connections close anyway
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=STORE_STOPPED)
    suspend = bool(h.sys_flag & FLAG_SUSPEND) and h.suspend_timeout_millis > 0
    awaits_tail = ctx.ha is not None and ctx.ha.reconciling
    if _nothing_yet(outcome, h.queue_offset, awaits_tail) and suspend:
        start = held_from if held_from is not None else time.monotonic()
        deadline = start + hold_s(ctx, h)
        mark_held()
        while _nothing_yet(outcome, h.queue_offset, awaits_tail):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            waited = _wait_from(outcome, h.queue_offset)
            ctx.store.wait_arrival(h.topic, h.queue_id, waited, min(remaining, RECHECK_S))
            if not ctx.store.running:
                break  # the store stopped (it woke every parked poll): nothing found
            if not session.alive:
                # nobody to answer: the hold ends (a closed connection's pulls held for a
                # long suspend timeout piled up, greenlets and queue waiters, without bound)
                return _respond(request, outcome, h.queue_offset, moves=False)
            if not h.sys_flag & FLAG_SUBSCRIPTION:
                # the group's subscription as it is now (RocketMQ runs a held pull again when
                # woken): a heartbeat may have changed it meanwhile (Java's subscribe() while
                # running), and a message of the new tags read with the old ones was skipped
                predicate, tag_codes = _current_filter(ctx, h, (predicate, tag_codes))
            outcome = get()
        # (the hold may have spanned the start of a term: a reconciliation's end raised the
        # tail-loss guard, a lease came; the offset is checked against it again)
        past = past_bound(ctx, request, h, client)
        if past is not None:
            return past
    busy = backlogged(request, session, "PULL_BACKLOG", "pull") if outcome.messages else None
    if busy is not None:  # (its client would not read this answer either: pulled again later)
        return busy
    if outcome.status == "FOUND":
        ctx.got_messages += outcome.count
        key = (h.topic, h.consumer_group)
        ctx.got_by[key] = ctx.got_by.get(key, 0) + outcome.count
        size = sum(map(len, outcome.messages))
        ctx.got_bytes_by[key] = ctx.got_bytes_by.get(key, 0) + size
    suggest = _suggest(ctx, outcome, group_config)
    if awaits_tail and _past_kept_end(outcome, h.queue_offset):
        outcome = msgspec.structs.replace(outcome, status="OFFSET_OVERFLOW_ONE")
    moves = moves_consumers(ctx)
    response = _respond(request, outcome, h.queue_offset, suggest, moves=moves)
    # (what this log answered: also while the master moves no consumer, e.g. a controller-mode
    # master whose lease lapsed for a while, else those readers are moved back once it returns;
    # not an out-of-range answer then: it keeps the consumer's own, maybe stale, offset)
    if guard.raised and (moves or outcome.status == "FOUND" or outcome.status in RETRY_NOW):
        next_begin = int(response.ext_fields["nextBeginOffset"])
        guard.vouch(group, topic, queue_id, next_begin, client)
    return response


def _redirect_to_master(ctx: BrokerContext) -> bool:
    """A slave without slaveReadEnable sends consumers to its master while it is reachable."""
    if ctx.cfg.is_master or ctx.cfg.slave_read_enable:
        return False
    return ctx.ha is not None and ctx.ha.master_link_up


def _suggest(
    ctx: BrokerContext, outcome: GetOutcome, group: SubscriptionGroupConfig | None = None
) -> int:
    """suggestWhichBrokerId (slaveReadEnable): ``whichBrokerWhenConsumeSlowly`` for a consumer
    reading far behind, else the group's ``brokerId`` (RocketMQ's defaults 1 and 0 without a
    group config); always the master without slaveReadEnable."""
    if not ctx.cfg.slave_read_enable or not outcome.messages:
        return MASTER_ID
    slow_id = SLAVE_WHEN_SLOW if group is None else group.which_broker_when_consume_slowly
    usual_id = MASTER_ID if group is None else group.broker_id
    last = outcome.messages[-1]
    pulled_to = int.from_bytes(last[28:36], "big")
    store = getattr(ctx.store, "store", None)
    if store is None:
        return MASTER_ID
    behind = store.commit_log_max_offset - pulled_to
    allowed = TOTAL_PHYSICAL_MEMORY * ctx.cfg.access_message_in_memory_max_ratio / 100
    return slow_id if behind > allowed else usual_id


def _subscription(ctx: BrokerContext, h: PullMessageRequestHeader) -> tuple[str, str, int] | None:
    """(expression type, expression, subVersion) from the request (its own subVersion), else
    from the group's heartbeat; None when neither has one."""
    if h.sys_flag & FLAG_SUBSCRIPTION:
        return (h.expression_type or "TAG").upper(), h.subscription or SUB_ALL, h.sub_version
    # Every pull of a client that does not send its subscription (Java's default) asks:
    # answered inline when the consumer manager is idle (the method never yields).
    consumers = ctx.directory.require(ctx.consumers)
    sub = ctx.ask(call_now(consumers, "subscription", h.consumer_group, h.topic))
    if sub is None:
        return None
    return (sub.expression_type or "TAG").upper(), sub.sub_string, sub.sub_version


def _current_filter(
    ctx: BrokerContext,
    h: PullMessageRequestHeader,
    held: tuple[Predicate | None, frozenset[int] | None],
) -> tuple[Predicate | None, frozenset[int] | None]:
    """The filter of the group's subscription from its heartbeats now, for a held pull that
    sent none; ``held`` (the one it started with) when the group has none or it cannot be
    served."""
    found = _subscription(ctx, h)
    if found is None or found[2] < h.sub_version:
        return held
    chosen = subscription_filter(ctx, found[0], found[1])
    return held if isinstance(chosen, FilterRefused) else chosen


def _filter(outcome: GetOutcome, predicate: Predicate) -> GetOutcome:
    """Keep the records whose properties satisfy the SQL92 predicate."""
    if outcome.status != "FOUND" or not outcome.messages:
        return outcome
    kept = tuple(
        raw
        for raw in outcome.messages
        if predicate(decode_properties(decode_record(raw).properties))
    )
    if not kept:
        return msgspec.structs.replace(outcome, status="NO_MATCHED_MESSAGE", messages=())
    return msgspec.structs.replace(outcome, messages=kept)


def _nothing_yet(outcome: GetOutcome, offset: int, awaits_tail: bool) -> bool:
    """Nothing there yet (a pull that may be held): also, on a master fetching its lost tail
    (``awaits_tail``), an offset past the end it kept, which the tail may bring back."""
    if awaits_tail and _past_kept_end(outcome, offset):
        return True
    return _is_not_found(outcome, offset)


def _wait_from(outcome: GetOutcome, offset: int) -> int:
    """The offset a held pull waits for a message past: its own, or the queue's end when the
    queue already holds more (a record at ``offset`` that failed its check and is not written
    yet, OFFSET_FOUND_NULL; a damaged one is skipped: waiting for ``offset`` itself would be
    answered at once, and the hold would read it again and again without ever yielding,
    blocking the whole broker for the suspend timeout)."""
    return max(offset, outcome.max_offset)


def _past_kept_end(outcome: GetOutcome, offset: int) -> bool:
    """Past the end a reconciling master kept: beyond its queue's end, or a queue it holds
    nothing of (the lost tail may have held all of it)."""
    if outcome.status == "OFFSET_OVERFLOW_BADLY":
        return True
    return outcome.status in ("NO_MESSAGE_IN_QUEUE", "NO_MATCHED_LOGIC_QUEUE") and offset > 0


def _is_not_found(outcome: GetOutcome, offset: int) -> bool:
    if outcome.status in NOT_FOUND:
        return True
    return outcome.status in ("NO_MESSAGE_IN_QUEUE", "NO_MATCHED_LOGIC_QUEUE") and offset == 0


def _respond(
    request: RemotingCommand,
    outcome: GetOutcome,
    offset: int,
    suggest: int = MASTER_ID,
    *,
    moves: bool = True,
) -> RemotingCommand:
    status = outcome.status
    ext = {
        "nextBeginOffset": outcome.next_begin_offset,
        "minOffset": outcome.min_offset,
        "maxOffset": outcome.max_offset,
        "suggestWhichBrokerId": suggest,
    }
    if status == "FOUND" and outcome.messages:
        return reply(request, ResponseCode.SUCCESS, ext_fields=ext, body=outcome.body)
    if status == "FOUND" or status in RETRY_NOW:
        return reply(request, ResponseCode.PULL_RETRY_IMMEDIATELY, ext_fields=ext)
    if _is_not_found(outcome, offset):
        ext["nextBeginOffset"] = offset
        return reply(request, ResponseCode.PULL_NOT_FOUND, ext_fields=ext)
    # Offset out of range (too small, too big, or a queue with nothing at this offset).
    if not moves:  # not the log's master: keep the consumer where it is, try the master
        ext["nextBeginOffset"] = offset
        ext["suggestWhichBrokerId"] = MASTER_ID
        return reply(request, ResponseCode.PULL_RETRY_IMMEDIATELY, ext_fields=ext, remark=status)
    return reply(request, ResponseCode.PULL_OFFSET_MOVED, ext_fields=ext, remark=status)
