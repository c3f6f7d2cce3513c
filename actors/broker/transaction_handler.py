"""END_TRANSACTION (37), and registering half messages on the send path.

A half message (sysFlag TRANSACTION_PREPARED) is stored with no queue offset: consumers cannot
see it. COMMIT (8) puts a copy with sysFlag COMMIT into its topic (now visible; its
preparedTransactionOffset points at the half message); ROLLBACK (12) puts a mark with sysFlag
ROLLBACK and no body (no queue offset, no index entry: nobody reads it but a TransactionManager
catching up with the log after a failover, ``actors.broker.half_scan``), as RocketMQ 3's broker
stored one. Either way the TransactionManager forgets it once stored (an END whose record could
not be stored gets the put's error and leaves it open), and a second END for the same message
does nothing. Under the ACL an END needs PUB on the topic the half message is stored in,
checked once it is read (``acl_gate``; the header's ``topic`` is only the client's word).
UNKNOWN (0) leaves it open for the check-back. Any other commitOrRollback is INVALID_PARAMETER
(oneway: dropped), nothing done. A slave answers SLAVE_NOT_AVAILABLE, as RocketMQ's does.

RESUME_CHECK_HALF_MESSAGE (323, ``mqadmin resumeCheckHalfMessage -i <offset msg id>``): a half
message whose checks ran out (discarded, ``transactionCheckMax``) or that is still open starts
its checks over, as RocketMQ's broker does by storing it again with zero check times.
SYSTEM_ERROR when the id names no half message here or one already committed or rolled back.

A half message whose checks ran out (``transactionCheckMax``) is kept, before the
TransactionManager stops checking it, as a copy in TRANS_CHECK_MAX_TIME_TOPIC (queue 0, one
queue, made and registered on first use): ``keep_discarded``, as RocketMQ's
DefaultTransactionalMessageCheckListener.resolveDiscardMsg stores it. The copy is an ordinary
message (no transaction sysFlag, so consumers and admin tools read it) with the half message's
body and properties, plus REAL_TOPIC / REAL_QID (where it was sent) and
TRANSACTION_CHECK_TIMES, as RocketMQ's copy carries them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pykka
from loguru import logger

from actors.broker import acl_gate, send_handler
from actors.broker.context import BrokerContext, reply
from actors.broker.delay import TimerError, copy_record, schedule
from actors.broker.store_port import PutOutcome
from actors.broker.topic_config import PERM_READ, PERM_WRITE
from actors.broker.transaction_manager import HalfMessage, immunity_ms
from runtime.errors import AddressError
from runtime.remoting.bodies import TopicConfig
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import EndTransactionRequestHeader
from runtime.remoting.properties import (
    CHECK_IMMUNITY_TIME_IN_SECONDS,
    PGROUP,
    REAL_QID,
    REAL_TOPIC,
    TRAN_MSG,
    TRANSACTION_CHECK_TIMES,
    UNIQ_KEY,
    decode_properties,
)
from runtime.session import SessionHandle
from runtime.store.msg_id import decode_offset_msg_id
from runtime.store.record import (
    TRANSACTION_COMMIT_TYPE,
    TRANSACTION_MASK,
    TRANSACTION_PREPARED_TYPE,
    TRANSACTION_ROLLBACK_TYPE,
    PutRecord,
    StoredRecord,
    decode_record,
)

UNKNOWN, COMMIT, ROLLBACK = 0, 8, 12
CHECK_MAX_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"
"""RocketMQ's ``TopicValidator.RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC``: where half messages whose
checks ran out are kept (one queue, read and write)."""


def is_prepared(sys_flag: int) -> bool:
    return sys_flag & TRANSACTION_MASK == TRANSACTION_PREPARED_TYPE


@contextlib.contextmanager
def stored_half(ctx: BrokerContext) -> Iterator[int]:
    """Around a half message's put: the TransactionManager's token (``preparing``), abandoned
    unless ``register_half`` used it."""
    transactions = ctx.proxy(ctx.transactions)
    token = ctx.ask(transactions.preparing())
    try:
        yield token
    finally:
        with contextlib.suppress(pykka.ActorDeadError):  # (a no-op once prepared)
            transactions.abandoned(token)


def register_half(
    ctx: BrokerContext,
    session: SessionHandle,
    record: PutRecord,
    group: str,
    outcome: PutOutcome,
    token: int = 0,
) -> None:
    """Tell the TransactionManager about a stored half message (returns once it is persisted),
    and the ProducerManager that ``session`` is a producer of its group (the check-back's
    channel until the producer's first heartbeat arrives)."""
    props = decode_properties(record.properties)
    msg_id = outcome.msg_ids[0]
    half = HalfMessage(
        offset=decode_offset_msg_id(msg_id).physical_offset,
        group=props.get(PGROUP, group),
        topic=record.topic,
        msg_id=msg_id,
        transaction_id=props.get(UNIQ_KEY, msg_id),
        stored_ms=int(time.time() * 1000),
        immunity_ms=immunity_ms(props.get(CHECK_IMMUNITY_TIME_IN_SECONDS)),
    )
    ctx.ask(ctx.proxy(ctx.transactions).prepared(half, token))
    ctx.proxy(ctx.producers).sent_half(half.group, session)


def end_transaction(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand | None:
    h = decode_header(EndTransactionRequestHeader, request.ext_fields, opaque=request.opaque)
    if not ctx.cfg.is_master:  # (no TransactionManager here), as RocketMQ's slave answers
        if request.is_oneway:
            return None
        return reply(
            request,
            ResponseCode.SLAVE_NOT_AVAILABLE,
            remark="Message store is slave mode, so end transaction is forbidden.",
        )
    if h.commit_or_rollback not in (COMMIT, ROLLBACK):
        if request.is_oneway:
            return None
        if h.commit_or_rollback == UNKNOWN:
            return reply(request)  # left open for the check-back
        # (RocketMQ logs it and answers nothing: a two-way caller would wait out its timeout)
        return reply(
            request,
            ResponseCode.INVALID_PARAMETER,
            remark=f"commitOrRollback {h.commit_or_rollback} is none of 0 (unknown), "
            f"{COMMIT} (commit), {ROLLBACK} (rollback): nothing done",
        )
    raw = ctx.store.message_at(h.commit_log_offset)
    if raw is None:
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark="find prepared transaction message failed"
        )
    half = decode_record(raw)
    # the header's topic (RocketMQ 5's clients send one) is the client's word: ending the
    # transaction needs PUB on the topic the half message is stored in
    refused = acl_gate.stored_refusal(ctx, session, request, half.topic)
    if refused is not None:
        return refused.answer
    props = decode_properties(half.properties)
    if not is_prepared(half.sys_flag):
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"the message at offset {h.commit_log_offset} is not a half message",
        )
    if props.get(PGROUP, h.producer_group) != h.producer_group:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark="the producer group wrong")
    transactions = ctx.proxy(ctx.transactions)
    if not ctx.ask(transactions.claim(h.commit_log_offset)):
        return reply(request)  # settled or being settled (a duplicate END), or long forgotten
    try:
        return _settle(ctx, request, h, half, props)
    finally:
        with contextlib.suppress(pykka.ActorDeadError):  # a stopped manager holds no claim
            transactions.release(h.commit_log_offset)  # a no-op once resolved


