"""The admin command line's own parsing: mqadmin's time and boolean forms, and its tables."""

from __future__ import annotations

import argparse
import time

import pytest

from runtime.admin import build_parser, main
from runtime.admin_format import boolean as _boolean
from runtime.admin_format import table as _table
from runtime.admin_format import timestamp as _timestamp


def test_times_in_mqadmin_forms() -> None:
    assert _timestamp("1700000000123") == 1700000000123
    assert _timestamp("-1") == -1  # the end of each queue
    local = time.mktime((2026, 11, 22, 9, 30, 15, 0, 0, -1))
    assert _timestamp("2026-11-22#09:30:15:042") == int(local) * 1000 + 42
    before = int(time.time() * 1000)
    assert before <= _timestamp("now") <= int(time.time() * 1000)


@pytest.mark.parametrize("text", ["yesterday", "2026-11-22", "2026-11-22#09:30", "-2", ""])
def test_other_times_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="yyyy-MM-dd#HH:mm:ss:SSS"):
        _timestamp(text)


def test_booleans_are_true_or_false_only() -> None:
    assert _boolean("true") is True and _boolean("FALSE") is False
    with pytest.raises(argparse.ArgumentTypeError):
        _boolean("yes")


def test_tables_align_their_columns() -> None:
    lines = _table([["#A", "#Long header"], ["value-one", "1"], ["v", "22"]])
    assert lines == ["#A         #Long header", "value-one  1", "v          22"]


def test_reset_defaults_to_force_and_update_topic_needs_a_place() -> None:
    args = build_parser().parse_args(["resetOffsetByTime", "-g", "g", "-t", "t", "-s", "now"])
    assert args.force is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["updateTopic", "-t", "T"])


