"""Greenlet-side requests of the push consumer's consume path: CONSUMER_SEND_MSG_BACK (36),
LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42). Not an actor: plain functions any greenlet on the
client's hub may call (they block that greenlet on the network, with a timeout).

- ``send_back``: hand a message the listener failed back to the broker that stored it. With
  ``delay_level`` 0 the broker picks level ``3 + reconsumeTimes`` and puts a copy into
  ``%RETRY%<group>`` (or, once ``reconsumeTimes >= max_reconsume_times``, into
  ``%DLQ%<group>``); with ``delay_level`` -1 it goes straight to ``%DLQ%<group>``. The header
  is RocketMQ's: ``offset`` (the commit-log offset, as in the offset message id), ``group``,
  ``delayLevel``, ``originMsgId``, ``originTopic``, ``maxReconsumeTimes``.
- ``resend_to_retry``: when that fails (the broker that stored the message is gone), a copy
  goes to ``%RETRY%<group>`` on any broker, as RocketMQ's consumer does through its internal
  producer (``retry_copy``); only when that fails too is the message retried locally.
- ``lock_queues`` / ``unlock_queues``: broker-side queue locks of an orderly consumer, one
  request per broker (the master of each queue's broker name).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import gevent.event
from loguru import logger

from actors.client.compression import DEFAULT_COMPRESSOR
from actors.client.errors import ClientError, NoRouteError, RequestTimeoutError
from actors.client.instance import ClientInstance
from actors.client.message import MessageExt, MessageQueue
from actors.client.namespace import Namespace
from actors.client.outgoing import COMPRESS_OVER, Outgoing
from actors.client.remoting import make_request
from actors.client.selectors import ROUND_ROBIN
from actors.client.sender import Sender
from runtime.errors import ProtocolError
from runtime.remoting import properties as P
from runtime.remoting.bodies import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import RETRY_PREFIX, RequestCode

DEFAULT_MAX_RECONSUME_TIMES = 16
"""RocketMQ's default: a message failed this many times more goes to the dead-letter queue."""
TO_DLQ = -1
"""The delay level that asks the broker to dead-letter the message at once."""


def broker_address(instance: ClientInstance, broker_name: str) -> str | None:
    """The master address of ``broker_name`` from any cached route."""
    for route in list(instance.routes.values()):
        address = route.master(broker_name)
        if address is not None:
            return address
    return None


def send_back(
    instance: ClientInstance,
    group: str,
    msg: MessageExt,
    *,
    delay_level: int = 0,
    max_reconsume_times: int = DEFAULT_MAX_RECONSUME_TIMES,
    timeout: float = 3.0,
) -> None:
    """CONSUMER_SEND_MSG_BACK for ``msg``; returns once the broker accepted it, else raises a
    ClientError (BrokerError, ConnectError, RequestTimeoutError, NoRouteError)."""
    address = broker_address(instance, msg.broker_name)
    if address is None:
        # RocketMQ falls back to the store host recorded in the message.
        address = msg.store_host if msg.store_port else None
    if address is None:
        raise NoRouteError(msg.topic, f"no address for broker {msg.broker_name}")
    ext = {
        "offset": str(msg.commit_log_offset),
        "group": group,
        "delayLevel": str(delay_level),
        "originMsgId": msg.msg_id,
        "originTopic": msg.topic,
        "unitMode": "false",
        "maxReconsumeTimes": str(max_reconsume_times),
    }
    cmd = make_request(RequestCode.CONSUMER_SEND_MSG_BACK, ext)
    instance.remoting.invoke_ok(address, cmd, timeout, "send back")


INNER_PRODUCER_GROUP = "CLIENT_INNER_PRODUCER"
"""The group RocketMQ's clients send internal messages (a failed send-back's copy) under."""


def hand_back(
    instance: ClientInstance,
    group: str,
    msgs: list[MessageExt],
    *,
    delay_level: int,
    max_reconsume_times: int,
    timeout: float,
    namespace: str = "",
) -> tuple[list[int], list[int]]:
    """Send each of ``msgs`` back (``send_back``; when the broker refuses, a copy to the retry
    topic, ``resend_to_retry``), from a greenlet: (offsets handed back, offsets not)."""
    ok: list[int] = []
    failed: list[int] = []
    ns = Namespace.of(namespace)
    for m in msgs:
        if ns is not None:  # its listener saw the plain topic
            m.topic = ns.wrap(m.topic)
        try:
            send_back(
                instance,
                group,
                m,
                delay_level=delay_level,
                max_reconsume_times=max_reconsume_times,
                timeout=timeout,
            )
        except ClientError as exc:
            try:
                resend_to_retry(
                    instance,
                    group,
                    m,
                    delay_level=delay_level,
                    max_reconsume_times=max_reconsume_times,
                    timeout=timeout,
                )
            except ClientError as resend:
                logger.warning(
                    "client: send back of {} failed ({}), so did its copy to the retry topic ({})",
                    m,
                    exc,
                    resend,
                )
                failed.append(m.queue_offset)
                continue
            logger.info("client: send back of {} failed ({}); sent to the retry topic", m, exc)
        ok.append(m.queue_offset)
    return ok, failed


