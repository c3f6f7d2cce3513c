"""The inventory commands of ``python -m runtime admin`` (mqadmin's names, flags and output):

- exportMetadata (-c CLUSTER | -b HOST:PORT) [-f DIR] [-t | -g] [-s]: with -c, the masters'
  user topics and groups merged (``Admin.export_metadata``) as ``{"topicConfigTable",
  "subscriptionGroupTable", "exportTime"}`` in ``DIR/metadata.json`` (``topic.json`` with -t,
  ``subscriptionGroup.json`` with -g: that table only); with -b, the broker's own
  TopicConfigSerializeWrapper (-t, ``topic.json``) or SubscriptionGroupWrapper (-g,
  ``subscriptionGroup.json``). -s keeps %RETRY% / %DLQ% topics. DIR: /tmp/rocketmq/export.
- exportConfigs -c CLUSTER [-f DIR]: ``DIR/configs.json``, ``{"brokerConfigs": {brokerName:
  {the kept keys}}, "clusterScale": {"namesrvSize", "masterBrokerSize", "slaveBrokerSize"}}``.
- getConsumerConfig -g GROUP: the group's config on each broker group that has it.
- allocateMQ -t TOPIC -i ID,ID,...: ``{"result": {id: [queues]}}`` under the average strategy.
- producer -b HOST:PORT: the broker's producers, one line each.

Files are JSON as fastjson's pretty form writes them (tab-indented), keys sorted. ``runtime.admin``
adds these to its parser, checks them (``check``) and runs them (``run``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

import msgspec

from actors.client import Admin, ClientError
from actors.client.admin_export import ClusterConfigs, ClusterMetadata, GroupConfigOnBroker
from runtime.store.configfile import write_atomic

COMMANDS = ("exportMetadata", "exportConfigs", "getConsumerConfig", "allocateMQ", "producer")
DEFAULT_PATH = "/tmp/rocketmq/export"
"""Where mqadmin's export commands write without -f."""
GROUP_FIELDS = (
    "groupName",
    "consumeEnable",
    "consumeFromMinEnable",
    "consumeBroadcastEnable",
    "consumeMessageOrderly",
    "retryQueueNums",
    "retryMaxTimes",
    "brokerId",
    "whichBrokerWhenConsumeSlowly",
    "notifyConsumerIdsChangedEnable",
)
"""getConsumerConfig's lines, in the order of RocketMQ's SubscriptionGroupConfig fields."""


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    meta = sub.add_parser(
        "exportMetadata", parents=[ns], help="a cluster's or a broker's topics and groups (JSON)"
    )
    where = meta.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--clusterName", dest="cluster", help="every master of the cluster")
    where.add_argument("-b", "--brokerAddr", dest="broker", help="one broker, host:port")
    _file_path(meta, "metadata.json")
    only = meta.add_mutually_exclusive_group()
    only.add_argument(
        "-t", "--topic", dest="topics_only", action="store_true", help="only topics (topic.json)"
    )
    only.add_argument(
        "-g",
        "--subscriptionGroup",
        dest="groups_only",
        action="store_true",
        help="only subscription groups (subscriptionGroup.json)",
    )
    meta.add_argument(
        "-s",
        "--specialTopic",
        dest="special_topics",
        action="store_true",
        help="with %%RETRY%% and %%DLQ%% topics",
    )
    configs = sub.add_parser(
        "exportConfigs", parents=[ns], help="a cluster's broker settings and scale (JSON)"
    )
    configs.add_argument("-c", "--clusterName", dest="cluster", required=True)
    _file_path(configs, "configs.json")
    group = sub.add_parser(
        "getConsumerConfig", parents=[ns], help="a group's config on each broker that has it"
    )
    group.add_argument("-g", "--groupName", dest="group", required=True)
    allocate = sub.add_parser(
        "allocateMQ", parents=[ns], help="a topic's queues shared among client ids (AVG)"
    )
    allocate.add_argument("-t", "--topic", required=True)
    allocate.add_argument(
        "-i", "--ipList", dest="ip_list", required=True, help="client ids, comma-separated"
    )
    producer = sub.add_parser("producer", parents=[ns], help="a broker's producers by group")
    producer.add_argument("-b", "--broker", required=True, help="host:port")


