"""The consumer-group commands of ``python -m runtime admin`` beyond progress and status:
cloneGroupOffset (mqadmin's name, flags and output line). ``runtime.admin`` adds them to its
parser and runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actors.client import Admin

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


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    if args.command == "cloneGroupOffset":
        admin.clone_group_offset(args.src_group, args.dest_group, args.topic, offline=args.offline)
        return [
            f"clone group offset success. srcGroup[{args.src_group}], "
            f"destGroup=[{args.dest_group}], topic[{args.topic}]"
        ]
    return None
