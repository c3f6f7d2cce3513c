"""The statistics command of ``python -m runtime admin`` (mqadmin's name, flags and columns):
statsAll, every topic's rates and daily counts in and out and each consuming group's backlog,
from the masters' VIEW_BROKER_STATS_DATA items (TOPIC_PUT_NUMS, GROUP_GET_NUMS). ``runtime.admin``
adds it to its parser and runs it.
"""

from __future__ import annotations

import argparse

from actors.client import Admin, ClientError
from runtime.admin_format import table
from runtime.remoting.bodies import BrokerStatsData

COMMANDS = ("statsAll",)
HEADER = [
    "#Topic",
    "#Consumer Group",
    "#Accumulation",
    "#InTPS",
    "#OutTPS",
    "#InMsg24Hour",
    "#OutMsg24Hour",
]
SKIPPED_PREFIXES = ("%RETRY%", "%DLQ%")
"""Topics statsAll leaves out, as mqadmin does."""


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the command to ``sub`` (``ns``: the parent parser with ``-n``)."""
    stats = sub.add_parser(
        "statsAll", parents=[ns], help="every topic's rates and counts in and out, and backlogs"
    )
    stats.add_argument(
        "-a", "--activeTopic", dest="active", action="store_true", help="only topics with traffic"
    )
    stats.add_argument("-t", "--topic", dest="topic", type=str.strip, help="only this topic")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    if args.command != "statsAll":
        return None
    topics = [args.topic] if args.topic else admin.topic_list()
    rows = [HEADER]
    for topic in sorted(topics):
        if not topic.startswith(SKIPPED_PREFIXES):
            rows.extend(topic_rows(admin, topic, args.active))
    return table(rows)


def topic_rows(admin: Admin, topic: str, active: bool) -> list[list[str]]:
    """One row per group consuming ``topic`` (one with ``NO_CONSUMER`` when none does): the
    group's backlog, the topic's rate in and the group's out over the last minute, and the
    counts of the last day, summed over the topic's masters."""
    try:
        masters = list(admin._route_masters(topic))
    except ClientError:
        return []  # a topic without a route (no broker serves it now)
    in_tps, in_day = _summed(admin, masters, "TOPIC_PUT_NUMS", topic)
    groups = admin.topic_consumers(topic)
    if not groups:
        if active and in_day == 0:
            return []
        return [[topic, "", "0", f"{in_tps:.2f}", "0.00", str(in_day), "NO_CONSUMER"]]
    rows = []
    for group in groups:
        backlog = sum(p.diff for p in admin.consume_stats(group, topic))
        out_tps, out_day = _summed(admin, masters, "GROUP_GET_NUMS", f"{topic}@{group}")
        if active and in_day == 0 and out_day == 0:
            continue
        row = [topic, group, str(backlog), f"{in_tps:.2f}", f"{out_tps:.2f}", str(in_day)]
        rows.append([*row, str(out_day)])
    return rows


def _summed(admin: Admin, masters: list[str], name: str, key: str) -> tuple[float, int]:
    """(per second over the last minute, count over the last day) summed over ``masters``."""
    tps, day = 0.0, 0
    for address in masters:
        try:
            data = admin.broker_stats(address, name, key)
        except ClientError:
            continue  # a master that does not answer counts nothing, as mqadmin
        if data is not None:
            tps += data.stats_minute.tps
            day += _day_count(data)
    return tps, day


def _day_count(data: BrokerStatsData) -> int:
    """mqadmin's ``compute24HourSum``: the day's count, else the hour's, else the minute's."""
    for item in (data.stats_day, data.stats_hour, data.stats_minute):
        if item.sum:
            return item.sum
    return 0