def _settle(
    ctx: BrokerContext,
    request: RemotingCommand,
    h: EndTransactionRequestHeader,
    half: StoredRecord,
    props: dict[str, str],
) -> RemotingCommand:
    props.pop(TRAN_MSG, None)
    if h.commit_or_rollback == COMMIT:
        record = copy_record(
            half,
            props,
            sys_flag=(half.sys_flag & ~TRANSACTION_MASK) | TRANSACTION_COMMIT_TYPE,
            prepared_transaction_offset=h.commit_log_offset,
        )
        # A timer the half message carried but that cannot be honoured: deliver the commit now.
        with contextlib.suppress(TimerError):
            record = schedule(record, len(ctx.cfg.delay_levels_ms()), int(time.time() * 1000))
    else:  # the rollback's mark: no queue offset, no index entry, no body
        record = copy_record(
            half,
            props,
            body=b"",
            sys_flag=(half.sys_flag & ~TRANSACTION_MASK) | TRANSACTION_ROLLBACK_TYPE,
            prepared_transaction_offset=h.commit_log_offset,
        )
    outcome = ctx.store.put([record])
    code = send_handler.STATUS_CODES.get(outcome.status, ResponseCode.SYSTEM_ERROR)
    if code not in send_handler.STORED_CODES:
        return reply(request, code, remark=outcome.remark or outcome.status)
    ctx.ask(ctx.proxy(ctx.transactions).resolve(h.commit_log_offset))
    return reply(request)


