"""RocketMQ's own config files load: keys actormq does not implement are ignored with a warning,
keys nobody knows stay mistakes; haListenPort defaults to listenPort + 1 as RocketMQ's."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from loguru import logger

from config import (
    BrokerConfig,
    ConfigError,
    dump_properties,
    load_broker_config,
    load_namesrv_config,
    parse_profile,
    with_overrides,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(sink)


def write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rocketmq_broker_keys_actormq_lacks_are_ignored_with_one_warning(
    tmp_path: pathlib.Path, warnings: list[str]
) -> None:
    # Given a RocketMQ broker.conf with keys of BrokerConfig, MessageStoreConfig and
    # NettyServerConfig that actormq does not implement (each stopped the start before)
    path = write(
        tmp_path,
        "broker.conf",
        "brokerName=broker-b\n"
        "rocketmqHome=/opt/rocketmq\n"
        "flushCommitLogLeastPages=4\n"
        "serverWorkerThreads=8\n"
        "enableLmq=true\n"
        "rejectTransactionMessage=false\n"
        "listenPort=10921\n",
    )
    # When it is loaded
    cfg = load_broker_config(path)
    # Then the keys actormq knows are read, and one warning names the file and every key ignored
    assert (cfg.broker_name, cfg.listen_port) == ("broker-b", 10921)
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    for key in (
        "rocketmqHome",
        "flushCommitLogLeastPages",
        "serverWorkerThreads",
        "enableLmq",
        "rejectTransactionMessage",
    ):
        assert key in warnings[0]


def test_rocketmq_namesrv_and_controller_keys_are_ignored(
    tmp_path: pathlib.Path, warnings: list[str]
) -> None:
    # Given a RocketMQ 5 namesrv.conf with NamesrvConfig and ControllerConfig keys
    path = write(
        tmp_path,
        "namesrv.conf",
        "listenPort=9877\nclusterTest=false\ncontrollerType=DLedger\nserverSelectorThreads=3\n",
    )
    # When it is loaded
    cfg = load_namesrv_config(path)
    # Then it loads, warning once about the three keys
    assert cfg.listen_port == 9877
    assert len(warnings) == 1
    assert "clusterTest, controllerType, serverSelectorThreads" in warnings[0]


def test_a_broker_only_key_in_a_namesrv_file_is_still_a_mistake(tmp_path: pathlib.Path) -> None:
    # Given a name-server file with a broker key (RocketMQ's name server has no such field)
    path = write(tmp_path, "namesrv.conf", "flushCommitLogLeastPages=4\n")
    # When it is loaded, Then it is refused as unknown
    with pytest.raises(ConfigError) as err:
        load_namesrv_config(path)
    assert (err.value.file, err.value.key) == (f"{path}:1", "flushCommitLogLeastPages")
    assert err.value.problem.startswith("unknown key")


def test_toml_and_profiles_ignore_rocketmq_keys_too(
    tmp_path: pathlib.Path, warnings: list[str]
) -> None:
    # Given a TOML broker file and a profile with RocketMQ keys actormq lacks
    toml = write(tmp_path, "b.toml", '[broker]\nbrokerName = "x"\nserverWorkerThreads = 8\n')
    profile = (
        "[[namesrv]]\nlistenPort = 0\nclusterTest = true\n"
        "[[broker]]\nlistenPort = 0\nenableLmq = true\n"
        "[[broker]]\nbrokerName = 'b'\nlistenPort = 0\nenableLmq = true\n"
    )
    # When they are loaded
    assert load_broker_config(toml).broker_name == "x"
    assert len(parse_profile(profile, "p.toml", "p").brokers) == 2
    # Then one warning per file, each key once
    assert len(warnings) == 2
    assert warnings[0].endswith("serverWorkerThreads")
    assert warnings[1].startswith("p.toml:") and warnings[1].endswith("clusterTest, enableLmq")


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("flushComitLogLeastPages", "flushCommitLogLeastPages"),  # a typo of a RocketMQ key
        ("namesrvAdr", "namesrvAddr"),
        ("brokerIp1", "brokerIP1"),
    ],
)
def test_a_key_nobody_knows_is_refused_with_a_close_hint(
    tmp_path: pathlib.Path, key: str, hint: str
) -> None:
    # Given a key neither actormq nor RocketMQ knows, close to one of theirs
    path = write(tmp_path, "b.properties", f"{key}=1\n")
    # When it is loaded, Then the error names file, line, key and the close one
    with pytest.raises(ConfigError) as err:
        load_broker_config(path)
    assert (err.value.file, err.value.key) == (f"{path}:1", key)
    assert err.value.problem == f"unknown key; did you mean {hint}?"


@pytest.mark.parametrize("key", ["lmqEnabled", "flushLeastPages", "zzzz", "aclEnabled2Much"])
def test_a_far_key_gets_no_misleading_hint(tmp_path: pathlib.Path, key: str) -> None:
    # Given unknown keys only loosely like known ones (at the old cutoff 0.6 'enableLmq'
    # suggested aclEnable and 'flushCommitLogLeastPages' flushCommitLogTimed)
    path = write(tmp_path, "b.properties", f"{key}=1\n")
    # When it is loaded
    with pytest.raises(ConfigError) as err:
        load_broker_config(path)
    # Then it is refused without a suggestion
    assert err.value.problem == "unknown key", err.value.problem


def test_ha_listen_port_defaults_to_listen_port_plus_one(tmp_path: pathlib.Path) -> None:
    # Given a RocketMQ 4 style file for a second broker on the machine: listenPort only
    path = write(tmp_path, "broker-b.properties", "brokerName=broker-b\nlistenPort=10921\n")
    # When it is loaded
    cfg = load_broker_config(path)
    # Then its HA port is listenPort + 1 (it was 10912, another broker's HA port)
    assert cfg.ha_listen_port == 10922
    assert cfg.ha_addr().endswith(":10922")
    # And the defaults stay 10911 / 10912; listenPort 0 (a free port) gives a free HA port;
    # a haListenPort set is kept, and a negative one means listenPort + 1 (RocketMQ 5)
    assert BrokerConfig().ha_listen_port == 10912
    assert BrokerConfig(listen_port=0).ha_listen_port == 0
    assert BrokerConfig(listen_port=10921, ha_listen_port=10950).ha_listen_port == 10950
    assert BrokerConfig(listen_port=10921, ha_listen_port=-1).ha_listen_port == 10922


def test_ha_listen_port_follows_an_overridden_listen_port() -> None:
    # Given a config whose haListenPort is the default (listenPort + 1) and one that set it
    derived = BrokerConfig(listen_port=10921)
    chosen = BrokerConfig(listen_port=10921, ha_listen_port=10950)
    # When --listen-port changes the listen port
    # Then the default follows it, a chosen one stays
    assert with_overrides(derived, listen_port=20911).ha_listen_port == 20912
    assert with_overrides(chosen, listen_port=20911).ha_listen_port == 10950
    assert with_overrides(derived, listen_port=20911, ha_listen_port=0).ha_listen_port == 0


def test_dump_leaves_out_a_derived_ha_listen_port(tmp_path: pathlib.Path) -> None:
    # Given a broker with listenPort 10921 and the default haListenPort
    cfg = BrokerConfig(listen_port=10921)
    # When only the changed keys are written
    text = dump_properties(cfg, only_changed=True)
    # Then haListenPort is not among them, and the text loads back equal
    assert "haListenPort" not in text
    assert load_broker_config(write(tmp_path, "b.properties", text)) == cfg
