"""The message-query commands of ``python -m runtime admin`` (mqadmin's names, flags and
output): queryMsgById, queryMsgByKey, queryMsgByUniqueKey, and ``message``, one message as
they (and queryMsgByOffset) print it. ``runtime.admin`` adds them to its parser and runs them.
"""

from __future__ import annotations

import argparse
import json

from actors.client import Admin, ClientError, MessageExt
from runtime.admin_format import table, time_text, timestamp

COMMANDS = ("queryMsgById", "queryMsgByKey", "queryMsgByUniqueKey")


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    by_id = sub.add_parser("queryMsgById", parents=[ns], help="a message by its offset msg id")
    by_id.add_argument(
        "-i",
        "--id",
        required=True,
        help="offset message id (32 hex digits, 56 for an IPv6 store host)",
    )
    by_id.add_argument("-g", "--group", help="with -d: the consumer group to consume it")
    by_id.add_argument("-d", "--client-id", help="with -g: the member (client id) to consume it")
    by_key = sub.add_parser("queryMsgByKey", parents=[ns], help="messages by a key")
    by_key.add_argument("-t", "--topic", required=True)
    by_key.add_argument("-k", "--key", required=True)
    by_key.add_argument("-m", "--max", type=int, default=64, help="per broker (64, mqadmin's)")
    form = "ms or yyyy-MM-dd#HH:mm:ss:SSS"
    by_key.add_argument("-b", "--begin-timestamp", type=timestamp, default=0, help=f"from ({form})")
    by_key.add_argument(
        "-e", "--end-timestamp", type=timestamp, default=2**63 - 1, help=f"until ({form})"
    )
    by_uniq = sub.add_parser(
        "queryMsgByUniqueKey", parents=[ns], help="a message by the producer's msg id"
    )
    by_uniq.add_argument("-t", "--topic", required=True)
    by_uniq.add_argument("-i", "--id", required=True, help="the UNIQ_KEY (SendResult.msg_id)")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say: queryMsgById's ``-g`` and ``-d`` go together (a usage error)."""
    if getattr(args, "command", None) != "queryMsgById":
        return
    if bool(args.group) != bool(args.client_id):
        parser.error("queryMsgById: -g and -d go together (the consumer to consume it)")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    command = args.command
    if command == "queryMsgById":
        lines = message(admin.view_message(args.id))
        if args.group and args.client_id:
            r = admin.consume_message_directly(args.group, args.client_id, args.id)
            lines.append(
                f"ConsumeMessageDirectlyResult [order={str(r.order).lower()}, "
                f"autoCommit={str(r.auto_commit).lower()}, consumeResult={r.consume_result}, "
                f"remark={r.remark}, spentTimeMills={r.spent_time_mills}]"
            )
        return lines
    if command == "queryMsgByKey":
        rows = [["#Message ID", "#Offset Message ID", "#QID", "#Offset", "#Store Time"]]
        found = admin.query_messages(
            args.topic,
            args.key,
            max_num=args.max,
            begin_ms=args.begin_timestamp,
            end_ms=args.end_timestamp,
        )
        for m in sorted(found, key=lambda m: (m.store_timestamp, m.commit_log_offset)):
            rows.append(
                [
                    m.msg_id,
                    m.offset_msg_id,
                    str(m.queue_id),
                    str(m.queue_offset),
                    time_text(m.store_timestamp),
                ]
            )
        return table(rows)
    if command == "queryMsgByUniqueKey":
        found = [m for m in admin.query_messages(args.topic, args.id) if m.msg_id == args.id]
        if not found:
            raise ClientError(f"no message of {args.topic} has msg id {args.id}")
        lines: list[str] = []
        for m in found:
            lines.extend([*message(m), ""])
        return lines[:-1]
    return None


def message(m: MessageExt) -> list[str]:
    """One message as mqadmin's queryMsgById prints it (the body as text, up to 4 KiB)."""
    body = m.body[:4096].decode("utf-8", errors="replace")
    more = f" ... ({len(m.body)} bytes)" if len(m.body) > 4096 else ""
    fields = [
        ("OffsetID", m.offset_msg_id),
        ("Msg ID", m.msg_id),
        ("Topic", m.topic),
        ("Tags", f"[{m.tags or ''}]"),
        ("Keys", f"[{' '.join(m.keys)}]"),
        ("Queue ID", str(m.queue_id)),
        ("Queue Offset", str(m.queue_offset)),
        ("CommitLog Offset", str(m.commit_log_offset)),
        ("Reconsume Times", str(m.reconsume_times)),
        ("Born Timestamp", time_text(m.born_timestamp)),
        ("Store Timestamp", time_text(m.store_timestamp)),
        ("Born Host", m.born_host),
        ("Store Host", m.store_host),
        ("System Flag", str(m.sys_flag)),
        ("Properties", json.dumps(m.all_properties, sort_keys=True)),
        ("Message Body", body + more),
    ]
    return [f"{name + ':':<20s} {value}" for name, value in fields]
