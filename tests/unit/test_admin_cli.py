"""The admin command line's own parsing: mqadmin's time and boolean forms, and its tables."""

from __future__ import annotations

import argparse
import time

import pytest

from runtime.admin import _boolean, _table, _timestamp, build_parser, main


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
