"""config: schema defaults, loaders, shipped profiles and broker files, every kind of mistake."""

from __future__ import annotations

import pathlib

import msgspec
import pytest

import config
from config import (
    BrokerConfig,
    BrokerRole,
    ClusterProfile,
    ConfigError,
    FlushDiskType,
    NamesrvConfig,
    dump_properties,
    list_profiles,
    load_broker_config,
    load_namesrv_config,
    load_profile,
    parse_profile,
    with_data_dir,
    with_overrides,
)
from runtime.store.settings import StoreSettings

pytestmark = pytest.mark.timeout(30)

CONFIG_DIR = pathlib.Path(config.__file__).parent
BROKER_FILES = sorted(
    p for p in (CONFIG_DIR / "brokers").glob("*/*.properties") if p.name != "namesrv.properties"
)
NAMESRV_FILES = sorted((CONFIG_DIR / "brokers").glob("*/namesrv.properties"))


def write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, *args) -> ConfigError:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return info.value


# --- defaults ---------------------------------------------------------------------------------


ROCKETMQ_BROKER_DEFAULTS = {
    "brokerClusterName": "DefaultCluster",
    "brokerId": 0,
    "brokerRole": BrokerRole.ASYNC_MASTER,
    "flushDiskType": FlushDiskType.ASYNC_FLUSH,
    "listenPort": 10911,
    "namesrvAddr": "",
    "storePathRootDir": "~/store",
    "mappedFileSizeCommitLog": 1073741824,
    "mappedFileSizeConsumeQueue": 6000000,
    "flushIntervalCommitLog": 500,
    "flushIntervalConsumeQueue": 1000,
    "syncFlushTimeout": 5000,
    "slaveTimeout": 3000,
    "maxMessageSize": 4194304,
    "maxTransferCountOnMessageInMemory": 32,
    "maxTransferBytesOnMessageInMemory": 262144,
    "deleteWhen": "04",
    "fileReservedTime": 72,
    "diskMaxUsedSpaceRatio": 75,
    "diskSpaceCleanForciblyRatio": 85,
    "diskSpaceWarningLevelRatio": 90,
    "cleanResourceInterval": 10000,
    "deleteCommitLogFilesInterval": 100,
    "destroyMapedFileIntervalForcibly": 120000,
    "redeleteHangedFileInterval": 120000,
    "autoCreateTopicEnable": True,
    "defaultTopicQueueNums": 8,
    "autoCreateSubscriptionGroup": True,
    "brokerPermission": 6,
    "haListenPort": 10912,
    "haMasterAddress": "",
    "haSendHeartbeatInterval": 5000,
    "haHousekeepingInterval": 20000,
    "haSlaveFallbehindMax": 268435456,
    "haMaxTimeSlaveNotCatchup": 15000,
    "haTransferBatchSize": 32768,
    "slaveReadEnable": False,
    "longPollingEnable": True,
    "shortPollingTimeMills": 1000,
    "registerNameServerPeriod": 30000,
    "transactionTimeOut": 6000,
    "transactionCheckMax": 15,
    "transactionCheckInterval": 30000,
    "messageDelayLevel": "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
    "enablePropertyFilter": False,
    "timerWheelEnable": True,
    "fetchNamesrvAddrByAddressServer": False,
    "transientStorePoolEnable": False,
    "osPageCacheBusyTimeOutMills": 1000,
    "useReentrantLockWhenPutMessage": True,
    "waitTimeMillsInSendQueue": 200,
}


def test_broker_defaults_match_rocketmq() -> None:
    cfg = BrokerConfig()
    encoded = msgspec.to_builtins(cfg)
    for key, expected in ROCKETMQ_BROKER_DEFAULTS.items():
        value = getattr(cfg, config.fields.field_specs(BrokerConfig)[key].attr)
        assert value == expected, key
        assert key in encoded
    assert cfg.broker_name == "broker-a"
    assert cfg.listen_host == "127.0.0.1" and cfg.broker_ip1 == "127.0.0.1"
    assert cfg.flush_commit_log_timed is False


def test_namesrv_defaults() -> None:
    cfg = NamesrvConfig()
    assert (cfg.listen_port, cfg.listen_host) == (9876, "127.0.0.1")
    assert cfg.scan_not_active_broker_interval == 5_000  # (RocketMQ 5's NamesrvConfig)
    assert cfg.broker_channel_expired_time == 120_000
    assert cfg.controller_enable is False
    assert cfg.address() == "127.0.0.1:9876"


