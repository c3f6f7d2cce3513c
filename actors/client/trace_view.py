"""Reading message traces back: RocketMQ's TraceView, and ``Admin.query_msg_trace`` (what
``mqadmin queryMsgTraceById`` does: QUERY_MESSAGE on the trace topic by the msgId, each trace
message's records decoded, those of that msgId kept)."""

from __future__ import annotations

import msgspec

from actors.client.admin_port import AdminPort
from actors.client.message import MessageExt
from actors.client.trace_data import RMQ_SYS_TRACE_TOPIC, decode
from runtime.hostport import ip_text

MAX_TRACE_MESSAGES = 64
"""How many trace messages a query asks each broker for (mqadmin's default)."""


class TraceView(msgspec.Struct, frozen=True, kw_only=True):
    """One trace record of a message (RocketMQ's TraceView): ``msg_type`` is the record's type
    (``Pub``, ``SubBefore``, ``SubAfter``, ``EndTransaction``), ``status`` ``success`` or
    ``failed``, ``timestamp`` in ms, ``cost_time`` in ms, ``client_host`` the IP that sent the
    trace message (its born host), ``region_id`` the record's region. A SubAfter names no
    topic, tags or store host. An EndTransaction also has ``transaction_id``,
    ``transaction_state`` (COMMIT_MESSAGE, ROLLBACK_MESSAGE, UNKNOW) and
    ``from_transaction_check`` (actormq's additions: RocketMQ's TraceView leaves them out)."""

    msg_id: str
    msg_type: str
    group: str
    status: str
    cost_time: int
    timestamp: int
    client_host: str
    topic: str = ""
    tags: str | None = ""
    keys: str | None = ""
    store_host: str = ""
    offset_msg_id: str = ""
    region_id: str = ""
    transaction_id: str | None = None
    transaction_state: str | None = None
    from_transaction_check: bool = False


def trace_views(msg_id: str, trace_message: MessageExt) -> list[TraceView]:
    """The records of ``trace_message`` about ``msg_id``, in their order (RocketMQ's
    TraceView.decodeFromTraceTransData)."""
    body = trace_message.body.decode("utf-8", errors="replace")
    client_host = ip_text(trace_message.born_ip)
    views: list[TraceView] = []
    for ctx in decode(body):
        bean = ctx.beans[0]
        if bean.msg_id != msg_id:
            continue
        views.append(
            TraceView(
                msg_id=bean.msg_id,
                msg_type=ctx.trace_type.value,
                group=ctx.group,
                status="success" if ctx.success else "failed",
                cost_time=ctx.cost_time,
                timestamp=ctx.timestamp,
                client_host=client_host,
                topic=bean.topic,
                tags=bean.tags,
                keys=bean.keys,
                store_host=bean.store_host,
                offset_msg_id=bean.offset_msg_id,
                region_id=ctx.region_id,
                transaction_id=bean.transaction_id,
                transaction_state=bean.transaction_state,
                from_transaction_check=bean.from_transaction_check,
            )
        )
    return views


class TraceAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    def query_msg_trace(
        self,
        msg_id: str,
        trace_topic: str = RMQ_SYS_TRACE_TOPIC,
        *,
        max_num: int = MAX_TRACE_MESSAGES,
        begin_ms: int = 0,
        end_ms: int = 2**63 - 1,
    ) -> list[TraceView]:
        """The trace records of the message ``msg_id`` (the producer's msg id, UNIQ_KEY) that
        the trace messages of ``trace_topic`` stored between the two times hold, oldest trace
        message first (up to ``max_num`` trace messages per broker)."""
        found = self.query_messages(
            trace_topic, msg_id, max_num=max_num, begin_ms=begin_ms, end_ms=end_ms
        )
        views: list[TraceView] = []
        for message in sorted(found, key=lambda m: (m.store_timestamp, m.commit_log_offset)):
            views.extend(trace_views(msg_id, message))
        return views
