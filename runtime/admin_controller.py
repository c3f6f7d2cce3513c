"""The failover commands of ``python -m runtime admin`` (mqadmin's names, flags and lines), for
clusters in controller mode: getSyncStateSet (each group's master, epochs and in-sync set, as
the controller sees them), getControllerMetaData, electMaster (hand a group's mastership to a
chosen member), cleanBrokerMetadata (the controller forgets members taken out of service) and
getBrokerEpoch (each broker's master terms). ``-a`` names the controller
(the name server running it); without it, the first name server of ``-n``.
``runtime.admin`` adds them to its parser and runs them.
"""

from __future__ import annotations

import argparse

from actors.client import Admin, ClientError
from actors.client.config import resolve_namesrv
from runtime.remoting.controller_bodies import BrokerReplicasInfo

COMMANDS = (
    "getSyncStateSet",
    "getControllerMetaData",
    "electMaster",
    "cleanBrokerMetadata",
    "getBrokerEpoch",
)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], ns: argparse.ArgumentParser
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``)."""
    controller = argparse.ArgumentParser(add_help=False)
    controller.add_argument(
        "-a",
        "--controllerAddress",
        dest="controller",
        help="the controller, host:port (default: the first name server)",
    )
    sync = sub.add_parser(
        "getSyncStateSet",
        parents=[ns, controller],
        help="each group's master, epochs and in-sync set (controller mode)",
    )
    which = sync.add_mutually_exclusive_group(required=True)
    which.add_argument("-b", "--brokerName", dest="broker_name", help="one broker group")
    which.add_argument("-c", "--clusterName", dest="cluster", help="every group of the cluster")
    sub.add_parser(
        "getControllerMetaData",
        parents=[ns, controller],
        help="the controller's group, leader and peers",
    )
    elect = sub.add_parser(
        "electMaster",
        parents=[ns, controller],
        help="make a broker master of its group (a planned switchover)",
    )
    elect.add_argument("-c", "--clusterName", dest="cluster", required=True)
    elect.add_argument("-bn", "--brokerName", dest="broker_name", required=True)
    elect.add_argument(
        "-b", "--brokerId", dest="broker_id", type=int, required=True, help="its brokerId"
    )
    clean = sub.add_parser(
        "cleanBrokerMetadata",
        parents=[ns, controller],
        help="the controller forgets members of a group (e.g. a slave taken out of service)",
    )
    clean.add_argument("-bn", "--brokerName", dest="broker_name", required=True)
    clean.add_argument(
        "-b",
        "--brokerControllerIdsToClean",
        dest="broker_ids",
        type=_ids,
        help="broker ids, ';'-separated (default: every member)",
    )
    clean.add_argument("-c", "--clusterName", dest="cluster")
    clean.add_argument(
        "-l",
        "--cleanLivingBroker",
        dest="clean_living",
        action="store_true",
        help="living ones too (default: not)",
    )
    epoch = sub.add_parser(
        "getBrokerEpoch", parents=[ns], help="each broker's master terms (controller mode)"
    )
    where = epoch.add_mutually_exclusive_group(required=True)
    where.add_argument("-b", "--brokerName", dest="broker_name", help="one broker group")
    where.add_argument("-c", "--clusterName", dest="cluster", help="every group of the cluster")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see (exit status 2)."""
    if args.command == "cleanBrokerMetadata" and not args.clean_living and not args.cluster:
        parser.error("cleanBrokerMetadata: -c CLUSTER is needed unless -l (as mqadmin)")


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``."""
    command = args.command
    if command not in COMMANDS:
        return None
    if command == "getBrokerEpoch":
        return epoch_lines(admin, args)
    address = args.controller or resolve_namesrv(args.namesrv)[0]
    if command == "getSyncStateSet":
        # every group of the cluster, with a master or not (mid-failover is when one looks)
        in_cluster = sorted({b.name for b in admin.brokers(args.cluster)})
        names = [args.broker_name] if args.broker_name else in_cluster
        return sync_state_lines(admin.sync_state_set(address, names))
    if command == "getControllerMetaData":
        meta = admin.controller_metadata(address)
        lines = [
            f"#ControllerGroup\t{meta.group}",
            f"#ControllerLeaderId\t{meta.controller_leader_id}",
            f"#ControllerLeaderAddress\t{meta.controller_leader_address}",
        ]
        return lines + [f"#Peer:\t{peer}" for peer in meta.peers.split(";") if peer]
    if command == "cleanBrokerMetadata":
        admin.clean_broker_metadata(
            address,
            args.broker_name,
            args.broker_ids,
            cluster=args.cluster or "",
            clean_living=args.clean_living,
        )
        return [f"clear broker {args.broker_name} metadata from controller success! "]
    result = admin.elect_master(address, args.broker_name, args.broker_id, cluster=args.cluster)
    header, group = result.header, result.body.broker_member_group
    lines = [
        f"#ClusterName\t{args.cluster}",
        f"#BrokerName\t{args.broker_name}",
        f"#BrokerMasterAddr\t{header.master_address}",
        f"#MasterEpoch\t{header.master_epoch}",
        f"#SyncStateSetEpoch\t{header.sync_state_set_epoch}",
    ]
    addrs = group.broker_addrs if group is not None else {}
    return lines + [f"\t#Broker\t{bid}\t{addr}" for bid, addr in sorted(addrs.items())]


def _ids(text: str) -> list[int]:
    """mqadmin's ``1;2;3``."""
    try:
        return [int(part) for part in text.split(";") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not broker ids like 1;2") from None


def sync_state_lines(info: BrokerReplicasInfo) -> list[str]:
    """mqadmin getSyncStateSet's lines, a block per group."""
    lines: list[str] = []
    for name, replicas in sorted(info.replicas_info_table.items()):
        master_id = -1 if replicas.master_broker_id is None else replicas.master_broker_id
        lines += [
            "",
            f"#brokerName\t{name}",
            f"#MasterBrokerId\t{master_id}",
            f"#MasterAddr\t{replicas.master_address or ''}",
            f"#MasterEpoch\t{replicas.master_epoch}",
            f"#SyncStateSetEpoch\t{replicas.sync_state_set_epoch}",
            f"#SyncStateSetNums\t{len(replicas.in_sync_replicas)}",
        ]
        for member in replicas.in_sync_replicas:
            lines += ["", f"InSyncReplica:\t{member.text()}"]
        for member in replicas.not_in_sync_replicas:
            lines += ["", f"NotInSyncReplica:\t{member.text()}"]
    return lines


def epoch_lines(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin getBrokerEpoch's lines: per broker (masters and slaves) of the group or the
    cluster, its master terms, the last one ending at its log's end."""
    brokers = admin.brokers(args.cluster)
    addresses = sorted({b.address for b in brokers if args.broker_name in (None, b.name)})
    if not addresses:
        raise ClientError(f"no broker group {args.broker_name!r} in the cluster list")
    lines: list[str] = []
    for address in addresses:
        cache = admin.broker_epoch_cache(address)
        lines += [
            "",
            "",
            f"#clusterName\t{cache.cluster_name}",
            f"#brokerName\t{cache.broker_name}",
            f"#brokerAddr\t{address}",
            f"#brokerId\t{cache.broker_id}",
        ]
        lines += [f"#Epoch: {entry.text()}" for entry in cache.epoch_list]
    return lines