def test_enums_are_named_strings() -> None:
    assert [r.value for r in BrokerRole] == ["ASYNC_MASTER", "SYNC_MASTER", "SLAVE"]
    assert [f.value for f in FlushDiskType] == ["ASYNC_FLUSH", "SYNC_FLUSH"]
    assert all(m.name == m.value for m in [*BrokerRole, *FlushDiskType])


def test_structs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        BrokerConfig().broker_id = 1  # type: ignore[misc]


def test_helpers() -> None:
    cfg = BrokerConfig(
        namesrv_addr="10.0.0.1:9876;ns2:9877;",
        store_path_root_dir="~/s",
        broker_ip2="10.0.0.9",
        delete_when="04;16",
    )
    assert cfg.namesrv_addresses() == [("10.0.0.1", 9876), ("ns2", 9877)]
    assert cfg.store_root() == pathlib.Path.home() / "s"
    assert cfg.commit_log_dir() == pathlib.Path.home() / "s" / "commitlog"
    assert cfg.is_master
    assert cfg.broker_addr() == "127.0.0.1:10911"
    assert cfg.ha_addr() == "10.0.0.9:10912"
    assert cfg.delete_hours() == [4, 16]
    assert cfg.node_name() == "broker-a-0"
    assert BrokerConfig().delay_levels_ms()[:4] == (1000, 5000, 10000, 30000)
    assert BrokerConfig().delay_levels_ms()[-1] == 7_200_000
    assert BrokerConfig().namesrv_addresses() == []
    assert BrokerConfig().ha_addr() == "127.0.0.1:10912"
    assert not BrokerConfig(broker_role=BrokerRole.SLAVE, broker_id=1).is_master
    assert BrokerConfig(store_path_commit_log="/x/cl").commit_log_dir() == pathlib.Path("/x/cl")


# --- shipped profiles and broker files ------------------------------------------------------


def test_list_profiles() -> None:
    assert list_profiles() == ["2m-2s-async", "2m-2s-sync", "2m-noslave", "default"]


@pytest.mark.parametrize("name", ["default", "2m-noslave", "2m-2s-async", "2m-2s-sync"])
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, ClusterProfile)
    assert profile.name == name and profile.description
    assert [n.listen_port for n in profile.namesrvs] == [9876]
    assert all(b.namesrv_addr == "" and b.ha_master_address == "" for b in profile.brokers)


def test_default_profile() -> None:
    (broker,) = load_profile("default").brokers
    assert (broker.broker_name, broker.broker_id, broker.listen_port) == ("broker-a", 0, 10911)
    assert broker.broker_role is BrokerRole.ASYNC_MASTER
    assert broker.flush_disk_type is FlushDiskType.ASYNC_FLUSH


def test_2m_noslave_profile() -> None:
    brokers = load_profile("2m-noslave").brokers
    assert [(b.broker_name, b.listen_port) for b in brokers] == [
        ("broker-a", 10911),
        ("broker-b", 10921),
    ]
    assert all(b.is_master for b in brokers)


@pytest.mark.parametrize(
    ("name", "master_role"),
    [("2m-2s-async", BrokerRole.ASYNC_MASTER), ("2m-2s-sync", BrokerRole.SYNC_MASTER)],
)
def test_2m_2s_profiles(name: str, master_role: BrokerRole) -> None:
    profile = load_profile(name)
    nodes = [(b.broker_name, b.broker_id, b.listen_port, b.ha_listen_port) for b in profile.brokers]
    assert nodes == [
        ("broker-a", 0, 10911, 10912),
        ("broker-a", 1, 10921, 10922),
        ("broker-b", 0, 10931, 10932),
        ("broker-b", 1, 10941, 10942),
    ]
    for b in profile.brokers:
        assert b.broker_role is (master_role if b.broker_id == 0 else BrokerRole.SLAVE)
        assert b.flush_disk_type is FlushDiskType.ASYNC_FLUSH
    assert [m.broker_name for m in profile.masters()] == ["broker-a", "broker-b"]
    assert [b.broker_id for b in profile.group("broker-b")] == [0, 1]


