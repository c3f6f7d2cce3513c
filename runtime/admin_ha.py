"""The replication command of ``python -m runtime admin`` (mqadmin's name, flags and lines):
haStatus, a master's slave links or a slave's link to its master (GET_BROKER_HA_STATUS, 907).
``-b`` names one broker (a master or a slave); ``-c`` every master of a cluster, as mqadmin.
``runtime.admin`` adds it to its parser and runs it.
"""

from __future__ import annotations

import argparse
import time

from actors.client import Admin, ClientError
from runtime.remoting.ha_bodies import HARuntimeInfo

COMMANDS = ("haStatus",)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the command to ``sub`` (``ns``: the parent parser with ``-n``)."""
    ha = sub.add_parser(
        "haStatus", parents=[ns], help="a master's slaves (offsets, lag, in sync) or a slave's link"
    )
    where = ha.add_mutually_exclusive_group(required=True)
    where.add_argument("-b", "--brokerAddr", dest="broker", help="one broker, host:port")
    where.add_argument("-c", "--clusterName", dest="cluster", help="every master of the cluster")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    if args.command != "haStatus":
        return None
    addresses = [args.broker] if args.broker else sorted(admin.masters(args.cluster).values())
    lines: list[str] = []
    for address in addresses:
        try:
            info = admin.ha_status(address)
        except ClientError as exc:
            if len(addresses) == 1:
                raise
            lines.extend(["", f"#MasterAddr\t{address}", f"#Error\t{exc}"])  # the others go on
            continue
        lines.extend(status_lines(address, info))
    return lines


def status_lines(address: str, info: HARuntimeInfo) -> list[str]:
    """mqadmin haStatus's lines for the broker at ``address``."""
    if info.master:
        lines = [
            "",
            f"#MasterAddr\t{address}",
            f"#MasterCommitLogMaxOffset\t{info.master_commit_log_max_offset}",
            f"#SlaveNum\t{len(info.ha_connection_info)}",
            f"#InSyncSlaveNum\t{info.in_sync_slave_nums}",
            f"{'#SlaveAddr':<32s}  {'#SlaveAckOffset':<16s} {'#Diff':>16s} "
            f"{'#TransferSpeed(KB/s)':>16s} {'#Status':>16s} {'#TransferFromWhere':>16s}",
        ]
        for link in info.ha_connection_info:
            status = "OK" if link.in_sync else "Fall Behind"
            speed = link.transferred_byte_in_second / 1024
            lines.append(
                f"{link.addr:<32s}  {link.slave_ack_offset:<16d} {link.diff:>16d} "
                f"{speed:>16.2f} {status:>16s} {link.transfer_from_where:>16d}"
            )
        return lines
    client = info.ha_client_runtime_info
    return [
        "",
        f"#MasterAddr\t{client.master_addr}",
        f"#CommitLogMaxOffset\t{client.max_offset}",
        f"#TransferSpeed(KB/s)\t{client.transferred_byte_in_second / 1024:.2f}",
        f"#LastReadTime\t{_when(client.last_read_timestamp)}",
        f"#LastWriteTime\t{_when(client.last_write_timestamp)}",
        f"#MasterFlushOffset\t{client.master_flush_offset}",
        f"#Linked\t{'yes' if client.activated else 'no'}",
    ]


def _when(ms: int) -> str:
    """mqadmin's ``timeMillisToHumanString2`` (local time, ``yyyy-MM-dd HH:mm:ss,SSS``)."""
    if ms <= 0:
        return "never"
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f",{millis:03d}"
