"""runtime.prometheus: the text exposition format a scrape reads."""

from __future__ import annotations

import pytest

from runtime.latency import SIZE_BUCKETS, Histogram, LatencyHistogram, rpc_labels
from runtime.prometheus import Family, render

pytestmark = pytest.mark.timeout(10)


def test_families_render_with_help_type_and_common_labels_first() -> None:
    lag = Family("rocketmq_consumer_lag_messages", "gauge", "Not yet consumed.")
    lag.add(3, topic="Orders", consumer_group="billing")
    size = Family("rocketmq_storage_size", "gauge", "Bytes.")
    size.add(1.5e9)
    empty = Family("rocketmq_producer_connections", "gauge", "Members.")
    text = render([lag, empty, size], {"cluster": "C"}).decode()
    assert text == (
        "# HELP rocketmq_consumer_lag_messages Not yet consumed.\n"
        "# TYPE rocketmq_consumer_lag_messages gauge\n"
        'rocketmq_consumer_lag_messages{cluster="C",topic="Orders",consumer_group="billing"} 3\n'
        "# HELP rocketmq_storage_size Bytes.\n"
        "# TYPE rocketmq_storage_size gauge\n"
        'rocketmq_storage_size{cluster="C"} 1500000000\n'
    )


def test_label_values_and_odd_numbers_are_escaped_as_the_format_asks() -> None:
    family = Family("x_ratio", "gauge", "a \\ help\nline")
    family.add(0.25, topic='we"ird\\name\n')
    family.add(float("nan"), topic="n")
    family.add(float("inf"), topic="i")
    lines = render([family]).decode().splitlines()
    assert lines[0] == "# HELP x_ratio a \\\\ help\\nline"
    assert lines[2] == 'x_ratio{topic="we\\"ird\\\\name\\n"} 0.25'
    assert lines[3:] == ['x_ratio{topic="n"} NaN', 'x_ratio{topic="i"} +Inf']


def test_bad_names_are_refused_and_nothing_renders_nothing() -> None:
    with pytest.raises(ValueError, match="metric name"):
        render([Family("bad-name", "gauge", "", [({}, 1, "")])])
    with pytest.raises(ValueError, match="label name"):
        render([Family("ok", "gauge", "", [({"bad-label": "v"}, 1, "")])])
    assert render([Family("ok", "gauge", "")]) == b""


def test_a_latency_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    # Given three requests of one kind: 0.05 ms, 2 ms and 5 s (past every bucket)
    latency = LatencyHistogram("rocketmq_rpc_latency", "RPC latency.", ("request_code",))
    for seconds in (0.00005, 0.002, 5.0):
        latency.observe(("SEND_MESSAGE",), seconds)
    # When rendered
    text = render([latency.family()], {"cluster": "c"}).decode()
    lines = text.splitlines()
    # Then it is a histogram: cumulative buckets (le last), +Inf = count, the sum in ms
    assert "# TYPE rocketmq_rpc_latency histogram" in lines
    bucket = 'rocketmq_rpc_latency_bucket{cluster="c",request_code="SEND_MESSAGE",le="%s"} %d'
    assert bucket % ("0.1", 1) in lines
    assert bucket % ("1", 1) in lines
    assert bucket % ("3", 2) in lines
    assert bucket % ("3000", 2) in lines
    assert bucket % ("+Inf", 3) in lines
    assert 'rocketmq_rpc_latency_count{cluster="c",request_code="SEND_MESSAGE"} 3' in lines
    total = next(line for line in lines if line.startswith("rocketmq_rpc_latency_sum"))
    assert abs(float(total.rsplit(" ", 1)[1]) - 5002.05) < 0.01
    # And a remoting request's labels name its codes (a made-up code: unknown)
    assert rpc_labels(310, 0) == ("remoting", "SEND_MESSAGE_V2", "SUCCESS")
    assert rpc_labels(65000, 0)[1] == "unknown"


def test_a_size_histogram_counts_bytes_in_rocketmqs_buckets() -> None:
    # Given RocketMQ's message size buckets and four sizes observed
    sizes = Histogram("rocketmq_message_size", "Sizes.", ("topic",), buckets=SIZE_BUCKETS, scale=1)
    for size in (100, 1024, 5000, 5 * 1024 * 1024):
        sizes.observe(("T",), size)
    # When rendered, Then each is in its bucket (a bound holds its own size), bytes summed
    lines = render([sizes.family()]).decode().splitlines()
    bucket = 'rocketmq_message_size_bucket{topic="T",le="%s"} %d'
    assert bucket % ("1024", 2) in lines
    assert bucket % ("4096", 2) in lines
    assert bucket % ("524288", 3) in lines
    assert bucket % ("4194304", 3) in lines
    assert bucket % ("+Inf", 4) in lines
    assert f'rocketmq_message_size_sum{{topic="T"}} {100 + 1024 + 5000 + 5 * 1024 * 1024}' in lines