def test_shipped_broker_files_exist() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in BROKER_FILES}
    for mode in ("async", "sync"):
        for node in ("broker-a", "broker-a-s", "broker-b", "broker-b-s"):
            assert f"2m-2s-{mode}/{node}.properties" in names
    assert {"2m-noslave/broker-a.properties", "2m-noslave/broker-b.properties"} <= names


@pytest.mark.parametrize("path", NAMESRV_FILES, ids=lambda p: p.parent.name)
def test_shipped_namesrv_files_run_the_controller(path: pathlib.Path) -> None:
    # The 2m-2s file sets run in controller mode: their name server runs the controller
    assert path.parent.name in ("2m-2s-async", "2m-2s-sync")
    assert load_namesrv_config(path) == NamesrvConfig(controller_enable=True)
    for broker in path.parent.glob("broker-*.properties"):
        assert load_broker_config(broker).controller_mode


@pytest.mark.parametrize("path", BROKER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_broker_file_loads(path: pathlib.Path) -> None:
    cfg = load_broker_config(path)
    assert cfg.namesrv_addresses() == [("127.0.0.1", 9876)]
    profile = load_profile(path.parent.name)
    twin = next(
        b
        for b in profile.brokers
        if (b.broker_name, b.broker_id) == (cfg.broker_name, cfg.broker_id)
    )
    assert (cfg.broker_role, cfg.flush_disk_type) == (twin.broker_role, twin.flush_disk_type)
    assert (cfg.listen_port, cfg.ha_listen_port) == (twin.listen_port, twin.ha_listen_port)
    if not cfg.is_master:
        master = profile.group(cfg.broker_name)[0]
        assert cfg.ha_master_address == f"127.0.0.1:{master.ha_listen_port}"
    assert path.name.endswith("-s.properties") == (cfg.broker_role is BrokerRole.SLAVE)


# --- loading ------------------------------------------------------------------------------------


def test_properties_coerces_every_type(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path,
        "b.properties",
        "brokerName = broker-x\n"
        "brokerId=2\n"
        "brokerRole:SLAVE\n"
        "flushDiskType SYNC_FLUSH\n"
        "autoCreateTopicEnable=FALSE\n"
        "slaveReadEnable=True\n"
        "listenPort=+0\n"
        "haMasterAddress=10.0.0.1:10912\n",
    )
    cfg = load_broker_config(path)
    assert cfg.broker_name == "broker-x" and cfg.broker_id == 2
    assert cfg.broker_role is BrokerRole.SLAVE and cfg.flush_disk_type is FlushDiskType.SYNC_FLUSH
    assert cfg.auto_create_topic_enable is False and cfg.slave_read_enable is True
    assert cfg.listen_port == 0


def test_conf_suffix_is_properties(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "broker.conf", "brokerClusterName=C1\ndeleteWhen=04\n")
    assert load_broker_config(path).broker_cluster_name == "C1"


def test_toml_top_level_and_broker_table(tmp_path: pathlib.Path) -> None:
    top = write(tmp_path, "a.toml", 'brokerName = "broker-t"\nlistenPort = 20911\n')
    table = write(
        tmp_path, "b.toml", '[broker]\nbrokerRole = "SYNC_MASTER"\nlongPollingEnable = false\n'
    )
    assert load_broker_config(top).listen_port == 20911
    cfg = load_broker_config(table)
    assert cfg.broker_role is BrokerRole.SYNC_MASTER and cfg.long_polling_enable is False


def test_load_namesrv_config(tmp_path: pathlib.Path) -> None:
    props = write(tmp_path, "ns.properties", "listenPort=9877\nenableControllerInNamesrv=true\n")
    toml = write(tmp_path, "ns.toml", '[namesrv]\nlistenHost = "0.0.0.0"\n')
    assert load_namesrv_config(props) == NamesrvConfig(listen_port=9877, controller_enable=True)
    assert load_namesrv_config(toml).listen_host == "0.0.0.0"


def test_profile_from_path(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path,
        "mine.toml",
        'description = "x"\n[[namesrv]]\nlistenPort = 0\n'
        "[[broker]]\nlistenPort = 0\nhaListenPort = 0\n"
        '[[broker]]\nbrokerId = 1\nbrokerRole = "SLAVE"\nlistenPort = 0\nhaListenPort = 0\n',
    )
    profile = load_profile(path)
    assert profile.name == "mine" and len(profile.brokers) == 2
    assert load_profile(str(path)) == profile
    named = parse_profile('name = "n"\n[[namesrv]]\n[[broker]]\n', "x.toml", "ignored")
    assert named.name == "n"


def test_with_overrides() -> None:
    cfg = BrokerConfig()
    changed = with_overrides(
        cfg, listen_port=0, store_path_root_dir=pathlib.Path("/tmp/x"), broker_role="SYNC_MASTER"
    )
    assert changed.listen_port == 0 and changed.store_path_root_dir == "/tmp/x"
    assert changed.broker_role is BrokerRole.SYNC_MASTER
    assert cfg.listen_port == 10911
    assert with_overrides(NamesrvConfig(), listen_port=1).listen_port == 1


def test_with_data_dir(tmp_path: pathlib.Path) -> None:
    cfg = BrokerConfig(broker_id=1, broker_role=BrokerRole.SLAVE, store_path_commit_log="/cl")
    node = with_data_dir(cfg, tmp_path, per_node=True)
    assert node.store_root() == tmp_path / "broker-a-1"
    assert node.commit_log_dir() == tmp_path / "broker-a-1" / "commitlog"
    assert with_data_dir(cfg, tmp_path, per_node=False).store_root() == tmp_path


def test_dump_properties_only_changed() -> None:
    text = dump_properties(BrokerConfig(broker_name="b", listen_port=1), only_changed=True)
    assert text == "brokerName=b\nlistenPort=1\n"
    assert dump_properties(BrokerConfig(), only_changed=True, header="hi") == "# hi\n"
    assert dump_properties(NamesrvConfig(), only_changed=True) == ""


# --- mistakes -----------------------------------------------------------------------------------


def assert_error(err: ConfigError, file: str, key: str | None, *words: str) -> None:
    assert err.file == file, str(err)
    assert err.key == key, str(err)
    for word in words:
        assert word in err.problem, str(err)
    assert str(err).startswith(f"{file}: {key}: " if key else f"{file}: ")


def test_unknown_key_suggests(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "# comment\nbrokerIp1=1.2.3.4\n")
    err = error_of(load_broker_config, path)
    assert_error(err, f"{path}:2", "brokerIp1", "unknown key", "did you mean brokerIP1?")


def test_unknown_key_without_suggestion(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "zzzz=1\n")
    err = error_of(load_broker_config, path)
    assert_error(err, f"{path}:1", "zzzz", "unknown key")
    assert "did you mean" not in err.problem


def test_unknown_key_in_toml(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.toml", "[broker]\nlisten_port = 1\n")
    err = error_of(load_broker_config, path)
    assert_error(err, str(path), "broker.listen_port", "did you mean listenPort?")


def test_bad_enum(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "broker-a.properties", "brokerName=a\n\nbrokerRole=MASTERX\n")
    err = error_of(load_broker_config, path)
    assert str(err) == (
        f"{path}:3: brokerRole: 'MASTERX' is not one of ASYNC_MASTER, SYNC_MASTER, SLAVE"
    )


def test_bad_enum_case_suggests(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "flushDiskType=sync_flush\n")
    err = error_of(load_broker_config, path)
    assert_error(err, f"{path}:1", "flushDiskType", "did you mean SYNC_FLUSH?")


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ("listenPort=abc", "listenPort", ["'abc' is not an integer"]),
        ("listenPort=1.5", "listenPort", ["not an integer"]),
        ("listenPort=", "listenPort", ["'' is not an integer"]),
        ("longPollingEnable=yes", "longPollingEnable", ["'yes' is not a boolean"]),
        ("listenPort=70000", "listenPort", ["70000", "0..65535"]),
        ("haListenPort=70000", "haListenPort", ["70000", "0..65535"]),
        ("listenPort=65535", "listenPort", ["set haListenPort"]),
        ("brokerId=-1", "brokerId", [">= 0"]),
        ("brokerId=1", "brokerId", ["must have brokerId 0"]),
        ("namesrvAddr=localhost", "namesrvAddr", ["host:port;host:port"]),
        ("namesrvAddr=a:1;b:x", "namesrvAddr", ["host:port;host:port"]),
        ("namesrvAddr=a:99999", "namesrvAddr", ["port"]),
        ("haMasterAddress=nohost", "haMasterAddress", ["host:port"]),
        ("deleteWhen=4pm", "deleteWhen", ["HH"]),
        ("deleteWhen=04;25", "deleteWhen", ["HH"]),
        ("diskMaxUsedSpaceRatio=96", "diskMaxUsedSpaceRatio", ["10..95"]),
        ("diskSpaceWarningLevelRatio=9", "diskSpaceWarningLevelRatio", ["10..95"]),
        ("mappedFileSizeCommitLog=0", "mappedFileSizeCommitLog", ["> 0"]),
        ("mappedFileSizeConsumeQueue=30", "mappedFileSizeConsumeQueue", ["multiple of 20"]),
        ("maxMessageSize=-5", "maxMessageSize", ["> 0"]),
        ("brokerPermission=8", "brokerPermission", ["<= 7"]),
        ("messageDelayLevel=1s 5x", "messageDelayLevel", ["'5x'"]),
        ("messageDelayLevel=", "messageDelayLevel", ["at least one"]),
        ("brokerName=", "brokerName", ["must not be empty"]),
        ("brokerName=a\\ b", "brokerName", ["whitespace"]),
        ("brokerName=" + "b" * 128, "brokerName", ["at most 127"]),
        ("brokerName=" + "é" * 64, "brokerName", ["at most 127 bytes"]),
        ("haListenPort=10911", "haListenPort", ["also the listenPort"]),
        ("fetchNamesrvAddrByAddressServer=true", "fetchNamesrvAddrByAddressServer", ["not"]),
    ],
)
def test_bad_values_name_file_line_key(
    tmp_path: pathlib.Path, line: str, key: str, words: list[str]
) -> None:
    path = write(tmp_path, "b.properties", f"# header\n{line}\n")
    assert_error(error_of(load_broker_config, path), f"{path}:2", key, *words)


