"""The consume-queue commands of ``python -m runtime admin`` (mqadmin's names, flags and
output): queryCq (a consume queue's entries), getConsumerStatus (each member's offsets as it
reports them), cleanExpiredCQ, cleanUnusedTopic and resumeCheckHalfMessage. ``runtime.admin``
adds them to its parser and runs them.
"""

from __future__ import annotations

import argparse
import json

import msgspec

from actors.client import Admin
from runtime.remoting.admin_bodies import ConsumeQueueData

COMMANDS = (
    "queryCq",
    "getConsumerStatus",
    "cleanExpiredCQ",
    "cleanUnusedTopic",
    "resumeCheckHalfMessage",
)

RULE = "======================================"


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    cq = sub.add_parser("queryCq", parents=[ns], help="a consume queue's entries")
    cq.add_argument("-t", "--topic", required=True, type=str.strip)
    cq.add_argument("-q", "--queue", required=True, type=int, help="queue id")
    cq.add_argument("-i", "--index", required=True, type=int, help="first queue offset")
    cq.add_argument("-c", "--count", type=int, default=10, help="how many (10)")
    cq.add_argument("-b", "--broker", help="host:port (default: the topic's first master)")
    cq.add_argument("-g", "--consumer", help="with this group's subscription and view")
    status = sub.add_parser(
        "getConsumerStatus", parents=[ns], help="each member's offsets, as it reports them"
    )
    status.add_argument("-g", "--group", required=True, type=str.strip)
    status.add_argument("-t", "--topic", required=True, type=str.strip)
    status.add_argument("-i", "--origin-client-id", help="only this member (client id)")
    for name, what in (
        ("cleanExpiredCQ", "drop consume-queue files below the commit log"),
        ("cleanUnusedTopic", "delete topics that have queues but no config"),
    ):
        clean = sub.add_parser(name, parents=[ns], help=what)
        where = clean.add_mutually_exclusive_group()
        where.add_argument("-c", "--cluster", help="on every master of this cluster")
        where.add_argument("-b", "--broker", help="on this broker (host:port)")
    resume = sub.add_parser(
        "resumeCheckHalfMessage", parents=[ns], help="check a half message back again"
    )
    resume.add_argument("-i", "--id", required=True, help="its offset message id (32 or 56 hex)")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    command = args.command
    if command == "queryCq":
        return query_cq_lines(admin, args)
    if command == "getConsumerStatus":
        table = admin.consumer_status(args.group, args.topic, args.origin_client_id)
        lines = [
            f"get consumer status from client. group={args.group}, topic={args.topic}, "
            f"originClientId={args.origin_client_id or ''}",
            f"{'#clientId':<50s}  {'#brokerName':<15s}  {'#queueId':<15s}  {'#offset':<20s}",
        ]
        for client_id, queues in sorted(table.items()):
            for mq, offset in sorted(queues.items()):
                lines.append(
                    f"{client_id:<50s}  {mq.broker_name:<15s}  {mq.queue_id:<15d}  {offset:<20d}"
                )
        return lines
    if command == "cleanExpiredCQ":
        admin.clean_expired_consume_queues(cluster=args.cluster, broker_addr=args.broker)
        return ["success"]
    if command == "cleanUnusedTopic":
        admin.clean_unused_topics(cluster=args.cluster, broker_addr=args.broker)
        return ["success"]
    if command == "resumeCheckHalfMessage":
        admin.resume_check_half_message(args.id)
        return [f"resume check half message {args.id} success"]
    return None


def query_cq_lines(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin queryCq's output: subscription, filter, range, then each entry."""
    body = admin.query_consume_queue(
        args.topic, args.queue, args.index, args.count, group=args.consumer, broker_addr=args.broker
    )
    lines: list[str] = []
    if body.subscription_data is not None:
        subscription = msgspec.to_builtins(body.subscription_data)
        lines += ["Subscription data: ", json.dumps(subscription, indent="\t"), RULE]
    if body.filter_data is not None:
        lines += ["Filter data: ", body.filter_data, RULE]
    lines += ["Queue data: ", f"max: {body.max_queue_index}, min: {body.min_queue_index}", RULE]
    for i, entry in enumerate(body.queue_data or [], start=args.index):
        lines += [f"idx: {i}", entry_text(entry), RULE]
    return lines


def entry_text(e: ConsumeQueueData) -> str:
    """RocketMQ's ``ConsumeQueueData.toString()``."""
    return (
        f"ConsumeQueueData{{physicOffset={e.physic_offset}, physicSize={e.physic_size}, "
        f"tagsCode={e.tags_code}, extendDataJson='{_java(e.extend_data_json)}', "
        f"bitMap='{_java(e.bit_map)}', eval={str(e.eval).lower()}, msg='{_java(e.msg)}'}}"
    )


def _java(text: str | None) -> str:
    """A string as Java concatenates it ("null" for null)."""
    return "null" if text is None else text