def retry_copy(
    group: str, msg: MessageExt, *, delay_level: int, max_reconsume_times: int
) -> Outgoing:
    """What RocketMQ's push consumer sends to ``%RETRY%<group>`` through its internal producer
    when CONSUMER_SEND_MSG_BACK failed: the body and properties of ``msg`` with RETRY_TOPIC
    (the original topic), ORIGIN_MESSAGE_ID, one more reconsume time and delay level 3 +
    reconsume times (or ``delay_level`` when the listener chose one), not transactional. The
    broker then treats it as a send-back (its retry or dead-letter rule)."""
    props = dict(msg.all_properties)
    props.pop(P.TRAN_MSG, None)
    props.pop(P.DELAY, None)
    props.setdefault(P.RETRY_TOPIC, msg.topic)
    props.setdefault(P.ORIGIN_MESSAGE_ID, msg.msg_id)
    level = delay_level if delay_level > 0 else 3 + msg.reconsume_times
    if delay_level >= 0:
        props[P.DELAY] = str(level)
    body = msg.body
    sys_flag = 0
    if len(body) >= COMPRESS_OVER:
        # RocketMQ's internal producer: its default compressor (zlib, level 5)
        body, sys_flag = DEFAULT_COMPRESSOR.compress(body), DEFAULT_COMPRESSOR.flag
    return Outgoing(
        topic=f"{RETRY_PREFIX}{group}",
        body=body,
        properties=P.encode_properties(props),
        sys_flag=sys_flag,
        flag=msg.flag,
        msg_id=props.get(P.UNIQ_KEY, ""),
        reconsume_times=msg.reconsume_times + 1 if delay_level >= 0 else max_reconsume_times + 1,
        max_reconsume_times=max_reconsume_times,
    )


def resend_to_retry(
    instance: ClientInstance,
    group: str,
    msg: MessageExt,
    *,
    delay_level: int = 0,
    max_reconsume_times: int = DEFAULT_MAX_RECONSUME_TIMES,
    timeout: float = 3.0,
) -> None:
    """Send ``retry_copy`` of ``msg`` to ``%RETRY%<group>`` on any broker that has it (a
    greenlet blocks until it is stored); raises a ClientError otherwise."""
    out = retry_copy(group, msg, delay_level=delay_level, max_reconsume_times=max_reconsume_times)
    outcome: gevent.event.AsyncResult = gevent.event.AsyncResult()
    sender = Sender(instance, INNER_PRODUCER_GROUP, retries=1)
    sender.begin(out, ROUND_ROBIN, timeout, lambda result, error: outcome.set((result, error)))
    got = outcome.wait(timeout + 1.0)
    if got is None:
        raise RequestTimeoutError(f"send to {out.topic}", timeout)
    if got[1] is not None:
        raise got[1]


def _by_broker(mqs: Iterable[MessageQueue]) -> dict[str, list[MessageQueue]]:
    out: dict[str, list[MessageQueue]] = defaultdict(list)
    for mq in mqs:
        out[mq.broker_name].append(mq)
    return out


def lock_queues(
    instance: ClientInstance, group: str, mqs: Iterable[MessageQueue], timeout: float = 3.0
) -> tuple[set[MessageQueue], set[str]]:
    """LOCK_BATCH_MQ for ``mqs`` at their brokers. Returns the queues now locked by this
    client and the names of the brokers that answered (a queue of a broker that answered but
    is not in the first set is held by another consumer; one of a broker that did not answer
    is in an unknown state)."""
    wanted = set(mqs)
    locked: set[MessageQueue] = set()
    answered: set[str] = set()
    calls = []
    names = []
    for broker_name, queues in sorted(_by_broker(wanted).items()):
        address = broker_address(instance, broker_name)
        if address is None:
            continue
        body = LockBatchRequestBody(
            consumer_group=group, client_id=instance.client_id, mq_set=sorted(queues)
        )
        calls.append((address, make_request(RequestCode.LOCK_BATCH_MQ, body=encode_body(body))))
        names.append(broker_name)
    results = instance.remoting.invoke_all(calls, timeout, "lock queues")
    for broker_name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException) or result.code != 0:
            continue
        try:
            answer = decode_body(LockBatchResponseBody, result.body)
        except ProtocolError:
            continue
        answered.add(broker_name)
        locked.update(mq for mq in answer.lock_ok_mq_set if mq in wanted)
    return locked, answered


def unlock_queues(
    instance: ClientInstance, group: str, mqs: Iterable[MessageQueue], timeout: float = 3.0
) -> int:
    """UNLOCK_BATCH_MQ for ``mqs`` at their brokers; the number of brokers that answered."""
    calls = []
    for broker_name, queues in sorted(_by_broker(mqs).items()):
        address = broker_address(instance, broker_name)
        if address is None:
            continue
        body = UnlockBatchRequestBody(
            consumer_group=group, client_id=instance.client_id, mq_set=sorted(queues)
        )
        calls.append((address, make_request(RequestCode.UNLOCK_BATCH_MQ, body=encode_body(body))))
    results = instance.remoting.invoke_all(calls, timeout, "unlock queues")
    return sum(1 for r in results if not isinstance(r, BaseException) and r.code == 0)
