"""The trace hooks (RocketMQ's SendMessageTraceHookImpl, ConsumeMessageTraceHookImpl and
EndTransactionTraceHookImpl): what a producer, push consumer or lite pull consumer with
``enable_msg_trace=True`` records of each send, listener call or ``poll``, and a transaction
producer of each END_TRANSACTION.

They only build ``TraceContext`` objects and hand them to the dispatcher
(``actors.client.trace_dispatcher``), which queues them without waiting; encoding and sending
happen on the dispatcher's own thread. As in RocketMQ:

- **Pub**, at a send's ``after``, for a send the broker answered with its trace switch on
  (TRACE_ON not ``false`` in the answer): success is SEND_OK (the other statuses, stored
  without their durability condition, are traced as failed). A send that raised (no result),
  a oneway send and a send to the trace topic itself are not traced. costTime is the ms from
  ``before`` to ``after``; storeHost the broker's address; msgType Normal_Msg, Trans_Msg_Half
  (a transaction's half message) or Delay_Msg; regionId the broker's (MSG_REGION in the
  answer; DefaultRegion when it names none). A ``send_batch`` is one Pub: the messages'
  msgIds joined with commas, no tags or keys, the bodies' total length.
- **SubBefore** at a listener call's ``before``: one record per message (a message whose
  TRACE_ON property is ``false`` is left out), all with one requestId; **SubAfter** at its
  ``after``: the same messages and requestId, the listener's success, its time divided by the
  number of messages, and ConsumeReturnType's ordinal (SUCCESS 0, EXCEPTION 2, FAILED 4).
  regionId: the MSG_REGION the broker stored in the (last traced) message. A lite consumer's
  ``poll`` calls both at once (``ConsumeHooks.polled``).
- **EndTransaction** (``end_transaction``), for each END_TRANSACTION a transaction producer
  sends, after its local transaction and after each check-back: group, topic, tags, keys,
  msgId, the broker's address, msgType Trans_msg_Commit (whatever the state, as RocketMQ),
  transactionId, the state (COMMIT_MESSAGE, ROLLBACK_MESSAGE, UNKNOW) and whether it answers
  a check-back; regionId the message's own MSG_REGION (DefaultRegion for a caller's message);
  the broker's trace switch is not looked at.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from actors.client.consume_hooks import CONTEXT_TYPE
from actors.client.hooks import ConsumeHookContext, SendContext
from actors.client.message import LocalTransactionState, Message, MessageExt, SendStatus
from actors.client.namespace import without_namespace
from actors.client.trace_data import (
    CONSUME_RETURN_TYPES,
    DEFAULT_REGION,
    MESSAGE_TYPES,
    TraceBean,
    TraceContext,
    TraceType,
)
from actors.client.trace_dispatcher import TraceDispatcher
from runtime.remoting import properties as P

TRACE_CONTEXT = "mqTraceContext"
"""The ``ctx.props`` key a trace hook keeps its ``TraceContext`` under, from before to after."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _keys(msg: Message) -> str | None:
    keys = msg.keys_list()
    return P.KEY_SEPARATOR.join(keys) if keys else None


class SendTraceHook:
    """Records a Pub for each send the broker answered (a send hook)."""

    def __init__(self, dispatcher: TraceDispatcher) -> None:
        self.dispatcher = dispatcher

    def before(self, ctx: SendContext) -> None:
        msg = ctx.message
        msgs: Sequence[Message] = [msg] if isinstance(msg, Message) else msg
        if not msgs or msgs[0].topic.startswith(self.dispatcher.trace_topic):
            return
        one = msgs[0] if isinstance(msg, Message) else None
        bean = TraceBean(
            topic=without_namespace(msgs[0].topic),
            tags=one.tags if one is not None else None,
            keys=_keys(one) if one is not None else None,
            body_length=sum(len(m.body_bytes()) for m in msgs),
            msg_type=ctx.msg_type.value,
        )
        ctx.props[TRACE_CONTEXT] = TraceContext(
            trace_type=TraceType.Pub, group=without_namespace(ctx.group), beans=[bean]
        )

    def after(self, ctx: SendContext) -> None:
        trace = ctx.props.get(TRACE_CONTEXT)
        result = ctx.send_result
        if trace is None or result is None:
            return
        if not result.trace_on:  # the broker's traceOn=false: RocketMQ skips the record
            return
        trace.cost_time = _now_ms() - trace.timestamp
        trace.success = result.status is SendStatus.SEND_OK
        trace.region_id = result.region_id
        bean = trace.beans[0]
        bean.msg_id = result.msg_id
        bean.offset_msg_id = result.offset_msg_id
        bean.store_host = ctx.broker_addr or ""
        bean.store_time = trace.timestamp + trace.cost_time // 2
        self.dispatcher.append(trace)