def _file_path(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "-f",
        "--filePath",
        dest="file_path",
        default=DEFAULT_PATH,
        help=f"the directory of {name} (default {DEFAULT_PATH})",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say (usage errors): exportMetadata -b needs -t or -g, allocateMQ
    needs a client id."""
    command = getattr(args, "command", None)
    if command == "exportMetadata" and args.broker is not None and not args.broker.strip():
        parser.error("exportMetadata -b: give the broker's host:port")
    if command == "exportMetadata" and args.broker and not (args.topics_only or args.groups_only):
        parser.error("exportMetadata -b: choose -t (topics) or -g (subscription groups)")
    if command == "allocateMQ" and not client_ids(args.ip_list):
        parser.error("allocateMQ -i: give at least one client id")


def client_ids(ip_list: str) -> list[str]:
    """-i's ids, in order, blanks dropped."""
    return [part.strip() for part in ip_list.split(",") if part.strip()]


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``.
    A file that cannot be written raises ``ClientError`` (the CLI's exit status 1)."""
    command = args.command
    if command == "exportMetadata":
        return _export_metadata(admin, args)
    if command == "exportConfigs":
        path = pathlib.Path(args.file_path.strip()) / "configs.json"
        _write(path, configs_json(admin.export_configs(args.cluster.strip())))
        return [f"export {path} success"]
    if command == "getConsumerConfig":
        return consumer_config_lines(admin.consumer_configs(args.group.strip()))
    if command == "allocateMQ":
        table = admin.allocate_mq(args.topic.strip(), client_ids(args.ip_list))
        result = {cid: [msgspec.to_builtins(mq) for mq in mqs] for cid, mqs in table.items()}
        return [json.dumps({"result": result}, sort_keys=True, separators=(",", ":"))]
    if command == "producer":
        lines = []
        for group, producers in admin.producer_table(args.broker.strip()).items():
            if not producers:
                lines.append(f"producer group ({group}) instances are empty")
            lines.extend(f"producer group ({group}) instance : {p.describe()}" for p in producers)
        return lines
    return None


def _export_metadata(admin: Admin, args: argparse.Namespace) -> list[str]:
    directory = pathlib.Path(args.file_path.strip())
    if args.broker is not None:
        address = args.broker.strip()
        body: Any
        if args.topics_only:
            path = directory / "topic.json"
            body = admin.user_topic_configs(address, special_topics=args.special_topics)
        else:
            path = directory / "subscriptionGroup.json"
            body = admin.user_subscription_groups(address)
        _write(path, msgspec.to_builtins(body))
        return [f"export {path} success"]
    meta = admin.export_metadata(
        args.cluster.strip(),
        topics=not args.groups_only,
        groups=not args.topics_only,
        special_topics=args.special_topics,
    )
    if args.topics_only:
        path = directory / "topic.json"
    elif args.groups_only:
        path = directory / "subscriptionGroup.json"
    else:
        path = directory / "metadata.json"
    _write(path, metadata_json(meta, topics=not args.groups_only, groups=not args.topics_only))
    return [f"export {path} success"]


def metadata_json(meta: ClusterMetadata, *, topics: bool, groups: bool) -> dict[str, Any]:
    """exportMetadata -c's document: the tables asked for and ``exportTime``."""
    out: dict[str, Any] = {"exportTime": meta.export_ms}
    if topics:
        out["topicConfigTable"] = msgspec.to_builtins(meta.topics)
    if groups:
        out["subscriptionGroupTable"] = msgspec.to_builtins(meta.groups)
    return out


def configs_json(configs: ClusterConfigs) -> dict[str, Any]:
    """exportConfigs' document."""
    return {
        "brokerConfigs": configs.broker_configs,
        "clusterScale": {
            "namesrvSize": configs.namesrv_size,
            "masterBrokerSize": configs.master_broker_size,
            "slaveBrokerSize": configs.slave_broker_size,
        },
    }


def consumer_config_lines(found: list[GroupConfigOnBroker]) -> list[str]:
    """getConsumerConfig's lines: a banner per broker group, then ``field = value`` rows."""
    lines = []
    for row in found:
        lines.append(f"{'=' * 29}{row.cluster}:{row.broker_name}{'=' * 29}")
        fields = msgspec.to_builtins(row.config)
        names = [*GROUP_FIELDS, *(k for k in fields if k not in GROUP_FIELDS)]
        for name in names:
            if name in fields:
                lines.append(f"{name:<40s}=  {_java_text(fields[name])}")
    return lines


def _java_text(value: object) -> str:
    """A field as Java's ``toString()`` writes it (true / false, not True / False)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _write(path: pathlib.Path, document: object) -> None:
    """``document`` as tab-indented JSON at ``path``, its directories made first; the file is
    replaced whole (a failed write leaves the old one; a symlink there is replaced, not
    followed)."""
    text = json.dumps(document, indent="\t", sort_keys=True, ensure_ascii=False)
    if path.parent.exists() and not path.parent.is_dir():
        raise ClientError(f"cannot write {path}: {path.parent} is not a directory")
    try:
        write_atomic(str(path), (text + "\n").encode("utf-8"))
    except OSError as exc:
        raise ClientError(f"cannot write {path}: {exc.strerror or exc}") from None