def test_delete_topic_needs_a_topic_and_a_cluster() -> None:
    args = build_parser().parse_args(["deleteTopic", "-t", "Orders", "-c", "DefaultCluster"])
    assert (args.command, args.topic, args.cluster) == ("deleteTopic", "Orders", "DefaultCluster")
    for missing in (["deleteTopic", "-t", "Orders"], ["deleteTopic", "-c", "DefaultCluster"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(missing)


def test_consumer_status_needs_a_group_and_takes_a_client_and_jstack() -> None:
    args = build_parser().parse_args(["consumerStatus", "-g", "billing"])
    assert (args.group, args.client_id, args.jstack) == ("billing", None, False)
    args = build_parser().parse_args(["consumerStatus", "-g", "billing", "-i", "1.2.3.4@1", "-s"])
    assert (args.client_id, args.jstack) == ("1.2.3.4@1", True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["consumerStatus", "-i", "1.2.3.4@1"])


def test_kv_config_commands_take_mqadmins_flags_trimmed() -> None:
    args = build_parser().parse_args(["updateKvConfig", "-s", " ns ", "-k", "k", "-v", " v 1 "])
    assert (args.command, args.namespace, args.key, args.value) == (
        "updateKvConfig",
        "ns",
        "k",
        "v 1",
    )
    args = build_parser().parse_args(["deleteKvConfig", "-s", "ns", "-k", "k"])
    assert (args.namespace, args.key) == ("ns", "k")
    for missing in (
        ["updateKvConfig", "-s", "ns", "-k", "k"],
        ["deleteKvConfig", "-s", "ns"],
        ["getKvConfig", "-k", "k"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(missing)


def test_update_order_conf_methods_and_put_needs_a_conf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["updateOrderConf", "-t", "T", "-m", "put", "-v", "a:4;b:4"])
    assert (args.topic, args.method, args.order_conf) == ("T", "put", "a:4;b:4")
    assert build_parser().parse_args(["updateOrderConf", "-t", "T", "-m", "get"]).order_conf is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["updateOrderConf", "-t", "T", "-m", "list"])
    # put without -v is a usage error (exit 2), found before any connection is made
    with pytest.raises(SystemExit) as done:
        main(["updateOrderConf", "-t", "T", "-m", "put", "-n", "127.0.0.1:1"])
    assert done.value.code == 2 and "-v" in capsys.readouterr().err


def test_write_perm_and_topic_cluster_commands() -> None:
    for name in ("wipeWritePerm", "addWritePerm"):
        assert build_parser().parse_args([name, "-b", "broker-a"]).broker_name == "broker-a"
        with pytest.raises(SystemExit):
            build_parser().parse_args([name])
    assert build_parser().parse_args(["topicClusterList", "-t", "T"]).topic == "T"


def test_clone_group_offset_takes_mqadmins_flags() -> None:
    args = build_parser().parse_args(["cloneGroupOffset", "-s", "a", "-d", "b", "-t", "T"])
    assert (args.src_group, args.dest_group, args.topic, args.offline) == ("a", "b", "T", False)
    args = build_parser().parse_args(
        ["cloneGroupOffset", "-s", "a", "-d", "b", "-t", "T", "-o", "true"]
    )
    assert args.offline is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cloneGroupOffset", "-s", "a", "-t", "T"])


def test_send_message_takes_mqadmins_flags_and_a_queue_needs_its_broker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(
        ["sendMessage", "-t", "T", "-p", " hi ", "-k", "k1 k2", "-c", "paid"]
    )
    assert (args.topic, args.body, args.key, args.tags, args.broker, args.qid) == (
        "T",
        "hi",
        "k1 k2",
        "paid",
        None,
        None,
    )
    args = build_parser().parse_args(["sendMessage", "-t", "T", "-p", "x", "-b", "a", "-i", "3"])
    assert (args.broker, args.qid) == ("a", 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sendMessage", "-t", "T"])
    # -i without -b is a usage error (exit 2), as mqadmin refuses it, before any request
    with pytest.raises(SystemExit) as done:
        main(["sendMessage", "-t", "T", "-p", "x", "-i", "1", "-n", "127.0.0.1:1"])
    assert done.value.code == 2 and "-b" in capsys.readouterr().err


def test_consume_message_defaults_and_its_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["consumeMessage", "-t", "T"])
    assert (args.count, args.group, args.broker_name, args.queue_id, args.offset) == (
        128,
        "TOOLS_CONSUMER",
        None,
        None,
        None,
    )
    args = build_parser().parse_args(
        ["consumeMessage", "-t", "T", "-b", "a", "-i", "0", "-o", "5", "-c", "2", "-s", "100"]
    )
    assert (args.queue_id, args.offset, args.count, args.begin_timestamp) == (0, 5, 2, 100)
    local = time.mktime((2026, 11, 22, 9, 0, 0, 0, 0, -1))
    args = build_parser().parse_args(["consumeMessage", "-t", "T", "-e", "2026-11-22#09:00:00:000"])
    assert args.end_timestamp == int(local) * 1000
    for wrong, said in (
        (["-i", "0"], "-b"),  # a queue needs its broker
        (["-b", "a", "-o", "5"], "-i"),  # an offset needs its queue
        (["-c", "0"], "positive"),
    ):
        with pytest.raises(SystemExit) as done:
            main(["consumeMessage", "-t", "T", *wrong, "-n", "127.0.0.1:1"])
        assert done.value.code == 2 and said in capsys.readouterr().err


def test_query_by_offset_needs_topic_broker_queue_and_offset() -> None:
    full = ["queryMsgByOffset", "-t", "T", "-b", "a", "-i", "1", "-o", "7"]
    args = build_parser().parse_args(full)
    assert (args.topic, args.broker_name, args.queue_id, args.offset) == ("T", "a", 1, 7)
    for cut in range(1, 5):
        with pytest.raises(SystemExit):
            build_parser().parse_args(full[: 2 * cut - 1] + full[2 * cut + 1 :])


def test_print_msg_flags_are_mqadmins() -> None:
    args = build_parser().parse_args(["printMsg", "-t", "T"])
    assert (args.charset, args.sub_expression, args.print_body) == ("utf-8", "*", True)
    assert (args.begin_timestamp, args.end_timestamp) == (None, None)
    args = build_parser().parse_args(
        ["printMsg", "-t", "T", "-c", "GBK", "-s", "a || b", "-b", "1", "-e", "2", "-d", "false"]
    )
    assert (args.charset, args.sub_expression, args.print_body) == ("gbk", "a || b", False)
    assert (args.begin_timestamp, args.end_timestamp) == (1, 2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["printMsg", "-t", "T", "-c", "no-such-charset"])


def test_print_msg_by_queue_prints_nothing_unless_asked() -> None:
    args = build_parser().parse_args(["printMsgByQueue", "-t", "T", "-a", "a", "-i", "2"])
    assert (args.broker_name, args.queue_id) == ("a", 2)
    assert (args.print_msg, args.print_body, args.calculate) == (False, False, False)
    args = build_parser().parse_args(
        ["printMsgByQueue", "-t", "T", "-a", "a", "-i", "2", "-p", "true", "-f", "true"]
    )
    assert (args.print_msg, args.calculate) == (True, True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["printMsgByQueue", "-t", "T", "-i", "2"])


def test_update_topic_perm_and_broker_config_need_one_place() -> None:
    args = build_parser().parse_args(["updateTopicPerm", "-t", "T", "-p", "4", "-c", "C"])
    assert (args.perm, args.cluster, args.broker_addr) == (4, "C", None)
    args = build_parser().parse_args(["getBrokerConfig", "-b", "127.0.0.1:10911"])
    assert (args.broker_addr, args.cluster) == ("127.0.0.1:10911", None)
    for wrong in (
        ["updateTopicPerm", "-t", "T", "-p", "4"],
        ["updateTopicPerm", "-t", "T", "-p", "5", "-c", "C"],
        ["updateTopicPerm", "-t", "T", "-p", "6", "-c", "C", "-b", "h:1"],
        ["getBrokerConfig"],
        ["getBrokerConfig", "-c", "C", "-b", "h:1"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(wrong)


def test_update_broker_config_takes_a_place_a_key_and_a_value() -> None:
    args = build_parser().parse_args(
        ["updateBrokerConfig", "-b", "h:1", "-k", "brokerPermission", "-v", "4"]
    )
    assert (args.broker_addr, args.key, args.value) == ("h:1", "brokerPermission", "4")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["updateBrokerConfig", "-k", "brokerPermission", "-v", "4"])


def test_topic_list_takes_mqadmins_cluster_flag() -> None:
    assert build_parser().parse_args(["topicList", "-c"]).cluster_model is True
    assert build_parser().parse_args(["topicList"]).cluster_model is False


def test_update_sub_group_defaults_are_mqadmins() -> None:
    # Given updateSubGroup with a group and a place only
    args = build_parser().parse_args(["updateSubGroup", "-g", "billing", "-c", "DefaultCluster"])
    # Then broadcasting and consumeFromMin are off, as RocketMQ's UpdateSubGroupSubCommand
    # sets them, consuming and notifying on
    assert (args.consume_broadcast_enable, args.consume_from_min_enable) == (False, False)
    assert (args.consume_enable, args.notify_consumer_ids_changed_enable) == (True, True)
    # And -d / -m still turn them on
    on = ["updateSubGroup", "-g", "billing", "-b", "h:1", "-d", "true", "-m", "true"]
    args = build_parser().parse_args(on)
    assert (args.consume_broadcast_enable, args.consume_from_min_enable) == (True, True)


@pytest.mark.parametrize(
    ("flags", "order"),
    [([], False), (["-o", "true"], True), (["-o", "false"], False), (["-o"], True)],
)
def test_update_topic_order_takes_mqadmins_true_or_false(flags: list[str], order: bool) -> None:
    # Given updateTopic with mqadmin's -o true|false (or a bare -o, as before)
    args = build_parser().parse_args(["updateTopic", "-t", "T", "-c", "C", *flags, "-w", "4"])
    # Then the order flag is what it says, and the options after it still parse
    assert (args.order, args.write_queues) == (order, 4)


def test_update_topic_order_other_than_true_or_false_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["updateTopic", "-t", "T", "-c", "C", "-o", "yes"])
    assert usage.value.code == 2


def test_query_msg_by_key_takes_mqadmins_max_and_times() -> None:
    # Given queryMsgByKey with only a topic and a key
    args = build_parser().parse_args(["queryMsgByKey", "-t", "T", "-k", "k"])
    # Then up to 64 a broker (mqadmin's maxNum), over all time
    assert (args.max, args.begin_timestamp, args.end_timestamp) == (64, 0, 2**63 - 1)
    # And -b / -e bound the store times (mqadmin 5's beginTimestamp / endTimestamp)
    timed = ["queryMsgByKey", "-t", "T", "-k", "k", "-b", "1000", "-e", "2000", "-m", "5"]
    args = build_parser().parse_args(timed)
    assert (args.max, args.begin_timestamp, args.end_timestamp) == (5, 1000, 2000)
