"""The consumer-group commands of ``python -m runtime admin`` beyond one group's progress and
status: cloneGroupOffset (mqadmin's name, flags and output line) and ``consumerProgress``
without ``-g`` (every group: ``all_groups_progress``). ``runtime.admin`` adds them to its parser
and runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actors.client import Admin, BrokerError, ClientError
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, ResponseCode

COMMANDS = ("cloneGroupOffset",)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    ns: argparse.ArgumentParser,
    boolean: Callable[[str], bool],
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``; ``boolean``: the
    true|false argument type)."""
    clone = sub.add_parser(
        "cloneGroupOffset", parents=[ns], help="give a group another group's offsets"
    )
    clone.add_argument("-s", "--src-group", required=True, type=str.strip)
    clone.add_argument("-d", "--dest-group", required=True, type=str.strip)
    clone.add_argument("-t", "--topic", required=True, type=str.strip)
    clone.add_argument(
        "-o",
        "--offline",
        type=boolean,
        default=False,
        metavar="true|false",
        help="clone even when the source group is online without this topic (default false)",
    )


def topics_with_groups(admin: Admin) -> list[str]:
    """mqadmin topicList -c: each topic (not retry or dead-letter ones) with its cluster and
    the groups that consume it, a line per group (one with no group when none does); a topic
    whose route or consumers cannot be read gets blank columns, as mqadmin prints it."""
    rows = [f"{'#Cluster Name':<20s}  {'#Topic':<48s}  {'#Consumer Group':<48s}"]
    for topic in sorted(admin.topic_list()):
        if topic.startswith((RETRY_PREFIX, DLQ_PREFIX)):
            continue
        cluster, groups = "", [""]
        try:
            cluster = (admin.topic_clusters(topic) or [""])[0]
            groups = admin.topic_consumers(topic) or [""]
        except ClientError:
            pass
        rows += [f"{cluster:<20s}  {topic:<48s}  {group:<48s}".rstrip() for group in groups]
    return rows


def all_groups_progress(admin: Admin) -> list[str]:
    """mqadmin consumerProgress without a group: every group that has a ``%RETRY%`` topic
    (every clustering group that ever consumed), with its online members' count, client
    version, type and model, and its total lag; OFFLINE when no member is online."""
    groups = sorted(
        t[len(RETRY_PREFIX) :] for t in admin.topic_list() if t.startswith(RETRY_PREFIX)
    )
    rows = [
        f"{'#Group':<64s}  {'#Count':<6s}  {'#Version':<24s} {'#Type':<5s}  {'#Model':<14s}  "
        f"{'#TPS':<7s}  #Diff Total"
    ]
    for group in groups:
        try:
            found = admin.consumer_connections(group)
            members = found.connection_set
        except BrokerError as exc:
            if exc.code != ResponseCode.CONSUMER_NOT_ONLINE:
                raise
            found, members = None, []
        diff = sum(r.diff for r in admin.consume_stats(group))
        online = found is not None and bool(members)
        version = str(max(m.version for m in members)) if online else "OFFLINE"
        kind = ""
        model = ""
        if online and found is not None:
            kind = "PULL" if found.consume_type == "CONSUME_ACTIVELY" else "PUSH"
            model = found.message_model if kind == "PUSH" else ""
        rows.append(
            f"{group:<64s}  {len(members):<6d}  {version:<24s} {kind:<5s}  {model:<14s}  "
            f"{0:<7d}  {diff}"
        )
    return rows


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    if args.command == "cloneGroupOffset":
        admin.clone_group_offset(args.src_group, args.dest_group, args.topic, offline=args.offline)
        return [
            f"clone group offset success. srcGroup[{args.src_group}], "
            f"destGroup=[{args.dest_group}], topic[{args.topic}]"
        ]
    return None