def test_delete_when_takes_single_digit_hours(tmp_path: pathlib.Path) -> None:
    # Given RocketMQ deleteWhen values with one-digit hours (RocketMQ reads each hour with
    # Integer.parseInt, so deleteWhen=4 deletes at 04:00)
    path = write(tmp_path, "b.properties", "deleteWhen=4;16\n")
    # When the file is loaded
    cfg = load_broker_config(path)
    # Then the hours are 4 and 16, and 24 is still refused
    assert cfg.delete_hours() == [4, 16]
    bad = write(tmp_path, "c.properties", "deleteWhen=4;24\n")
    assert_error(error_of(load_broker_config, bad), f"{bad}:1", "deleteWhen", "0..23")


def test_slave_with_broker_id_0(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "brokerRole=SLAVE\nbrokerId=0\n")
    assert_error(error_of(load_broker_config, path), f"{path}:2", "brokerId", "SLAVE", "> 0")
    implicit = write(tmp_path, "c.properties", "brokerRole=SLAVE\n")
    assert_error(error_of(load_broker_config, implicit), str(implicit), "brokerId", "SLAVE")


def test_duplicate_key(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "listenPort=1\nlistenPort=2\n")
    assert_error(error_of(load_broker_config, path), f"{path}:2", "listenPort", "line 1")