def resume_check_half_message(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    msg_id = str(request.ext_fields.get("msgId") or "")
    try:
        offset = decode_offset_msg_id(msg_id).physical_offset
    except AddressError as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=f"msgId {msg_id!r}: {exc}")
    if not ctx.cfg.is_master:
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark="this broker is a slave: resume the half message's checks on its master",
        )
    raw = ctx.store.message_at(offset)
    if raw is None or not is_prepared(decode_record(raw).sys_flag):
        return reply(
            request, ResponseCode.SYSTEM_ERROR, remark=f"no half message with msgId {msg_id} here"
        )
    if not ctx.ask(ctx.proxy(ctx.transactions).resume(offset)):
        return reply(
            request,
            ResponseCode.SYSTEM_ERROR,
            remark=f"the half message {msg_id} is already committed or rolled back",
        )
    return reply(request)


def check_max_copy(raw: bytes, checks: int) -> PutRecord:
    """The record kept in TRANS_CHECK_MAX_TIME_TOPIC for the half message ``raw`` discarded
    after ``checks`` checks (see the module docstring)."""
    half = decode_record(raw)
    props = decode_properties(half.properties)
    props[REAL_TOPIC] = half.topic
    props[REAL_QID] = str(half.queue_id)
    props[TRANSACTION_CHECK_TIMES] = str(checks)
    return copy_record(
        half,
        props,
        topic=CHECK_MAX_TOPIC,
        queue_id=0,
        sys_flag=half.sys_flag & ~TRANSACTION_MASK,
    )


def keep_discarded(ctx: BrokerContext, raw: bytes, checks: int) -> bool:
    """Store ``check_max_copy`` of a half message whose checks ran out (the TransactionManager's
    ``keep_discarded``); True once stored. Makes TRANS_CHECK_MAX_TIME_TOPIC on first use."""
    try:
        if ctx.store.topic(CHECK_MAX_TOPIC) is None:
            config = TopicConfig(
                topic_name=CHECK_MAX_TOPIC,
                read_queue_nums=1,
                write_queue_nums=1,
                perm=PERM_READ | PERM_WRITE,
            )
            ctx.store.create_topic(config)
            ctx.register_now(CHECK_MAX_TOPIC)
        outcome = ctx.store.put([check_max_copy(raw, checks)])
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        reason = f"the store did not answer: {type(exc).__name__}"
    else:
        code = send_handler.STATUS_CODES.get(outcome.status, ResponseCode.SYSTEM_ERROR)
        if code in send_handler.STORED_CODES:
            return True
        reason = outcome.remark or outcome.status
    logger.warning(
        "broker: a half message whose checks ran out could not be stored in {} ({}): it stays "
        "open, tried again at the next check round",
        CHECK_MAX_TOPIC,
        reason,
    )
    return False
