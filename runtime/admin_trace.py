"""The message-trace command of ``python -m runtime admin`` (mqadmin's name, flags and output):
queryMsgTraceById, the trace records of one message that traced clients (``enable_msg_trace``,
or RocketMQ's ``enableMsgTrace``) sent to the trace topic. ``runtime.admin`` adds it to its
parser and runs it.
"""

from __future__ import annotations

import argparse
import time

from actors.client import Admin
from actors.client.trace_data import RMQ_SYS_TRACE_TOPIC
from actors.client.trace_view import MAX_TRACE_MESSAGES, TraceView

COMMANDS = ("queryMsgTraceById",)
ROW = "{:<10s} {:<20s} {:<20s} {:<20s} {:<10s} {:<10s}"
"""mqadmin's row: ``%-10s %-20s %-20s %-20s %-10s %-10s``."""


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the command to ``sub`` (``ns``: the parent parser with ``-n``)."""
    trace = sub.add_parser("queryMsgTraceById", parents=[ns], help="a message's trace")
    trace.add_argument("-i", "--msgId", dest="id", required=True, type=str.strip)
    trace.add_argument(
        "-t", "--traceTopic", dest="trace_topic", default=RMQ_SYS_TRACE_TOPIC, type=str.strip
    )
    trace.add_argument("-b", "--beginTimestamp", dest="begin", type=int, default=0, help="ms")
    trace.add_argument("-e", "--endTimestamp", dest="end", type=int, default=2**63 - 1)
    trace.add_argument(
        "-num", "--maxNum", dest="max_num", type=int, default=MAX_TRACE_MESSAGES, help="(64)"
    )


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    if args.command != "queryMsgTraceById":
        return None
    views = admin.query_msg_trace(
        args.id, args.trace_topic, max_num=args.max_num, begin_ms=args.begin, end_ms=args.end
    )
    return trace_lines(views)


def trace_lines(views: list[TraceView]) -> list[str]:
    """The views as mqadmin prints them: each Pub under its own header, then the SubAfter
    records under one header per consumer group (in the order the groups first appear), a
    blank line after each block. SubBefore records are not printed. EndTransaction records,
    which mqadmin leaves out, come between the Pubs and the consumers, under one header of
    their own: type ``EndTx``, producer group, client host, time, the transaction state and
    whether it answered a check-back."""
    lines: list[str] = []
    ends: list[TraceView] = []
    consumers: dict[str, list[TraceView]] = {}
    for view in views:
        if view.msg_type == "Pub":
            lines.append(
                ROW.format(
                    "#Type", "#ProducerGroup", "#ClientHost", "#SendTime", "#CostTimes", "#Status"
                )
            )
            lines.append(_row("Pub", view))
            lines.append("")
        if view.msg_type == "EndTransaction":
            ends.append(view)
        if view.msg_type == "SubAfter":
            consumers.setdefault(view.group, []).append(view)
    if ends:
        lines.append(
            ROW.format("#Type", "#ProducerGroup", "#ClientHost", "#EndTime", "#State", "#FromCheck")
        )
        lines.extend(_end_row(view) for view in ends)
        lines.append("")
    for group_views in consumers.values():
        lines.append(
            ROW.format(
                "#Type", "#ConsumerGroup", "#ClientHost", "#ConsumerTime", "#CostTimes", "#Status"
            )
        )
        lines.extend(_row("Sub", view) for view in group_views)
        lines.append("")
    return lines


def _when(view: TraceView) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.timestamp / 1000))


def _end_row(view: TraceView) -> str:
    check = "true" if view.from_transaction_check else "false"
    return ROW.format(
        "EndTx", view.group, view.client_host, _when(view), view.transaction_state or "", check
    )


def _row(kind: str, view: TraceView) -> str:
    return ROW.format(
        kind, view.group, view.client_host, _when(view), f"{view.cost_time}ms", view.status
    )