def test_properties_syntax_error(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.properties", "brokerName=a\n=value\n")
    assert_error(error_of(load_broker_config, path), f"{path}:2", None, "no key")
    bad = write(tmp_path, "c.properties", "brokerName=a\\u00zz\n")
    assert_error(error_of(load_broker_config, bad), f"{bad}:1", None, "\\u")


def test_toml_type_errors(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.toml", 'listenPort = "10911"\n')
    assert_error(error_of(load_broker_config, path), str(path), "listenPort", "expected an integer")
    path = write(tmp_path, "c.toml", "autoCreateTopicEnable = 1\n")
    err = error_of(load_broker_config, path)
    assert_error(err, str(path), "autoCreateTopicEnable", "expected a boolean")
    path = write(tmp_path, "d.toml", "brokerId = true\n")
    assert_error(error_of(load_broker_config, path), str(path), "brokerId", "expected an integer")
    path = write(tmp_path, "e.toml", "brokerRole = 1\n")
    assert_error(error_of(load_broker_config, path), str(path), "brokerRole", "ASYNC_MASTER")
    path = write(tmp_path, "f.toml", "[broker]\nlistenPort = 1\n[other]\n")
    assert_error(error_of(load_broker_config, path), str(path), "other", "outside")


def test_malformed_toml(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "b.toml", "listenPort = \n")
    assert_error(error_of(load_broker_config, path), str(path), None, "malformed TOML", "line 1")
    profile = write(tmp_path, "p.toml", "[[broker]\n")
    assert_error(error_of(load_profile, profile), str(profile), None, "malformed TOML")


def test_file_problems(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.properties"
    assert_error(error_of(load_broker_config, missing), str(missing), None, "no such file")
    odd = write(tmp_path, "b.yaml", "a: 1\n")
    assert_error(error_of(load_broker_config, odd), str(odd), None, "unsupported", ".toml")
    binary = tmp_path / "b.properties"
    binary.write_bytes(b"brokerName=\xff\n")
    assert_error(error_of(load_broker_config, binary), str(binary), None, "UTF-8")


def test_unknown_profile() -> None:
    err = error_of(load_profile, "2m-2s-asnyc")
    assert_error(
        err, "2m-2s-asnyc", None, "unknown profile", "2m-noslave", "did you mean 2m-2s-async"
    )


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[[broker]]\n", "namesrv", ["at least one"]),
        ("[[namesrv]]\n", "broker", ["at least one"]),
        ("[[namesrv]]\n[[brokers]]\n", "brokers", ["did you mean broker?"]),
        ("[namesrv]\n[[broker]]\n", "namesrv", ["[[namesrv]]"]),
        ("description = 1\n[[namesrv]]\n[[broker]]\n", "description", ["string"]),
        ("[[namesrv]]\n[[broker]]\n[[broker]]\n", "broker[1].brokerId", ["already broker[0]"]),
        (
            "[[namesrv]]\n[[broker]]\n[[broker]]\nbrokerName='b'\n",
            "broker[1].listenPort",
            ["10911", "broker[0].listenPort"],
        ),
        (
            "[[namesrv]]\nlistenPort = 10912\n[[broker]]\n",
            "broker[0].haListenPort",
            ["10912", "namesrv[0].listenPort"],
        ),
        (
            "[[namesrv]]\n[[broker]]\nbrokerRole='SLAVE'\nbrokerId=1\n",
            "broker[0].brokerName",
            ["no master"],
        ),
        (
            "[[namesrv]]\n[[broker]]\n[[broker]]\nbrokerId=1\nbrokerRole='SLAVE'\n"
            "listenPort=0\nhaListenPort=0\nbrokerClusterName='X'\n",
            "broker[1].brokerClusterName",
            ["master"],
        ),
        ("[[namesrv]]\n[[broker]]\nnamesrvAddr='a:1'\n", "broker[0].namesrvAddr", ["profile"]),
        ("[[namesrv]]\n[[broker]]\nstorePathRootDir='/x'\n", "broker[0].storePathRootDir", []),
        ("[[namesrv]]\n[[broker]]\nhaMasterAddress='a:1'\n", "broker[0].haMasterAddress", []),
        ("[[namesrv]]\nlistenPort = -1\n[[broker]]\n", "namesrv[0].listenPort", ["0..65535"]),
        ("[[namesrv]]\n[[broker]]\nbrokerRole='X'\n", "broker[0].brokerRole", ["not one of"]),
        ("[[namesrv]]\n[[broker]]\nbrokerId=1\n", "broker[0].brokerId", ["brokerId 0"]),
        ("name = ''\n[[namesrv]]\n[[broker]]\n", "name", ["empty"]),
    ],
)
def test_profile_mistakes(tmp_path: pathlib.Path, text: str, key: str, words: list[str]) -> None:
    path = write(tmp_path, "p.toml", text)
    assert_error(error_of(load_profile, path), str(path), key, *words)


def test_constructor_and_override_mistakes() -> None:
    err = error_of(lambda: BrokerConfig(broker_id=-1))
    assert err.file is None and err.key == "brokerId" and ">= 0" in err.problem
    err = error_of(lambda: with_overrides(BrokerConfig(), brokre_id=1))
    assert err.key == "brokre_id" and "did you mean broker_id?" in err.problem
    err = error_of(lambda: with_overrides(BrokerConfig(), listen_port="1"))
    assert err.key == "listenPort" and "expected an integer" in err.problem
    err = error_of(lambda: with_overrides(BrokerConfig(), broker_role=BrokerRole.SLAVE))
    assert err.key == "brokerId" and str(err).startswith("<config>: brokerId: ")
    err = error_of(lambda: NamesrvConfig(listen_port=65536))
    assert err.key == "listenPort"


def test_a_rocketmq_broker_conf_with_its_usual_keys_loads(tmp_path: pathlib.Path) -> None:
    # Given the keys RocketMQ's own broker.conf files and tuning guides set
    path = write(
        tmp_path,
        "broker.conf",
        "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\n"
        "deleteWhen=04\nfileReservedTime=48\nbrokerRole=ASYNC_MASTER\nflushDiskType=ASYNC_FLUSH\n"
        "storePathConsumeQueue=/data/cq\nstorePathIndex=/data/index\n"
        "storeCheckpoint=/data/checkpoint\nabortFile=/data/abort\n"
        "sendThreadPoolQueueCapacity=20000\npullThreadPoolQueueCapacity=200000\n"
        "processReplyMessageThreadPoolNums=8\ntraceTopicEnable=true\n"
        "msgTraceTopicName=MyTrace\naclEnable=false\nenableDLegerCommitLog=false\n",
    )
    # When it loads, Then it is accepted and the trace topic is what it names
    cfg = load_broker_config(path)
    assert cfg.trace_topic_enable and cfg.msg_trace_topic_name == "MyTrace"


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ("aclEnable=true", "aclFile", ("needs the accounts file", "ROCKETMQ_HOME")),
        ("enableDLegerCommitLog=true", "enableDLegerCommitLog", ("DLedger", "ControllerMode")),
        ("metricsExporterType=OTLP_GRPC", "metricsExporterType", ("PROM", "DISABLE")),
    ],
)
def test_features_actormq_lacks_are_refused_naming_the_key(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    line: str,
    key: str,
    words: tuple[str, ...],
) -> None:
    # Given a broker file that turns on DLedger, or ACL without saying where its accounts are
    monkeypatch.delenv("ROCKETMQ_HOME", raising=False)
    # When it loads
    path = write(tmp_path, "b.properties", f"brokerName=broker-a\n{line}\n")
    err = error_of(load_broker_config, path)
    # Then the start is refused with the file, the key and why
    assert err.key == key and all(w in err.problem for w in words), str(err)
    assert str(path) in str(err)


