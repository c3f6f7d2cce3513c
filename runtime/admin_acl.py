"""The ACL commands of ``python -m runtime admin`` (mqadmin's names and flags):
updateAclConfig, deleteAclConfig, updateGlobalWhiteAddr and clusterAclConfigVersion. Each goes to
one broker (``-b``) or to every broker, masters and slaves, of a cluster (``-c``).
``runtime.admin`` adds them to its parser and runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actors.client import Admin
from runtime.admin_format import time_text

COMMANDS = (
    "updateAclConfig",
    "deleteAclConfig",
    "updateGlobalWhiteAddr",
    "clusterAclConfigVersion",
)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    ns: argparse.ArgumentParser,
    boolean: Callable[[str], bool],
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    update = sub.add_parser("updateAclConfig", parents=[ns], help="create or update an ACL account")
    update.add_argument("-a", "--access-key", required=True, type=str.strip)
    update.add_argument("-s", "--secret-key", help="(required for a new account)")
    update.add_argument("-w", "--white-remote-address", help="hosts that skip the check")
    update.add_argument("-i", "--default-topic-perm", help="PUB, SUB, PUB|SUB or DENY")
    update.add_argument("-u", "--default-group-perm", help="PUB, SUB, PUB|SUB or DENY")
    update.add_argument("-t", "--topic-perms", help="topicA=DENY,topicB=PUB|SUB")
    update.add_argument("-g", "--group-perms", help="groupA=DENY,groupB=SUB")
    update.add_argument(
        "-m", "--admin", type=boolean, default=False, metavar="true|false", help="(false)"
    )
    _where(update)
    delete = sub.add_parser("deleteAclConfig", parents=[ns], help="delete an ACL account")
    delete.add_argument("-a", "--access-key", required=True, type=str.strip)
    _where(delete)
    white = sub.add_parser(
        "updateGlobalWhiteAddr", parents=[ns], help="replace the global white list"
    )
    white.add_argument("-g", "--global-white-addrs", required=True, help="comma-separated")
    _where(white)
    versions = sub.add_parser(
        "clusterAclConfigVersion", parents=[ns], help="each broker's ACL file version"
    )
    _where(versions)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--cluster", help="on every broker of this cluster")
    where.add_argument("-b", "--broker", help="on this broker (host:port)")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    command = args.command
    if command not in COMMANDS:
        return None
    where = {"cluster": args.cluster, "broker_addr": args.broker}
    target = args.broker or args.cluster
    if command == "updateAclConfig":
        admin.update_acl_config(
            args.access_key,
            secret_key=args.secret_key,
            white_remote_address=args.white_remote_address,
            admin=args.admin,
            default_topic_perm=args.default_topic_perm,
            default_group_perm=args.default_group_perm,
            topic_perms=_items(args.topic_perms),
            group_perms=_items(args.group_perms),
            **where,
        )
        return [f"create or update plain access config to {target} success."]
    if command == "deleteAclConfig":
        admin.delete_acl_config(args.access_key, **where)
        return [f"delete plain access config account from {target} success."]
    if command == "updateGlobalWhiteAddr":
        admin.update_global_white_addrs(_items(args.global_white_addrs), **where)
        return [f"update global white remote addresses to {target} success."]
    lines = [
        f"{'#Cluster Name':<20s}  {'#Broker Name':<20s}  {'#Broker Addr':<20s}  "
        f"{'#AclConfigVersionNum':<20s}  {'#AclLastUpdateTime':<20s}"
    ]
    for v in admin.acl_config_versions(**where):
        lines.append(
            f"{v.cluster:<20s}  {v.broker_name:<20s}  {v.broker_addr:<20s}  "
            f"{v.counter:<20d}  {time_text(v.timestamp):<20s}"
        )
    return lines


def _items(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]
