"""The message and topic commands of ``python -m runtime admin`` (mqadmin's names, flags and
output formats): sendMessage, consumeMessage, queryMsgByOffset, printMsg, printMsgByQueue,
updateTopicPerm, getBrokerConfig, updateBrokerConfig. ``runtime.admin`` adds them to its parser
and runs them.

Nothing here consumes: reads are raw pulls as RocketMQ's tools group (``Admin.pull``), so no
group's committed offsets move.
"""

from __future__ import annotations

import argparse
import codecs
import time
from collections.abc import Callable, Iterable

from actors.client import Admin, ClientError, Message, MessageExt, MessageQueue, Producer
from actors.client.admin_messages import TOOLS_CONSUMER_GROUP, perm_text
from runtime.admin_query import message

COMMANDS = (
    "sendMessage",
    "consumeMessage",
    "queryMsgByOffset",
    "printMsg",
    "printMsgByQueue",
    "updateTopicPerm",
    "getBrokerConfig",
    "updateBrokerConfig",
)
CONSUME_COUNT = 128
"""consumeMessage's default number of messages (mqadmin's)."""
SEPARATOR = "-" * 56
BANNER = "=" * 12


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    ns: argparse.ArgumentParser,
    boolean: Callable[[str], bool],
    timestamp: Callable[[str], int],
) -> None:
    """Add the commands to ``sub`` (``ns``: the parent parser with ``-n``; ``boolean`` and
    ``timestamp``: the true|false and mqadmin time argument types)."""
    send = sub.add_parser("sendMessage", parents=[ns], help="send one message")
    send.add_argument("-t", "--topic", required=True, type=str.strip)
    send.add_argument("-p", "--body", required=True, type=str.strip, help="the body (UTF-8)")
    send.add_argument("-k", "--key", type=str.strip, help="the message's keys (space-separated)")
    send.add_argument("-c", "--tags", type=str.strip)
    send.add_argument("-b", "--broker", type=str.strip, help="to this broker name (with -i)")
    send.add_argument("-i", "--qid", type=int, help="to this queue of the broker (needs -b)")
    send.set_defaults(usage=send.error)

    consume = sub.add_parser(
        "consumeMessage", parents=[ns], help="read messages without committing offsets"
    )
    consume.add_argument("-t", "--topic", required=True, type=str.strip)
    consume.add_argument("-b", "--broker-name", type=str.strip)
    consume.add_argument("-i", "--queue-id", type=int, help="one queue (needs -b)")
    consume.add_argument("-o", "--offset", type=int, help="from this offset (needs -i)")
    consume.add_argument("-g", "--group", type=str.strip, default=TOOLS_CONSUMER_GROUP)
    _times(consume, "-s", timestamp)
    consume.add_argument(
        "-c", "--count", type=int, default=CONSUME_COUNT, help=f"at most ({CONSUME_COUNT})"
    )
    consume.set_defaults(usage=consume.error)

    by_offset = sub.add_parser(
        "queryMsgByOffset", parents=[ns], help="the message at an offset of a queue"
    )
    by_offset.add_argument("-t", "--topic", required=True, type=str.strip)
    by_offset.add_argument("-b", "--broker-name", required=True, type=str.strip)
    by_offset.add_argument("-i", "--queue-id", required=True, type=int)
    by_offset.add_argument("-o", "--offset", required=True, type=int)

    print_msg = sub.add_parser("printMsg", parents=[ns], help="every message of a topic")
    print_msg.add_argument("-t", "--topic", required=True, type=str.strip)
    _reading(print_msg, timestamp)
    _flag(print_msg, "-d", "--print-body", boolean, True, "print the bodies (default true)")

    by_queue = sub.add_parser(
        "printMsgByQueue", parents=[ns], help="every message of one queue, or counts by tag"
    )
    by_queue.add_argument("-t", "--topic", required=True, type=str.strip)
    by_queue.add_argument("-a", "--broker-name", required=True, type=str.strip)
    by_queue.add_argument("-i", "--queue-id", required=True, type=int)
    _reading(by_queue, timestamp)
    _flag(by_queue, "-p", "--print-msg", boolean, False, "print the messages (default false)")
    _flag(by_queue, "-d", "--print-body", boolean, False, "with their bodies (default false)")
    _flag(by_queue, "-f", "--calculate", boolean, False, "count them by tag (default false)")

    perm = sub.add_parser("updateTopicPerm", parents=[ns], help="set a topic's perm")
    perm.add_argument("-t", "--topic", required=True, type=str.strip)
    perm.add_argument(
        "-p", "--perm", required=True, type=int, choices=(2, 4, 6), help="2 W, 4 R, 6 RW"
    )
    _broker_or_cluster(perm)

    config = sub.add_parser("getBrokerConfig", parents=[ns], help="a broker's settings")
    _broker_or_cluster(config)
    update = sub.add_parser(
        "updateBrokerConfig", parents=[ns], help="change a broker setting while it runs"
    )
    _broker_or_cluster(update)
    update.add_argument("-k", "--key", required=True, type=str.strip, help="e.g. brokerPermission")
    update.add_argument("-v", "--value", required=True, type=str.strip)