def test_the_controllers_startup_grace_defaults_to_the_lease_plus_a_second() -> None:
    from runtime.ha.control import GRACE_S

    assert NamesrvConfig().controller_startup_grace_millis == GRACE_S * 1000


def test_the_acl_file_is_acl_file_else_rocketmq_homes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given aclEnable with ROCKETMQ_HOME set, Then RocketMQ's place is used
    monkeypatch.setenv("ROCKETMQ_HOME", str(tmp_path))
    path = write(tmp_path, "b.properties", "brokerName=broker-a\naclEnable=true\n")
    assert load_broker_config(path).acl_path() == tmp_path / "conf" / "plain_acl.yml"
    # Given aclFile too, Then aclFile wins
    path = write(tmp_path, "c.properties", "brokerName=broker-a\naclEnable=true\naclFile=/x.yml\n")
    assert str(load_broker_config(path).acl_path()) == "/x.yml"


def test_store_path_commit_log_is_kept_in_place_and_reset_when_the_store_moves(
    tmp_path: pathlib.Path,
) -> None:
    cfg = BrokerConfig(
        store_path_root_dir=str(tmp_path / "root"), store_path_commit_log="/disk2/cl"
    )
    # Given the broker command without --data-dir (the config's own root), Then it stays
    same = with_data_dir(cfg, tmp_path / "root", per_node=False)
    assert StoreSettings.from_broker_config(same).commitlog_dir == "/disk2/cl"
    # Given --data-dir elsewhere (or a cluster profile), Then the commit log moves with the store
    moved = with_data_dir(cfg, tmp_path / "other", per_node=False)
    assert StoreSettings.from_broker_config(moved).commitlog_dir == str(
        tmp_path / "other/commitlog"
    )
