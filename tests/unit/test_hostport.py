"""Addresses with IPv6 hosts: RocketMQ's unbracketed ``v6:port`` (split at the last ``:``),
bracketed ``[v6]:port``, IPv4 and host names; bad input raises each layer's own error type."""

from __future__ import annotations

import socket

import pytest

from actors.client.config import resolve_namesrv
from actors.client.errors import ClientError
from actors.client.msgid import MessageIdGenerator
from config import BrokerConfig, NamesrvConfig
from runtime.acl.addresses import compile_pattern
from runtime.errors import AddressError, ConfigError
from runtime.hostport import (
    family_of,
    format_address,
    host_of,
    ip_bytes,
    ip_text,
    parse_address,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9876", ("127.0.0.1", 9876)),
        ("::1:9876", ("::1", 9876)),  # RocketMQ's own form: split at the last ':'
        ("fe80::1:10911", ("fe80::1", 10911)),
        ("[::1]:9876", ("::1", 9876)),
        ("[2001:db8::7]:10911", ("2001:db8::7", 10911)),
        (" [fe80::1%eth0]:1 ", ("fe80::1%eth0", 1)),
        ("::ffff:10.0.0.1:10911", ("10.0.0.1", 10911)),  # IPv4-mapped reads as IPv4
        ("broker-a.svc.cluster.local:10911", ("broker-a.svc.cluster.local", 10911)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_address(text: str, want: tuple[str, int]) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize(
    "bad",
    ["", "9876", ":9876", "host:", "host:0", "host:65536", "host:x1", "[::1]", "[::1]9876",
     "[::1:9876", "[nothost]:1", "a b:1", "::1:-1"],
)  # fmt: skip
def test_bad_addresses_raise_the_address_error(bad: str) -> None:
    with pytest.raises(AddressError):
        parse_address(bad)


def test_format_host_of_and_bytes() -> None:
    assert format_address("::1", 9876) == "::1:9876"  # no brackets, as RocketMQ writes
    assert format_address("::ffff:127.0.0.1", 5) == "127.0.0.1:5"
    assert host_of("::1:40000") == "::1"
    assert host_of("[::1]:40000") == "::1"
    assert host_of("10.0.0.1:40000") == "10.0.0.1"
    assert host_of("10.0.0.1") == "10.0.0.1"
    assert ip_bytes("::1") == bytes(15) + b"\x01"
    assert ip_bytes("10.0.0.1") == b"\x0a\0\0\x01"
    assert ip_bytes("::ffff:10.0.0.1") == b"\x0a\0\0\x01"
    assert ip_text(ip_bytes("2001:db8::7")) == "2001:db8::7"
    assert ip_text(b"\x0a\0\0\x01") == "10.0.0.1"
    assert family_of("::") == socket.AF_INET6
    assert family_of("0.0.0.0") == socket.AF_INET
    assert family_of("localhost") == socket.AF_INET
    with pytest.raises(AddressError):
        ip_bytes("localhost")


def test_config_accepts_ipv6_and_refuses_bad_addresses_with_config_error() -> None:
    # Given broker configs with IPv6 name servers, HA master and advertised address
    cfg = BrokerConfig(
        namesrv_addr="::1:9876;[fe80::2]:9876;10.0.0.1:9876",
        ha_master_address="::1:10912",
        listen_host="::",
        broker_ip1="::1",
    )
    # Then they parse the RocketMQ way and the addresses given out are unbracketed
    assert cfg.namesrv_addresses() == [("::1", 9876), ("fe80::2", 9876), ("10.0.0.1", 9876)]
    assert cfg.broker_addr() == "::1:10911"
    assert NamesrvConfig(listen_host="::1").address() == "::1:9876"
    # And a bad address is a ConfigError naming the key, never a bare ValueError
    for bad in ({"namesrv_addr": "[::1]"}, {"ha_master_address": "fe80::1:99999"}):
        with pytest.raises(ConfigError) as err:
            BrokerConfig(**bad)
        assert not isinstance(err.value, ValueError)


def test_an_ipv6_client_ip_is_bracketed_in_the_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import actors.client.config as client_config

    monkeypatch.setattr(client_config, "local_ip", lambda: "fd00::2")
    config = client_config.ClientConfig.make("127.0.0.1:9876", "inst")
    assert (config.client_ip, config.client_id) == ("[fd00::2]", "[fd00::2]@inst")
    monkeypatch.setattr(client_config, "local_ip", lambda: "10.0.0.7")
    assert client_config.ClientConfig.make("127.0.0.1:9876", "inst").client_id == "10.0.0.7@inst"


def test_client_namesrv_addresses() -> None:
    assert resolve_namesrv("::1:9876;[::1]:9877") == ("::1:9876", "[::1]:9877")
    with pytest.raises(ClientError):
        resolve_namesrv("[::1]")


@pytest.mark.parametrize(
    ("pattern", "inside", "outside"),
    [
        ("::1", ["::1", "0:0:0:0:0:0:0:1"], ["::2", "127.0.0.1"]),
        ("*", ["::1", "10.0.0.1"], []),
        ("*:*:*:*:*:*:*:*", ["fe80::1"], []),
        ("2001:db8::7,10.0.0.1", ["2001:db8::7", "10.0.0.1"], ["2001:db8::8"]),
        ("fe80::{1,2}", ["fe80::1", "fe80::2"], ["fe80::3"]),
        ("fe80:0:0:0:0:0:0:*", ["fe80::1", "fe80::ffff"], ["fe81::1", "10.0.0.1"]),
        ("2001:db8::a-ff", ["2001:db8::a", "2001:db8::ff"], ["2001:db8::9", "2001:db8::100"]),
        ("192.168.*", ["192.168.1.1"], ["::1"]),
    ],
)
def test_acl_ipv6_white_addresses(pattern: str, inside: list[str], outside: list[str]) -> None:
    match = compile_pattern(pattern)
    assert all(match(h) for h in inside)
    assert not any(match(h) for h in outside)


@pytest.mark.parametrize("bad", ["fe80::zz", "fe80::1::2:*", "fe80::{1,zz}", "1:2:3:4:5:6:7:8:9-a"])
def test_malformed_ipv6_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_pattern(bad)


def test_uniq_key_takes_16_bytes_for_an_ipv6_client() -> None:
    # RocketMQ's MessageClientIDSetter: ip (4 or 16) + pid 2 + hash 4 + time 4 + counter 2
    v4 = MessageIdGenerator("10.0.0.1", pid=1).next_id()
    v6 = MessageIdGenerator("2001:db8::7", pid=1).next_id()
    assert (len(v4), len(v6)) == (32, 56)
    assert v4.startswith("0A0000010001") and v6.startswith("20010DB8" + "0" * 22 + "070001")
    assert MessageIdGenerator("::ffff:10.0.0.1", pid=1).next_id().startswith("0A000001")


def test_a_host_name_resolves_ipv4_first_and_literals_stay() -> None:
    from runtime.hostport import resolve_ip
    from runtime.store.settings import StoreSettings

    assert resolve_ip("localhost") == "127.0.0.1"
    assert resolve_ip("[::1]") == "::1"
    assert resolve_ip("::ffff:10.0.0.1") == "10.0.0.1"
    with pytest.raises(AddressError, match="does not resolve"):
        resolve_ip("no-such-host.invalid")
    # a brokerIP1 host name gives the records its address (RocketMQ resolves it too)
    assert StoreSettings(root="/nonexistent", store_host="localhost").store_host_bytes == (
        b"\x7f\x00\x00\x01"
    )