class ConsumeTraceHook:
    """Records a SubBefore and a SubAfter for each listener call (a consume hook)."""

    def __init__(self, dispatcher: TraceDispatcher) -> None:
        self.dispatcher = dispatcher

    def before(self, ctx: ConsumeHookContext) -> None:
        beans: list[TraceBean] = []
        region = DEFAULT_REGION
        for msg in ctx.messages:
            props = msg.all_properties
            if props.get(P.TRACE_ON) == "false":
                continue
            region = props.get(P.MSG_REGION) or DEFAULT_REGION
            beans.append(_consumed(msg, props))
        if not beans:
            return
        trace = TraceContext(
            trace_type=TraceType.SubBefore,
            group=without_namespace(ctx.group),
            region_id=region,
            beans=beans,
        )
        ctx.props[TRACE_CONTEXT] = trace
        self.dispatcher.append(trace)

    def after(self, ctx: ConsumeHookContext) -> None:
        before = ctx.props.get(TRACE_CONTEXT)
        if before is None or not ctx.messages:
            return
        kind = ctx.props.get(CONTEXT_TYPE)
        self.dispatcher.append(
            TraceContext(
                trace_type=TraceType.SubAfter,
                region_id=before.region_id,
                group=before.group,
                request_id=before.request_id,
                success=ctx.success,
                cost_time=(_now_ms() - before.timestamp) // len(ctx.messages),
                context_code=CONSUME_RETURN_TYPES.index(kind)
                if kind in CONSUME_RETURN_TYPES
                else 0,
                beans=before.beans,
            )
        )


def _consumed(msg: MessageExt, props: dict[str, str]) -> TraceBean:
    return TraceBean(
        topic=without_namespace(msg.topic),
        msg_id=msg.msg_id,
        tags=props.get(P.TAGS),
        keys=props.get(P.KEYS),
        store_time=msg.store_timestamp,
        body_length=len(msg.body),
        retry_times=msg.reconsume_times,
    )


def end_transaction(
    dispatcher: TraceDispatcher,
    group: str,
    msg: Message | MessageExt,
    *,
    msg_id: str,
    transaction_id: str | None,
    broker_addr: str | None,
    state: LocalTransactionState,
    from_check: bool,
) -> None:
    """Record an EndTransaction (RocketMQ's EndTransactionTraceHookImpl): ``msg`` is the
    caller's message after a local transaction, the stored one (a ``MessageExt``) after a
    check-back; ``broker_addr`` where END_TRANSACTION went (None: it could not be sent).

    As RocketMQ, the region is the message's own MSG_REGION property (the stored message's
    after a check-back; a caller's message has none, so DefaultRegion after a local
    transaction), and the broker's trace switch (TRACE_ON) is not looked at."""
    if msg.topic.startswith(dispatcher.trace_topic):
        return
    if isinstance(msg, MessageExt):
        props = msg.all_properties
        tags, keys = props.get(P.TAGS), props.get(P.KEYS)
    else:
        props = dict(msg.properties)
        tags, keys = msg.tags, _keys(msg)
    bean = TraceBean(
        topic=without_namespace(msg.topic),
        msg_id=msg_id,
        tags=tags,
        keys=keys,
        store_host=broker_addr or "",
        msg_type=MESSAGE_TYPES[2],  # Trans_msg_Commit, whatever the state (as RocketMQ)
        transaction_id=transaction_id,
        transaction_state=state.value,
        from_transaction_check=from_check,
    )
    dispatcher.append(
        TraceContext(
            trace_type=TraceType.EndTransaction,
            group=without_namespace(group),
            region_id=props.get(P.MSG_REGION) or DEFAULT_REGION,
            beans=[bean],
        )
    )
