"""``python -m runtime admin COMMAND``: mqadmin's everyday commands, over ``actors.client.Admin``.

    clusterList                                  brokers of every cluster, with their rates
    brokerStatus     [-b HOST:PORT]              a broker's figures (every broker's without -b)
    topicList        [-c]                        every topic the name server knows; -c: with
                                                 its cluster and consumer groups
    topicRoute       -t TOPIC                    the topic's route (JSON, as mqadmin prints it)
    updateTopic      -t TOPIC (-c CLUSTER | -b HOST:PORT) [-w 8] [-r 8] [-p 6] [-o false] [-a A]
                                                 create or update a topic
    deleteTopic      -t TOPIC -c CLUSTER         delete a topic from the cluster's masters, then
                                                 from every name server
    topicStatus      -t TOPIC                    min / max offset and last store time per queue
    updateSubGroup   -g GROUP (-c CLUSTER | -b HOST:PORT) [-r 16] [-s true] [-d false] [-m false]
                     [-q 1] [-a true] [-o false] a consumer group's config (retry times, ...)
    deleteSubGroup   -g GROUP (-c CLUSTER | -b HOST:PORT) [-r false]   a group's config (-r true:
                                                 its offsets too); with -c its %RETRY% / %DLQ%
                                                 topics too
    consumerProgress [-g GROUP [-t TOPIC]]       committed offsets and lag per queue; without
                                                 -g one line per group: members, version, type,
                                                 model, total lag (OFFLINE: none online)
    consumerConnection -g GROUP                  a group's online members and subscriptions
    consumerStatus   -g GROUP [-i CLIENT_ID] [-s]
                                                 each member's running info (asked through a
                                                 broker): queues held, commit offsets, cached
                                                 messages; -i one member in full, -s with its
                                                 threads' stacks
    producerConnection -g GROUP [-t TOPIC]       a producer group's connections
    queryMsgById     -i OFFSET_MSG_ID [-g GROUP -d CLIENT_ID]
                                                 one message by its offset message id; with -g
                                                 and -d, that consumer's listener consumes it
                                                 once more and the outcome is printed
    queryMsgByKey    -t TOPIC -k KEY [-m 64] [-b BEGIN] [-e END]
                                                 messages whose KEYS hold KEY (stored between
                                                 the times, up to 64 a broker)
    queryMsgByUniqueKey -t TOPIC -i MSG_ID       a message by the producer's msg_id (UNIQ_KEY)
    queryMsgTraceById -i MSG_ID [-t RMQ_SYS_TRACE_TOPIC] [-b BEGIN_MS] [-e END_MS] [-num 64]
                                                 a message's trace: the Pub and Sub records
                                                 traced clients sent to the trace topic
    resetOffsetByTime -g GROUP -t TOPIC -s TIME [-f true|false]
                                                 move the group's offsets to the first message
                                                 stored at or after TIME (ms since the epoch,
                                                 yyyy-MM-dd#HH:mm:ss:SSS local time, now, or -1
                                                 for the end); running consumers are told and
                                                 continue there; -f false only moves back
    skipAccumulatedMessage -g GROUP -t TOPIC [-f true|false]
                                                 the same to the end: the backlog is skipped
    updateKvConfig   -s NAMESPACE -k KEY -v VALUE  create or update a KV config on every name
                                                 server (kept in kvConfig.json)
    deleteKvConfig   -s NAMESPACE -k KEY         delete it from every name server
    getKvConfig      -s NAMESPACE -k KEY         read it
    updateOrderConf  -t TOPIC -m get|put|delete [-v brokerName:queueNums;...]
                                                 a topic's order conf (KV namespace
                                                 ORDER_TOPIC_CONFIG; in routes as orderTopicConf
                                                 with the name server's orderMessageEnable)
    wipeWritePerm    -b BROKER_NAME              producers stop writing to the broker group
                                                 (every name server; until its topics change or
                                                 it registers afresh)
    addWritePerm     -b BROKER_NAME              give the broker group's queues read-write perm
    topicClusterList -t TOPIC                    the clusters whose brokers serve the topic
    getNamesrvConfig                             every name server's settings
    cloneGroupOffset -s SRC_GROUP -d DEST_GROUP -t TOPIC [-o true|false]
                                                 give DEST_GROUP SRC_GROUP's committed offsets
                                                 of TOPIC on its masters (-o: even when SRC_GROUP
                                                 is online without the topic)
    sendMessage      -t TOPIC -p BODY [-k KEYS] [-c TAGS] [-b BROKER_NAME -i QUEUE_ID]
                                                 send one message (to that queue with -b -i)
    consumeMessage   -t TOPIC [-b BROKER_NAME] [-i QUEUE_ID] [-o OFFSET] [-c 128] [-g GROUP]
                     [-s BEGIN] [-e END]         print the oldest messages (of one queue with
                                                 -b -i, from OFFSET with -o, stored between
                                                 the times) without committing offsets
    queryMsgByOffset -t TOPIC -b BROKER_NAME -i QUEUE_ID -o OFFSET
                                                 the message at an offset of a queue
    printMsg         -t TOPIC [-s TAGS] [-b BEGIN] [-e END] [-c UTF-8] [-d true|false]
                                                 every message of the topic, queue by queue
                                                 (-d false: without bodies)
    printMsgByQueue  -t TOPIC -a BROKER_NAME -i QUEUE_ID [-s TAGS] [-b BEGIN] [-e END]
                     [-c UTF-8] [-p true] [-d true] [-f true]
                                                 one queue's messages (-p: print them, -d: with
                                                 bodies, -f: count them by tag)
    updateTopicPerm  -t TOPIC -p 2|4|6 (-b HOST:PORT | -c CLUSTER)
                                                 write the topic's config back with perm 2 (W),
                                                 4 (R) or 6 (RW)
    getBrokerConfig  (-b HOST:PORT | -c CLUSTER)  a broker's settings (each master and slave
                                                 of the cluster with -c)
    updateBrokerConfig (-b HOST:PORT | -c CLUSTER) -k KEY -v VALUE
                                                 change a setting while the broker runs (until
                                                 a restart): brokerPermission (2 W, 4 R, 6 RW)
    queryCq          -t TOPIC -q QUEUE_ID -i INDEX [-c 10] [-b HOST:PORT] [-g GROUP]
                                                 a consume queue's entries from INDEX (commit-log
                                                 offset, size, tags code; with -g the group's
                                                 subscription and which entries it selects)
    getConsumerStatus -g GROUP -t TOPIC [-i CLIENT_ID]
                                                 each member's offset per queue of the topic,
                                                 as the members report them (asked through the
                                                 topic's masters)
    cleanExpiredCQ   [-c CLUSTER | -b HOST:PORT]  drop consume-queue files that only point below
                                                 the commit log (every master without -c / -b)
    cleanUnusedTopic [-c CLUSTER | -b HOST:PORT]  delete the topics a master has queues of but
                                                 no config for
    resumeCheckHalfMessage -i OFFSET_MSG_ID      a half message whose check-backs ran out is
                                                 checked back again
    updateAclConfig  -a ACCESS_KEY [-s SECRET] [-w HOSTS] [-i PERM] [-u PERM] [-t T=PERM,...]
                     [-g G=PERM,...] [-m true] (-c CLUSTER | -b HOST:PORT)
                                                 create or update an ACL account (the fields
                                                 given; -m is always written: false unless set)
    deleteAclConfig  -a ACCESS_KEY (-c CLUSTER | -b HOST:PORT)
    updateGlobalWhiteAddr -g HOST,HOST (-c CLUSTER | -b HOST:PORT)
                                                 replace the ACL's global white list
    clusterAclConfigVersion (-c CLUSTER | -b HOST:PORT)
                                                 each broker's ACL file version
    statsAll         [-t TOPIC] [-a]             per topic and group: rates, day counts, backlog
    brokerConsumeStats -b HOST:PORT [-l DIFF] [-o true|false] [-t MS]
                                                 every group's offsets and lag per queue on one
                                                 broker (-l: queues at least DIFF behind; -o:
                                                 orderly topics only), and its total diff
    haStatus         (-b HOST:PORT | -c CLUSTER)  a master's slaves: acked offset, lag, in sync,
                                                 bytes/s; a slave's link to its master
    getSyncStateSet  [-a CONTROLLER] (-b BROKER_NAME | -c CLUSTER)
                                                 controller mode: each group's master, epochs,
                                                 in-sync set and members alive or not
    getControllerMetaData [-a CONTROLLER]        the controller's group, leader and peers
    electMaster      [-a CONTROLLER] -c CLUSTER -bn BROKER_NAME -b BROKER_ID
                                                 a planned switchover: the broker becomes its
                                                 group's master once the old master's lease ran
                                                 out and it holds all the old master wrote
    cleanBrokerMetadata [-a CONTROLLER] -bn BROKER_NAME [-b ID;ID] (-c CLUSTER | -l)
                                                 the controller forgets members taken out of
                                                 service (-l: living ones too)
    getBrokerEpoch   (-b BROKER_NAME | -c CLUSTER)  each broker's master terms (epoch, range)
    exportMetadata   (-c CLUSTER | -b HOST:PORT) [-f /tmp/rocketmq/export] [-t | -g] [-s]
                                                 user topics and groups as JSON: the masters'
                                                 merged in metadata.json (-c), or the broker's
                                                 in topic.json (-t) / subscriptionGroup.json (-g);
                                                 -s: with %RETRY% / %DLQ% topics
    exportConfigs    -c CLUSTER [-f /tmp/rocketmq/export]
                                                 configs.json: each master's main settings and
                                                 the cluster's name server, master, slave counts
    getConsumerConfig -g GROUP                   the group's config on each broker that has it
    allocateMQ       -t TOPIC -i ID,ID,...       the queues each client id would consume (AVG)
    producer         -b HOST:PORT                the broker's producers by group

Every command takes ``-n HOST:PORT[;HOST:PORT]`` (default ``$NAMESRV_ADDR``, else
127.0.0.1:9876). Against brokers with ACL (``aclEnable``), requests are signed with the keys in
``$ROCKETMQ_HOME/conf/tools.yml`` (``accessKey``, ``secretKey``), where mqadmin reads them.
``--tls`` (or ``--tls-config FILE``, a ``tls.properties``' ``tls.client.*`` keys) connects over
TLS. Exit status 0 on success, 1 when the cluster refused or could not be reached (the reason
on stderr), 2 on a usage error or a wrong tools.yml or tls.properties.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import msgspec

from actors.client import Admin, ClientError, TlsOptions
from actors.client.admin import PERM_READ_WRITE
from runtime import (
    admin_acl,
    admin_controller,
    admin_export,
    admin_groups,
    admin_ha,
    admin_messages,
    admin_namesrv,
    admin_query,
    admin_queues,
    admin_stats,
    admin_trace,
    logs,
)
from runtime.acl.tools import tools_credentials
from runtime.admin_format import boolean, failure, table, time_text, timestamp
from runtime.errors import ConfigError
from runtime.remoting.bodies import SubscriptionGroupConfig


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_commands()[0]


def command_names() -> list[str]:
    """Every COMMAND, in its ``--help``'s order (read from the parser: it cannot go stale)."""
    return list(_parser_and_commands()[1].choices)