def _times(parser: argparse.ArgumentParser, begin: str, timestamp: Callable[[str], int]) -> None:
    form = "ms or yyyy-MM-dd#HH:mm:ss:SSS"
    parser.add_argument(begin, "--begin-timestamp", type=timestamp, help=f"stored from ({form})")
    parser.add_argument("-e", "--end-timestamp", type=timestamp, help=f"stored before ({form})")


def _reading(parser: argparse.ArgumentParser, timestamp: Callable[[str], int]) -> None:
    parser.add_argument("-c", "--charset", type=_charset, default="UTF-8", help="(UTF-8)")
    parser.add_argument(
        "-s", "--sub-expression", type=str.strip, default="*", help="tags, e.g. 'TagA || TagB'"
    )
    _times(parser, "-b", timestamp)


def _flag(
    parser: argparse.ArgumentParser,
    short: str,
    name: str,
    boolean: Callable[[str], bool],
    default: bool,
    what: str,
) -> None:
    parser.add_argument(short, name, type=boolean, default=default, metavar="true|false", help=what)


def _broker_or_cluster(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-b", "--broker-addr", type=str.strip, help="this broker (host:port)")
    where.add_argument("-c", "--cluster", type=str.strip, help="every master of this cluster")


def _charset(name: str) -> str:
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a charset Python knows") from None


def run(admin: Admin, args: argparse.Namespace) -> list[str] | None:
    """The command's output lines, or None when ``args.command`` is not one of ``COMMANDS``.
    consumeMessage, printMsg and printMsgByQueue print as they read and return []; a usage
    mqadmin refuses (``-i`` without ``-b``, ``-o`` without ``-i``) exits 2 before any
    request."""
    command = args.command
    if command == "sendMessage":
        if args.qid is not None and not args.broker:
            args.usage("Broker name must be set if the queue is chosen! (-b with -i)")
        return _send(admin, args)
    if command == "consumeMessage":
        if args.queue_id is not None and not args.broker_name:
            args.usage("Please set the brokerName before queueId! (-b with -i)")
        if args.offset is not None and args.queue_id is None:
            args.usage("please set queueId before offset! (-i with -o)")
        if args.count <= 0:
            args.usage("please input a positive messageNumber! (-c)")
        _consume(admin, args)
        return []
    if command == "queryMsgByOffset":
        mq = MessageQueue(topic=args.topic, broker_name=args.broker_name, queue_id=args.queue_id)
        found = admin.message_at(mq, args.offset)
        if found is None:
            raise ClientError(f"no message at offset {args.offset} of {_mq(mq)}")
        return message(found)
    if command == "printMsg":
        for mq in admin.fetch_queues(args.topic):
            _print_queue(admin, args, mq)
        return []
    if command == "printMsgByQueue":
        mq = MessageQueue(topic=args.topic, broker_name=args.broker_name, queue_id=args.queue_id)
        return _print_by_queue(admin, args, mq)
    if command == "updateTopicPerm":
        changes = admin.update_topic_perm(
            args.topic, args.perm, cluster=args.cluster, broker_addr=args.broker_addr
        )
        lines: list[str] = []
        for c in changes:
            if not c.changed:
                where = "" if args.broker_addr else f" ({c.address})"
                lines.append(f"new perm equals to the old one!{where}")
                continue
            lines.append(
                f"update topic perm from {c.old_perm} to {c.new_perm} in {c.address} success."
            )
            if args.broker_addr:
                t = c.config
                lines.append(
                    f"TopicConfig [topicName={t.topic_name}, readQueueNums={t.read_queue_nums}, "
                    f"writeQueueNums={t.write_queue_nums}, perm={perm_text(c.new_perm)}, "
                    f"topicFilterType={t.topic_filter_type}, topicSysFlag={t.topic_sys_flag}, "
                    f"order={str(t.order).lower()}]"
                )
        return lines
    if command == "getBrokerConfig":
        return _broker_configs(admin, args)
    if command == "updateBrokerConfig":
        return _update_broker_config(admin, args)
    return None


def _send(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin sendMessage: a producer of its own group (the time in ms, as mqadmin's), to the
    queue -b / -i name or the usual round robin; the result as mqadmin's one-row table."""
    keys = args.key.split() if args.key else None
    msg = Message(args.topic, args.body.encode(), tags=args.tags or None, keys=keys)
    queue = None
    if args.qid is not None:
        queue = MessageQueue(topic=args.topic, broker_name=args.broker, queue_id=args.qid)
    group = str(int(time.time() * 1000))
    with Producer(group, namesrv=list(admin.config.namesrv), retries=0 if queue else 2) as p:
        result = p.send(msg, queue=queue)
    row = "{:<32s}  {:<4s}  {:<20s}    {}"
    return [
        row.format("#Broker Name", "#QID", "#Send Result", "#MsgId"),
        row.format(
            result.queue.broker_name,
            str(result.queue.queue_id),
            result.status.value,
            result.msg_id,
        ),
    ]


def _consume(admin: Admin, args: argparse.Namespace) -> None:
    """mqadmin consumeMessage: the oldest ``-c`` messages of the topic (queue by queue), of one
    queue (-b -i) or from an offset of it (-o), within -s / -e; printed as they come."""
    if args.queue_id is not None:
        queues = [
            MessageQueue(topic=args.topic, broker_name=args.broker_name, queue_id=args.queue_id)
        ]
    else:
        queues = admin.fetch_queues(args.topic)
        if args.broker_name:
            queues = [mq for mq in queues if mq.broker_name == args.broker_name]
            if not queues:
                raise ClientError(f"broker {args.broker_name!r} serves no queue of {args.topic}")
    left = args.count
    for mq in queues:
        if left <= 0:
            return
        begin, end = _range(admin, mq, args.begin_timestamp, args.end_timestamp)
        if args.offset is not None:
            if args.offset >= end:
                print(f"{_mq(mq)} no matched msg, offset={args.offset}", flush=True)
                return
            begin = max(begin, args.offset)
        if end - begin > left:
            print(f"The older {left} message of the {mq.queue_id} queue will be provided")
            end = begin + left
        msgs = admin.iter_messages(mq, begin, end, group=args.group)
        printed = _print_messages(msgs, "utf-8", True, header="Consume ok")
        left -= printed
        print(f"{_mq(mq)} print msg finished. {printed} messages, offset={end}", flush=True)


def _print_queue(admin: Admin, args: argparse.Namespace, mq: MessageQueue) -> None:
    """One queue of mqadmin printMsg: its offsets, its messages, a separator."""
    begin, end = _range(admin, mq, args.begin_timestamp, args.end_timestamp)
    print(f"minOffset={begin}, maxOffset={end}, {_mq(mq)}", flush=True)
    msgs = admin.iter_messages(mq, begin, end, expression=args.sub_expression)
    _print_messages(msgs, args.charset, args.print_body)
    print(SEPARATOR, flush=True)


def _print_by_queue(admin: Admin, args: argparse.Namespace, mq: MessageQueue) -> list[str]:
    """mqadmin printMsgByQueue: the messages with -p true, then with -f true the count of each
    tag, most first."""
    begin, end = _range(admin, mq, args.begin_timestamp, args.end_timestamp)
    counts: dict[str, int] = {}

    def counted() -> Iterable[MessageExt]:
        for m in admin.iter_messages(mq, begin, end, expression=args.sub_expression):
            if m.tags:
                counts[m.tags] = counts.get(m.tags, 0) + 1
            yield m

    if args.print_msg:
        _print_messages(counted(), args.charset, args.print_body)
    else:
        for _ in counted():
            pass
    if not args.calculate:
        return []
    ranked = sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))
    return [f"Tag: {tag:<30s} Count: {count}" for tag, count in ranked]


def _range(
    admin: Admin, mq: MessageQueue, begin_ms: int | None, end_ms: int | None
) -> tuple[int, int]:
    """The offsets to read: the queue's min / max, or the first stored at or after -s / -e."""
    address = admin.queue_address(mq)
    if begin_ms is None:
        begin = admin.min_offset(mq, address)
    else:
        begin = admin.search_offset(mq, begin_ms, address)
    if end_ms is None:
        end = admin.max_offset(mq, address)
    else:
        end = admin.search_offset(mq, end_ms, address)
    return begin, end


def _print_messages(
    msgs: Iterable[MessageExt], charset: str, body: bool, header: str | None = None
) -> int:
    """Each message as mqadmin's ``MSGID: <id> <MessageExt> BODY: <text>`` line, flushed as it
    comes. Returns how many."""
    n = 0
    for m in msgs:
        if header is not None and n == 0:
            print(header)
        text = m.body.decode(charset, errors="replace") if body else "NOT PRINT BODY"
        print(f"MSGID: {m.msg_id} {describe(m)} BODY: {text}", flush=True)
        n += 1
    return n


def describe(m: MessageExt) -> str:
    """A message the way RocketMQ's MessageExt.toString shows it (the body as its length)."""
    props = ", ".join(f"{k}={v}" for k, v in sorted(m.all_properties.items()))
    return (
        f"MessageExt [brokerName={m.broker_name}, queueId={m.queue_id}, "
        f"queueOffset={m.queue_offset}, sysFlag={m.sys_flag}, bornTimestamp={m.born_timestamp}, "
        f"bornHost={m.born_host}, storeTimestamp={m.store_timestamp}, storeHost={m.store_host}, "
        f"msgId={m.offset_msg_id}, commitLogOffset={m.commit_log_offset}, "
        f"reconsumeTimes={m.reconsume_times}, "
        f"preparedTransactionOffset={m.prepared_transaction_offset}, "
        f"toString()=Message{{topic='{m.topic}', flag={m.flag}, properties={{{props}}}, "
        f"body=[{len(m.body)} bytes]}}]"
    )


def _mq(mq: MessageQueue) -> str:
    return f"MessageQueue [topic={mq.topic}, brokerName={mq.broker_name}, queueId={mq.queue_id}]"


def _update_broker_config(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin updateBrokerConfig: one broker, or every broker of the cluster (masters and
    slaves, as mqadmin's); a line per broker."""
    if args.broker_addr:
        addresses = [args.broker_addr]
    else:
        addresses = [b.address for b in admin.brokers(args.cluster)]
        if not addresses:
            raise ClientError(f"no broker in cluster {args.cluster}")
    lines = []
    for address in addresses:
        admin.update_broker_config(address, {args.key: args.value})
        lines.append(f"update broker config success, {address}")
    return lines


def _broker_configs(admin: Admin, args: argparse.Namespace) -> list[str]:
    """mqadmin getBrokerConfig: ``key  =  value`` lines under a banner per broker; with -c the
    cluster's masters, each followed by its slaves."""
    if args.broker_addr:
        address = args.broker_addr
        return _config_lines(admin, f"{BANNER}{address}{BANNER}", address)
    lines: list[str] = []
    brokers = admin.brokers(args.cluster)
    for master in (b for b in brokers if b.broker_id == 0):
        lines += _config_lines(
            admin, f"============Master: {master.address}============", master.address
        )
        for slave in (b for b in brokers if b.name == master.name and b.broker_id != 0):
            banner = (
                f"============My Master: {master.address}=====Slave: {slave.address}============"
            )
            lines += _config_lines(admin, banner, slave.address)
    if not lines:
        raise ClientError(f"no master broker in cluster {args.cluster}")
    return lines


def _config_lines(admin: Admin, banner: str, address: str) -> list[str]:
    config = admin.broker_config(address)
    return [banner, *(f"{key:<50s}=  {value}" for key, value in config.items()), ""]
