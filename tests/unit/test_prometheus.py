"""runtime.prometheus: the text exposition format a scrape reads."""

from __future__ import annotations

import pytest

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
        render([Family("bad-name", "gauge", "", [({}, 1)])])
    with pytest.raises(ValueError, match="label name"):
        render([Family("ok", "gauge", "", [({"bad-label": "v"}, 1)])])
    assert render([Family("ok", "gauge", "")]) == b""
