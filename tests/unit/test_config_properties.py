"""config.properties: Java properties syntax, and BrokerConfig -> .properties -> BrokerConfig."""

from __future__ import annotations

import pathlib
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import BrokerConfig, BrokerRole, FlushDiskType, dump_properties, load_broker_config
from config.properties import (
    Entry,
    PropertiesSyntaxError,
    format_properties,
    parse_properties,
)

pytestmark = pytest.mark.timeout(60)


def pairs(text: str) -> list[tuple[str, str]]:
    return [(e.key, e.value) for e in parse_properties(text)]


def test_separators_and_whitespace() -> None:
    text = "a=1\nb = 2\n  c:3\nd : 4\ne 5\nf\t=\t6  \ng\n h=\n"
    assert pairs(text) == [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
        ("e", "5"),
        ("f", "6"),
        ("g", ""),
        ("h", ""),
    ]


def test_value_keeps_inner_separators() -> None:
    assert pairs("namesrvAddr=a:1;b:2\nx = y = z\n") == [("namesrvAddr", "a:1;b:2"), ("x", "y = z")]


def test_comments_and_blank_lines_with_line_numbers() -> None:
    text = "# comment\n! also comment\n\n   \n  # indented comment\nkey=value # not a comment\n"
    assert parse_properties(text) == [Entry("key", "value # not a comment", 6)]


def test_continuation_lines() -> None:
    text = "messageDelayLevel = 1s 5s \\\n    10s \\\n    30s\nnext=1\n"
    entries = parse_properties(text)
    assert entries == [Entry("messageDelayLevel", "1s 5s 10s 30s", 1), Entry("next", "1", 4)]


def test_even_backslashes_do_not_continue() -> None:
    assert pairs("a=x\\\\\nb=y\n") == [("a", "x\\"), ("b", "y")]


def test_comment_line_does_not_continue() -> None:
    assert pairs("# comment \\\na=1\n") == [("a", "1")]


def test_continuation_at_end_of_file() -> None:
    assert pairs("a=x\\") == [("a", "x")]


def test_escapes() -> None:
    text = "k\\ ey\\=x=\\ lead\\t\\u0041\\u00e9\\:\\\\ trail\\ \nsurrogate=\\uD83D\\uDE00\n"
    assert pairs(text) == [("k ey=x", " lead\tAé:\\ trail "), ("surrogate", "\U0001f600")]


def test_line_endings_and_bom() -> None:
    assert pairs("\ufeffa=1\r\nb=2\rc=3") == [("a", "1"), ("b", "2"), ("c", "3")]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a=1\n=2\n", 2, "no key"),
        ("a=\\u12\n", 1, "\\u"),
        ("a=\\uD83D\n", 1, "surrogate"),
    ],
)
def test_syntax_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(PropertiesSyntaxError) as info:
        parse_properties(text)
    assert info.value.line == line and words in info.value.problem


@given(
    st.lists(
        st.tuples(st.text(min_size=1), st.text()),
        max_size=8,
    )
)
def test_format_then_parse_is_identity(items: list[tuple[str, str]]) -> None:
    assert pairs(format_properties(items, header="round\ntrip")) == items


# --- BrokerConfig round trip --------------------------------------------------------------------

_names = st.text(
    st.characters(blacklist_categories=("Cs", "Z", "Cc", "Cf", "Co", "Cn")), min_size=1, max_size=12
)
_ports = st.integers(0, 65535)
_positive = st.integers(1, 2**40)
_hours = st.lists(st.integers(0, 23), min_size=1, max_size=3).map(
    lambda hs: ";".join(f"{h:02d}" for h in hs)
)
_levels = st.lists(
    st.tuples(st.integers(1, 999), st.sampled_from("smhd")), min_size=1, max_size=5
).map(lambda ls: " ".join(f"{n}{u}" for n, u in ls))
_addr = st.tuples(st.sampled_from(["127.0.0.1", "ns1", "10.0.0.7", "::1"]), st.integers(1, 65535))
_namesrv_addr = st.lists(_addr, max_size=3).map(lambda xs: ";".join(f"{h}:{p}" for h, p in xs))


@st.composite
def broker_configs(draw: st.DrawFn) -> BrokerConfig:
    role = draw(st.sampled_from(BrokerRole))
    listen_port = draw(_ports)
    ha_port = draw(_ports.filter(lambda p: p == 0 or p != listen_port))
    return BrokerConfig(
        broker_cluster_name=draw(_names),
        broker_name=draw(_names),
        broker_id=0 if role is not BrokerRole.SLAVE else draw(st.integers(1, 2**31)),
        broker_role=role,
        flush_disk_type=draw(st.sampled_from(FlushDiskType)),
        listen_port=listen_port,
        ha_listen_port=ha_port,
        broker_ip1=draw(_names),
        broker_ip2=draw(st.just("") | _names),
        namesrv_addr=draw(_namesrv_addr),
        ha_master_address=draw(st.just("") | _addr.map(lambda a: f"{a[0]}:{a[1]}")),
        store_path_root_dir=draw(st.text(min_size=1).filter(str.strip)),
        store_path_commit_log=draw(st.text()),
        mapped_file_size_commit_log=draw(_positive),
        mapped_file_size_consume_queue=draw(st.integers(1, 2**30)) * 20,
        flush_commit_log_timed=draw(st.booleans()),
        sync_flush_timeout=draw(_positive),
        max_message_size=draw(_positive),
        delete_when=draw(_hours),
        file_reserved_time=draw(st.integers(0, 10_000)),
        disk_max_used_space_ratio=draw(st.integers(10, 95)),
        disk_space_clean_forcibly_ratio=draw(st.integers(10, 95)),
        auto_create_topic_enable=draw(st.booleans()),
        default_topic_queue_nums=draw(st.integers(1, 1024)),
        broker_permission=draw(st.integers(0, 7)),
        slave_read_enable=draw(st.booleans()),
        message_delay_level=draw(_levels),
        transaction_timeout=draw(_positive),
        redelete_hanged_file_interval=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=150, deadline=None)
@given(broker_configs(), st.booleans())
def test_broker_config_round_trips_through_properties(cfg: BrokerConfig, only: bool) -> None:
    text = dump_properties(cfg, only_changed=only, header="generated")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "broker.properties"
        path.write_text(text, encoding="utf-8")
        assert load_broker_config(path) == cfg