def _parser_and_commands() -> tuple[
    argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]
]:
    parser = argparse.ArgumentParser(
        prog="python -m runtime admin",
        description="Administer an actormq (or RocketMQ) cluster: mqadmin's everyday commands.",
    )
    ns = argparse.ArgumentParser(add_help=False)
    ns.add_argument("-n", "--namesrv", help="name server(s) host:port[;host:port]")
    ns.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, the server's certificate not checked (mqadmin's -Dtls.enable)",
    )
    ns.add_argument(
        "--tls-config",
        type=pathlib.Path,
        help="connect over TLS as a tls.properties' tls.client.* keys say (authServer, "
        "trustCertPath, certPath, keyPath)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("clusterList", parents=[ns], help="brokers of every cluster")
    broker_status = sub.add_parser("brokerStatus", parents=[ns], help="a broker's figures")
    broker_status.add_argument("-b", "--broker", help="host:port (default: every broker)")
    topics = sub.add_parser("topicList", parents=[ns], help="every topic the name server knows")
    topics.add_argument(
        "-c",
        "--cluster-model",
        action="store_true",
        help="with each topic's cluster and consumer groups (retry and DLQ topics left out)",
    )
    route = sub.add_parser("topicRoute", parents=[ns], help="a topic's route (JSON)")
    route.add_argument("-t", "--topic", required=True)
    update = sub.add_parser("updateTopic", parents=[ns], help="create or update a topic")
    update.add_argument("-t", "--topic", required=True)
    _where(update)
    update.add_argument("-w", "--write-queues", type=int, default=8, help="write queues (8)")
    update.add_argument("-r", "--read-queues", type=int, default=8, help="read queues (8)")
    update.add_argument("-p", "--perm", type=int, default=PERM_READ_WRITE, help="2 W, 4 R, 6 RW")
    update.add_argument(
        "-o",
        "--order",
        type=boolean,
        nargs="?",
        const=True,
        default=False,
        metavar="true|false",
        help="an ordered topic (mqadmin's -o true; a bare -o means true)",
    )
    update.add_argument("-a", "--attributes", help="+message.type=LITE|PRIORITY|...,-key")
    delete = sub.add_parser(
        "deleteTopic", parents=[ns], help="delete a topic from brokers and name servers"
    )
    delete.add_argument("-t", "--topic", required=True)
    delete.add_argument("-c", "--cluster", required=True, help="from every master of this cluster")
    group = sub.add_parser("updateSubGroup", parents=[ns], help="a consumer group's config")
    group.add_argument("-g", "--group", required=True)
    _where(group)
    group.add_argument("-r", "--retry-max-times", type=int, default=16)
    group.add_argument("-q", "--retry-queue-nums", type=int, default=1)
    # mqadmin's defaults: broadcasting and consumeFromMin off unless asked (RocketMQ's
    # UpdateSubGroupSubCommand sets both false), consuming and notifying on
    for flag, name, default in (
        ("-s", "--consume-enable", True),
        ("-d", "--consume-broadcast-enable", False),
        ("-m", "--consume-from-min-enable", False),
        ("-a", "--notify-consumer-ids-changed-enable", True),
    ):
        group.add_argument(flag, name, type=boolean, default=default, metavar="true|false")
    group.add_argument("-o", "--consume-message-orderly", type=boolean, default=False)
    drop = sub.add_parser("deleteSubGroup", parents=[ns], help="delete a consumer group's config")
    drop.add_argument("-g", "--group", required=True)
    drop.add_argument(
        "-r",
        "--remove-offset",
        type=boolean,
        default=False,
        metavar="true|false",
        help="also forget the group's consumer offsets (RocketMQ 5's removeOffset)",
    )
    _where(drop)
    status = sub.add_parser("topicStatus", parents=[ns], help="offsets per queue of a topic")
    status.add_argument("-t", "--topic", required=True)
    progress = sub.add_parser("consumerProgress", parents=[ns], help="a group's offsets and lag")
    progress.add_argument("-g", "--group", help="this group (without: every group's summary)")
    progress.add_argument("-t", "--topic", help="only this topic")
    connection = sub.add_parser(
        "consumerConnection", parents=[ns], help="a group's online members and subscriptions"
    )
    connection.add_argument("-g", "--group", required=True)
    status_of = sub.add_parser(
        "consumerStatus", parents=[ns], help="a group's members' running info"
    )
    status_of.add_argument("-g", "--group", required=True)
    status_of.add_argument("-i", "--client-id", help="only this member, in full")
    status_of.add_argument(
        "-s", "--jstack", action="store_true", help="with the member's threads' stacks"
    )
    producers = sub.add_parser(
        "producerConnection", parents=[ns], help="a producer group's connections"
    )
    producers.add_argument("-g", "--group", required=True)
    producers.add_argument("-t", "--topic", help="ask the brokers of this topic only")
    admin_query.add_commands(sub, ns)
    reset = sub.add_parser(
        "resetOffsetByTime", parents=[ns], help="move a group's offsets to a time"
    )
    reset.add_argument("-g", "--group", required=True)
    reset.add_argument("-t", "--topic", required=True)
    reset.add_argument(
        "-s",
        "--timestamp",
        required=True,
        type=timestamp,
        help="ms, yyyy-MM-dd#HH:mm:ss:SSS, now, or -1 (the end)",
    )
    skip = sub.add_parser(
        "skipAccumulatedMessage", parents=[ns], help="move a group's offsets to the end"
    )
    skip.add_argument("-g", "--group", required=True)
    skip.add_argument("-t", "--topic", required=True)
    for moving in (reset, skip):
        moving.add_argument(
            "-f",
            "--force",
            type=boolean,
            default=True,
            metavar="true|false",
            help="false: only move offsets back (default true)",
        )
    admin_namesrv.add_commands(sub, ns)
    admin_groups.add_commands(sub, ns, boolean)
    admin_messages.add_commands(sub, ns, boolean, timestamp)
    admin_queues.add_commands(sub, ns)
    admin_acl.add_commands(sub, ns, boolean)
    admin_trace.add_commands(sub, ns)
    admin_stats.add_commands(sub, ns)
    admin_ha.add_commands(sub, ns)
    admin_controller.add_commands(sub, ns)
    admin_export.add_commands(sub, ns)
    return parser, sub


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--cluster", help="on every master of this cluster")
    where.add_argument("-b", "--broker", help="on this broker (host:port)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    admin_namesrv.check(parser, args)
    admin_query.check(parser, args)
    admin_export.check(parser, args)
    admin_controller.check(parser, args)
    logs.configure("WARNING")
    try:
        credentials = tools_credentials()  # $ROCKETMQ_HOME/conf/tools.yml, as mqadmin reads
        tls_options = TlsOptions.from_properties(args.tls_config) if args.tls_config else args.tls
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Admin(args.namesrv, credentials=credentials, tls=tls_options) as admin:
            for line in _run(admin, args):
                print(line)
    except ClientError as exc:
        print(failure(exc, over_tls=bool(tls_options)), file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _run(admin: Admin, args: argparse.Namespace) -> list[str]:
    command = args.command
    modules = (admin_namesrv, admin_groups, admin_query, admin_messages, admin_queues)
    others = (admin_acl, admin_trace, admin_stats, admin_ha, admin_export, admin_controller)
    for module in (*modules, *others):
        lines = module.run(admin, args)
        if lines is not None:
            return lines
    if command == "clusterList":
        header = ["#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Version"]
        rows = [[*header, "#InTPS", "#OutTPS", "#InTotalToday", "#OutTotalToday"]]
        for cluster, name, bid, addr in admin.brokers():
            rows.append([cluster, name, str(bid), addr, *_figures(admin, addr)])
        return table(rows)
    if command == "brokerStatus":
        addresses = [args.broker] if args.broker else [b.address for b in admin.brokers()]
        lines: list[str] = []
        for addr in addresses:
            if len(addresses) > 1:
                lines.append(f"{addr}:")
            figures = admin.broker_runtime_info(addr)
            lines.extend(f"{key:<32s}: {value}" for key, value in sorted(figures.items()))
        return lines
    if command == "topicList" and args.cluster_model:
        return admin_groups.topics_with_groups(admin)
    if command == "topicList":
        return admin.topic_list()
    if command == "topicRoute":
        route = msgspec.to_builtins(admin.topic_route(args.topic))
        route = {key: value for key, value in route.items() if value is not None}
        return [json.dumps(route, indent=2, sort_keys=True)]
    if command == "updateTopic":
        done = admin.create_topic(
            args.topic,
            cluster=args.cluster,
            broker_addr=args.broker,
            queues=args.write_queues,
            read_queues=args.read_queues,
            perm=args.perm,
            order=args.order,
            attributes=args.attributes,
        )
        lines = [f"create topic to {address} success." for address in done]
        if args.order:
            lines.append(_set_order_conf(admin, args))
        return lines
    if command == "deleteTopic":
        admin.delete_topic_in_brokers(args.topic, cluster=args.cluster)
        # printed at once, as mqadmin does, in case the name servers then refuse
        print(f"delete topic [{args.topic}] from cluster [{args.cluster}] success.", flush=True)
        admin.delete_topic_in_namesrv(args.topic, cluster=args.cluster)
        return [f"delete topic [{args.topic}] from NameServer success."]
    if command == "updateSubGroup":
        config = SubscriptionGroupConfig(
            group_name=args.group,
            consume_enable=args.consume_enable,
            consume_from_min_enable=args.consume_from_min_enable,
            consume_broadcast_enable=args.consume_broadcast_enable,
            retry_queue_nums=args.retry_queue_nums,
            retry_max_times=args.retry_max_times,
            notify_consumer_ids_changed_enable=args.notify_consumer_ids_changed_enable,
            consume_message_orderly=args.consume_message_orderly,
        )
        done = admin.update_subscription_group(
            config, cluster=args.cluster, broker_addr=args.broker
        )
        return [f"create subscription group to {address} success." for address in done]
    if command == "deleteSubGroup":
        done = admin.delete_subscription_group(
            args.group,
            cluster=args.cluster,
            broker_addr=args.broker,
            clean_offset=args.remove_offset,
        )
        out = [f"delete subscription group [{args.group}] from {a} success." for a in done]
        if args.cluster:
            out.append(f"delete topic [%RETRY%{args.group}] and [%DLQ%{args.group}] success.")
        return out
    if command == "topicStatus":
        rows = [["#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated"]]
        for r in admin.topic_stats(args.topic):
            rows.append(
                [
                    r.queue.broker_name,
                    str(r.queue.queue_id),
                    str(r.min_offset),
                    str(r.max_offset),
                    time_text(r.last_update_ms),
                ]
            )
        return table(rows)
    if command in ("resetOffsetByTime", "skipAccumulatedMessage"):
        when = args.timestamp if command == "resetOffsetByTime" else -1  # -1: the end
        rows = [["#Broker Name", "#QID", "#Old Offset", "#New Offset", "#Applied By"]]
        for r in admin.reset_offset(args.group, args.topic, when, force=args.force):
            old = "N/A" if r.old_offset < 0 else str(r.old_offset)
            by = "consumers" if r.online else "admin"
            rows.append([r.queue.broker_name, str(r.queue.queue_id), old, str(r.new_offset), by])
        return table(rows)
    raise AssertionError(command)  # argparse allows only the commands above


def _set_order_conf(admin: Admin, args: argparse.Namespace) -> str:
    """updateTopic -o true, as mqadmin: the topic's order conf on every name server, each
    broker name with the write queue count: with -c the cluster's broker names (the conf
    replaced), with -b the broker's (merged into the conf the name servers hold)."""
    if args.cluster:
        names = sorted({b.name for b in admin.brokers(args.cluster)})
        conf = ";".join(f"{name}:{args.write_queues}" for name in names)
        admin.put_order_conf(args.topic, conf)
        return f"set cluster orderConf. isOrder=true, orderConf=[{conf}]"
    name = next((b.name for b in admin.brokers() if b.address == args.broker), None)
    if name is None:
        raise ClientError(f"no broker at {args.broker} in the name servers' cluster info")
    entries = dict(
        entry.split(":", 1)
        for entry in (admin.order_conf(args.topic) or "").split(";")
        if ":" in entry
    )
    entries[name] = str(args.write_queues)
    admin.put_order_conf(args.topic, ";".join(f"{n}:{q}" for n, q in entries.items()))
    return f"set broker orderConf. isOrder=true, orderConf=[{name}:{args.write_queues}]"


def _figures(admin: Admin, addr: str) -> list[str]:
    """Version, in / out TPS over 10 s, today's totals of one broker ("-": it will not say)."""
    try:
        t = admin.broker_runtime_info(addr)
        return [
            t.get("brokerVersionDesc", "-"),
            t.get("putTps", "-").split(" ")[0],
            t.get("getTransferedTps", "-").split(" ")[0],
            str(int(t["msgPutTotalTodayNow"]) - int(t["msgPutTotalTodayMorning"])),
            str(int(t["msgGetTotalTodayNow"]) - int(t["msgGetTotalTodayMorning"])),
        ]
    except (ClientError, KeyError, ValueError):
        return ["-"] * 5
