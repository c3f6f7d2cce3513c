"""Advertised addresses are checked at start: an address nobody else could reach fails with a
message (exit 2 for a broker process), not later with clients that time out."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from config import BrokerConfig, with_overrides
from runtime.advertise import check_advertised
from runtime.errors import ConfigError
from tests.harness import RuntimeProcess

pytestmark = pytest.mark.timeout(60)


def cfg(**kw: Any) -> BrokerConfig:
    return with_overrides(BrokerConfig(), **kw)


def test_a_local_setup_passes() -> None:
    check_advertised(cfg(namesrv_addr="127.0.0.1:9876"))
    check_advertised(cfg(listen_host="0.0.0.0", broker_ip1="127.0.0.1"))
    # IPv6: on ::1, or dual stack on :: advertising either family
    check_advertised(cfg(listen_host="::1", broker_ip1="::1", namesrv_addr="::1:9876"))
    check_advertised(cfg(listen_host="::", broker_ip1="::1", broker_ip2="127.0.0.1"))


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"broker_ip1": "10.1.2.3"}, "brokerIP1", "listens on 127.0.0.1 only"),
        ({"broker_ip2": "10.1.2.3"}, "brokerIP2", "listens on 127.0.0.1 only"),
        (
            {"listen_host": "0.0.0.0", "namesrv_addr": "10.9.9.9:9876"},
            "brokerIP1",
            "loopback address, advertised to the name server 10.9.9.9",
        ),
        ({"broker_ip1": "no-such-host.invalid"}, "brokerIP1", "does not resolve"),
        ({"listen_host": "0.0.0.0", "broker_ip1": "::1"}, "brokerIP1", "listens on IPv4 only"),
        ({"broker_ip1": "::1"}, "brokerIP1", "listens on IPv4 only"),
        ({"listen_host": "::1"}, "brokerIP1", "listens on IPv6 only"),
        (
            {"listen_host": "::1", "broker_ip1": "::1", "broker_ip2": "10.1.2.3"},
            "brokerIP2",
            "IPv6",
        ),
        (
            {"listen_host": "::", "broker_ip1": "::1", "namesrv_addr": "[2001:db8::9]:9876"},
            "brokerIP1",
            "loopback address, advertised to the name server 2001:db8::9",
        ),
    ],
)
def test_unreachable_advertised_addresses_are_refused(
    values: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check_advertised(cfg(**values))
    assert err.value.key == key and words in err.value.problem


def test_a_broker_process_with_a_bad_brokerip1_exits_2(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "b.properties"
    conf.write_text("brokerName=broker-x\nbrokerIP1=10.1.2.3\nlistenHost=127.0.0.1\n")
    args = ["broker", "-c", str(conf), "--ephemeral-ports", "--data-dir", str(tmp_path / "d")]
    with RuntimeProcess(args) as node:
        assert node.wait(30) == 2
        assert "brokerIP1" in node.stderr_text() and "listens on 127.0.0.1 only" in (
            node.stderr_text()
        )
