"""The consumer- and producer-group commands of ``python -m runtime admin`` (mqadmin's names,
flags and output): consumerProgress (one group's queues with ``-g``, every group's summary
without: ``all_groups_progress``), consumerConnection, consumerStatus (``running_info_lines``
for one member), producerConnection, cloneGroupOffset and brokerConsumeStats (every group's
queues on one broker); and ``topics_with_groups`` for topicList -c. ``runtime.admin`` adds them
to its parser and runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actors.client import Admin, BrokerError, ClientError, ConsumerRunningInfo
from runtime.admin_format import table, time_text
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, ResponseCode
from runtime.remoting.running_info import PROP_CLIENT_VERSION

COMMANDS = (
    "consumerProgress",
    "consumerConnection",
    "consumerStatus",
    "producerConnection",
    "cloneGroupOffset",
    "brokerConsumeStats",
)


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
    stats = sub.add_parser(
        "brokerConsumeStats", parents=[ns], help="every group's offsets and lag on one broker"
    )
    stats.add_argument("-b", "--brokerAddr", dest="broker", required=True, type=str.strip)
    stats.add_argument(
        "-l", "--level", type=int, default=0, help="print only queues with at least this diff"
    )
    stats.add_argument(
        "-o",
        "--order",
        type=boolean,
        default=False,
        metavar="true|false",
        help="only orderly topics (default false)",
    )
    stats.add_argument(
        "-t", "--timeoutMillis", dest="timeout_ms", type=int, default=50_000, metavar="MS"
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


def broker_progress(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin brokerConsumeStats: per group and queue on one broker its offsets, diff and the
    store time of the last message consumed; as mqadmin, only queues the group consumed from
    (a last time) with a diff of at least ``-l``; then the broker's total diff."""
    found = admin.broker_consume_stats(
        args.broker, order_only=args.order, timeout=args.timeout_ms / 1000
    )
    rows = [["#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset"]]
    rows[0] += ["#Diff", "#LastTime"]
    for group, queues in found.groups.items():
        for r in queues:
            if r.last_consumed_ms <= 0 or r.broker_offset - r.consumer_offset < args.level:
                continue
            rows.append(
                [
                    r.queue.topic,
                    group,
                    r.queue.broker_name,
                    str(r.queue.queue_id),
                    str(r.broker_offset),
                    str(r.consumer_offset),
                    str(r.broker_offset - r.consumer_offset),
                    time_text(r.last_consumed_ms),
                ]
            )
    return [*table(rows), "", f"Diff Total: {found.total_diff}"]


def _check_online(admin: Admin, group: str) -> None:
    """consumerProgress -g of a group without committed offsets, as mqadmin (RocketMQ 5's
    examineConsumeStats): a failure unless the group is online clustering (a typo'd or
    gone group must not read as "Diff Total: 0")."""
    try:
        found = admin.consumer_connections(group)
    except BrokerError as exc:
        if exc.code != ResponseCode.CONSUMER_NOT_ONLINE:
            raise
        found = None
    if found is None or not found.connection_set:
        raise ClientError(
            f"Not found the consumer group consume stats of {group}: no committed offsets, "
            "and the group is not online"
        )
    if found.message_model == "BROADCASTING":
        raise ClientError(
            f"Not found the consumer group consume stats of {group}: no committed offsets, "
            "the group consumes in broadcast mode (its offsets are kept by its members)"
        )


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    command = args.command
    if command == "brokerConsumeStats":
        return broker_progress(admin, args)
    if command == "consumerProgress" and not args.group:
        return all_groups_progress(admin)
    if command == "consumerProgress":
        header = ["#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset"]
        rows = [[*header, "#Diff", "#LastTime"]]
        stats = admin.consume_stats(args.group, args.topic)
        if not stats:
            _check_online(admin, args.group)
        for r in stats:
            rows.append(
                [
                    r.queue.topic,
                    r.queue.broker_name,
                    str(r.queue.queue_id),
                    str(r.broker_offset),
                    str(r.consumer_offset),
                    str(r.diff),
                    time_text(r.last_consumed_ms),
                ]
            )
        return [*table(rows), "", f"Diff Total: {sum(r.diff for r in stats)}"]
    if command == "consumerConnection":
        found = admin.consumer_connections(args.group)
        rows = [["#ClientId", "#ClientAddr", "#Language", "#Version"]]
        for c in found.connection_set:
            rows.append([c.client_id, c.client_addr, c.language, str(c.version)])
        subs = [["#Topic", "#SubExpression"]]
        for topic, sub in sorted(found.subscription_table.items()):
            subs.append([topic, sub.sub_string])
        return [
            *table(rows),
            "",
            "Below is subscription:",
            *table(subs),
            "",
            f"ConsumeType: {found.consume_type}",
            f"MessageModel: {found.message_model}",
            f"ConsumeFromWhere: {found.consume_from_where}",
        ]
    if command == "consumerStatus":
        if args.client_id:
            info = admin.consumer_running_info(args.group, args.client_id, jstack=args.jstack)
            return running_info_lines(info)
        return _group_status(admin, args.group, args.jstack)
    if command == "producerConnection":
        rows = [["#ClientId", "#ClientAddr", "#Language", "#Version"]]
        for c in admin.producer_connections(args.group, args.topic):
            rows.append([c.client_id, c.client_addr, c.language, str(c.version)])
        return table(rows)
    if command == "cloneGroupOffset":
        admin.clone_group_offset(args.src_group, args.dest_group, args.topic, offline=args.offline)
        return [
            f"clone group offset success. srcGroup[{args.src_group}], "
            f"destGroup=[{args.dest_group}], topic[{args.topic}]"
        ]
    return None


