"""The name-server commands of ``python -m runtime admin`` (mqadmin's names, flags and output
lines): updateKvConfig, deleteKvConfig, getKvConfig, updateOrderConf, wipeWritePerm,
addWritePerm, topicClusterList, getNamesrvConfig. ``runtime.admin`` adds them to its parser
and runs them.
"""

from __future__ import annotations

import argparse

from actors.client import Admin, ClientError

COMMANDS = (
    "updateKvConfig",
    "deleteKvConfig",
    "getKvConfig",
    "updateOrderConf",
    "wipeWritePerm",
    "addWritePerm",
    "topicClusterList",
    "getNamesrvConfig",
)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    put = sub.add_parser("updateKvConfig", parents=[ns], help="create or update a KV config")
    _namespace_and_key(put)
    put.add_argument("-v", "--value", required=True, type=str.strip, help="the key's value")
    for name, what in (("deleteKvConfig", "delete"), ("getKvConfig", "read")):
        _namespace_and_key(sub.add_parser(name, parents=[ns], help=f"{what} a KV config"))
    order = sub.add_parser(
        "updateOrderConf", parents=[ns], help="create, read or delete a topic's order conf"
    )
    order.add_argument("-t", "--topic", required=True, type=str.strip)
    order.add_argument("-m", "--method", required=True, choices=("get", "put", "delete"))
    order.add_argument(
        "-v", "--order-conf", type=str.strip, help="brokerName:queueNums;... (with -m put)"
    )
    for name, what in (("wipeWritePerm", "wipe"), ("addWritePerm", "add")):
        perm = sub.add_parser(
            name, parents=[ns], help=f"{what} the write perm of a broker in every name server"
        )
        perm.add_argument("-b", "--broker-name", required=True, type=str.strip)
    clusters = sub.add_parser("topicClusterList", parents=[ns], help="the clusters of a topic")
    clusters.add_argument("-t", "--topic", required=True, type=str.strip)
    sub.add_parser("getNamesrvConfig", parents=[ns], help="every name server's settings")


def _namespace_and_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--namespace", required=True, type=str.strip)
    parser.add_argument("-k", "--key", required=True, type=str.strip)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say: ``updateOrderConf -m put`` needs ``-v`` (a usage error)."""
    order = getattr(args, "command", None) == "updateOrderConf"
    if order and args.method == "put" and not args.order_conf:
        parser.error("updateOrderConf -m put: please set orderConf with option -v")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``.
    wipeWritePerm / addWritePerm print one line per name server as they go and raise
    ``ClientError`` at the end when any name server failed."""
    command = args.command
    if command == "updateKvConfig":
        admin.put_kv_config(args.namespace, args.key, args.value)
        return ["create or update kv config to namespace success."]
    if command == "deleteKvConfig":
        admin.delete_kv_config(args.namespace, args.key)
        return ["delete kv config from namespace success."]
    if command == "getKvConfig":
        value = _value(admin, args.namespace, args.key)
        return [
            f"get kv config success, namespace: {args.namespace}, key: {args.key}, value: {value}."
        ]
    if command == "updateOrderConf":
        topic = args.topic
        if args.method == "get":
            conf = _value(admin, "ORDER_TOPIC_CONFIG", topic)
            return [f"get orderConf success. topic=[{topic}], orderConf=[{conf}]"]
        if args.method == "put":
            admin.put_order_conf(topic, args.order_conf)
            return [f"update orderConf success. topic=[{topic}], orderConf=[{args.order_conf}]"]
        admin.delete_order_conf(topic)
        return [f"delete orderConf success. topic=[{topic}]"]
    if command in ("wipeWritePerm", "addWritePerm"):
        _write_perm(admin, args.broker_name, wipe=command == "wipeWritePerm")
        return []
    if command == "topicClusterList":
        return admin.topic_clusters(args.topic)
    if command == "getNamesrvConfig":
        lines = []
        for address, settings in admin.namesrv_config().items():
            lines.append(f"============{address}============")
            lines += [f"{key:<50s}=  {value}" for key, value in settings.items()]
        return lines
    return None


def _value(admin: Admin, namespace: str, key: str) -> str:
    value = admin.kv_config(namespace, key)
    if value is None:
        raise ClientError(f"No config item, Namespace: {namespace} Key: {key}")
    return value


def _write_perm(admin: Admin, broker_name: str, *, wipe: bool) -> None:
    what = "wipe" if wipe else "add"
    failed = []
    for namesrv in admin.config.namesrv:
        where = f"{what} write perm of broker[{broker_name}] in name server[{namesrv}]"
        try:
            if wipe:
                count = admin.wipe_write_perm(broker_name, namesrv)[namesrv]
            else:
                count = admin.add_write_perm(broker_name, namesrv)[namesrv]
        except ClientError as exc:
            print(f"{where} Failed", flush=True)
            failed.append(f"{namesrv}: {exc}")
            continue
        print(f"{where} OK, {count}", flush=True)
    if failed:
        raise ClientError("; ".join(failed))