def _group_status(admin: Admin, group: str, jstack: bool) -> list[str]:
    """mqadmin consumerStatus without -i: one line per member, then whether the members
    subscribe alike and hold disjoint queues."""
    rows = [["#Index", "#ClientId", "#Version", "#Queues", "#Cached Msgs", "#Cached MiB"]]
    found: dict[str, ConsumerRunningInfo] = {}
    failed: list[str] = []
    members = admin.consumer_connections(group).connection_set
    for index, c in enumerate(members, 1):
        try:
            info = admin.consumer_running_info(group, c.client_id, jstack=jstack)
        except ClientError as exc:
            rows.append([f"{index:03d}", c.client_id, str(c.version), "-", "-", "-"])
            failed.append(f"{c.client_id}: {exc}")
            continue
        found[c.client_id] = info
        pqs = info.mq_table.values()
        rows.append(
            [
                f"{index:03d}",
                c.client_id,
                info.properties.get(PROP_CLIENT_VERSION, str(c.version)),
                str(len(info.mq_table)),
                str(sum(p.cached_msg_count for p in pqs)),
                str(sum(p.cached_msg_size_in_mib for p in pqs)),
            ]
        )
    lines = table(rows)
    lines.extend(f"error: {reason}" for reason in failed)
    if found:
        subs = {
            cid: sorted((s.topic, s.sub_string, s.expression_type) for s in i.subscription_set)
            for cid, i in found.items()
        }
        if len({tuple(v) for v in subs.values()}) == 1:
            held = [mq for i in found.values() for mq in i.mq_table]
            lines += ["", "Same subscription in the same group of consumer", ""]
            lines.append(f"Rebalance {'OK' if len(held) == len(set(held)) else 'Failed'}")
        else:
            lines += ["", "WARN: Different subscription in the same group of consumer!!!"]
    if jstack:
        for cid, info in found.items():
            lines += ["", f"#Consumer jstack# {cid}", info.jstack or ""]
    return lines


def running_info_lines(info: ConsumerRunningInfo) -> list[str]:
    """One member's running info in mqadmin's sections."""
    lines = ["#Consumer Properties#"]
    lines.extend(f"{key:<40s}: {value}" for key, value in sorted(info.properties.items()))
    lines += ["", "#Consumer Subscription#"]
    for n, sub in enumerate(sorted(info.subscription_set, key=lambda s: s.topic), 1):
        lines.append(
            f"{n:03d} Topic: {sub.topic:<40s} ClassFilter: {str(sub.class_filter_mode).lower():<8s}"
            f" SubExpression: {sub.sub_string}"
        )
    header = ["#Topic", "#Broker Name", "#QID", "#Commit Offset", "#Cached Msgs", "#Cached MiB"]
    rows = [[*header, "#Min Offset", "#Max Offset", "#Locked", "#Last Pull", "#Last Consume"]]
    for mq, pq in sorted(info.mq_table.items()):
        rows.append(
            [
                mq.topic,
                mq.broker_name,
                str(mq.queue_id),
                str(pq.commit_offset),
                str(pq.cached_msg_count),
                str(pq.cached_msg_size_in_mib),
                str(pq.cached_msg_min_offset),
                str(pq.cached_msg_max_offset),
                str(pq.locked).lower(),
                time_text(pq.last_pull_timestamp),
                time_text(pq.last_consume_timestamp),
            ]
        )
    lines += ["", "#Consumer MQ Detail#", *table(rows)]
    header = ["#Topic", "#Pull RT", "#Pull TPS", "#Consume RT", "#ConsumeOK TPS"]
    rows = [[*header, "#ConsumeFailed TPS", "#ConsumeFailedMsgsInHour"]]
    for topic, st in sorted(info.status_table.items()):
        rows.append(
            [
                topic,
                f"{st.pull_rt:.2f}",
                f"{st.pull_tps:.2f}",
                f"{st.consume_rt:.2f}",
                f"{st.consume_ok_tps:.2f}",
                f"{st.consume_failed_tps:.2f}",
                str(st.consume_failed_msgs),
            ]
        )
    lines += ["", "#Consumer RT&TPS#", *table(rows)]
    if info.jstack is not None:
        lines += ["", "#Consumer jstack#", info.jstack]
    return lines
