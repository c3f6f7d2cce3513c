"""The configuration schema: RocketMQ's broker and name-server keys with RocketMQ's defaults.

Attributes are snake_case; file keys are RocketMQ's camelCase names (``brokerIP1``,
``transactionTimeOut`` and ``destroyMapedFileIntervalForcibly`` keep RocketMQ's spelling).
Every struct validates itself on construction (also after ``msgspec.structs.replace``) and
raises ``ConfigError(None, key, problem)``; the loaders add the file and line.
"""

import functools
import os
import pathlib
from typing import Annotated

import msgspec
from msgspec import Meta, field

from config.checks import (
    check_bounds,
    check_credentials,
    check_name,
    fail,
    parse_credentials,
    parse_delay_levels,
    parse_delete_when,
    parse_host_port,
    parse_namesrv_addr,
)
from config.enums import BrokerRole, FlushDiskType, MetricsExporterType
from runtime.acl.signature import SessionCredentials
from runtime.errors import ConfigError
from runtime.store.topic_names import TOPIC_MAX_LENGTH

Port = Annotated[int, Meta(ge=0, le=65535, extra={"kind": "port"})]
Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
Ratio = Annotated[int, Meta(ge=10, le=95, extra={"kind": "ratio"})]
Permission = Annotated[int, Meta(ge=0, le=7)]
Percent = Annotated[int, Meta(ge=0, le=100)]

_CPUS = os.cpu_count() or 1
CONSUME_QUEUE_ENTRY_SIZE = 20
DEFAULT_DELAY_LEVELS = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"


HA_PORT_FROM_LISTEN_PORT = -1
"""haListenPort's default: listenPort + 1 (0 with listenPort 0), as RocketMQ's BrokerStartup
sets it (4.x always, 5.x for a haListenPort <= 0); any negative haListenPort means the same."""


def derived_ha_listen_port(listen_port: int) -> int:
    """The haListenPort of a broker that does not set one: listenPort + 1; 0 (a free port) for
    listenPort 0."""
    return listen_port + 1 if listen_port else 0


SECRET_FIELDS = frozenset({"inner_client_authentication_credentials"})
"""Fields whose value is a secret: masked in ``repr`` and in config answers on the wire."""
MASKED = "******"


class _Config(
    msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True, kw_only=True
):
    """Base of the per-process config structs."""

    def __repr__(self) -> str:  # a config logged or in a traceback never shows a secret
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            shown = MASKED if name in SECRET_FIELDS and value else repr(value)
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


class NamesrvConfig(_Config):
    """One name server."""

    listen_port: Port = 9876
    listen_host: str = "127.0.0.1"
    enable_proxy_protocol: bool = False
    """actormq's: read a load balancer's PROXY protocol header (``runtime.proxy_protocol``)."""
    scan_not_active_broker_interval: Positive = 5_000
    """ms between scans for silent brokers: RocketMQ 5's default (RocketMQ 4 scanned every 10 s)."""
    broker_channel_expired_time: Positive = 120_000
    controller_enable: bool = field(default=False, name="enableControllerInNamesrv")
    controller_startup_grace_millis: NonNegative = 4000
    """How long the controller grants no lease after this process starts it (runtime.ha.control
    GRACE_S: a lease an earlier controller granted may still run). A controller restarted inside
    the process always waits the full grace."""
    kv_config_path: str = ""
    controller_store_path: str = ""
    order_message_enable: bool = False
    inner_client_authentication_credentials: str = ""
    """The account brokers sign with (RocketMQ 5's key, JSON ``accessKey`` / ``secretKey``):
    when set, every request that changes this name server's state must be signed with it
    (``actors.namesrv.write_auth``)."""

    def __post_init__(self) -> None:
        check_bounds(self)
        check_name(NamesrvConfig, "listen_host", self.listen_host)
        check_credentials(NamesrvConfig, self.inner_client_authentication_credentials)

    def inner_credentials(self) -> SessionCredentials | None:
        """``innerClientAuthenticationCredentials`` parsed; None when not set."""
        return parse_credentials(self.inner_client_authentication_credentials)

    def address(self) -> str:
        """``host:port`` this name server listens on."""
        return f"{self.listen_host}:{self.listen_port}"


class BrokerConfig(_Config):
    """One broker node (a master or a slave of a broker group)."""

    # identity
    broker_cluster_name: str = "DefaultCluster"
    broker_name: str = "broker-a"
    broker_id: NonNegative = 0
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    # network and name servers
    listen_port: Port = 10911
    listen_host: str = "127.0.0.1"
    enable_proxy_protocol: bool = False
    """actormq's: read a load balancer's PROXY protocol header (``runtime.proxy_protocol``)."""
    broker_ip1: str = field(default="127.0.0.1", name="brokerIP1")
    broker_ip2: str = field(default="", name="brokerIP2")
    namesrv_addr: str = ""
    fetch_namesrv_addr_by_address_server: bool = False
    register_name_server_period: Positive = 30_000
    compressed_register: bool = False
    """Register with RocketMQ's compressed binary body (``runtime.remoting.register_body``);
    false: JSON, except a body over 4 MiB (``actors.broker.registrar.COMPRESS_ABOVE``)."""
    # store
    store_path_root_dir: str = "~/store"
    store_path_commit_log: str = ""
    mapped_file_size_commit_log: Positive = 1024 * 1024 * 1024
    mapped_file_size_consume_queue: Positive = 300_000 * CONSUME_QUEUE_ENTRY_SIZE
    flush_interval_commit_log: Positive = 500
    flush_interval_consume_queue: Positive = 1000
    flush_consume_queue_thorough_interval: Positive = 60_000
    queue_idle_stop_millis: NonNegative = 120_000
    """actormq's: a consume queue's actor unused this long stops (0: never)."""
    flush_commit_log_timed: bool = False
    sync_flush_timeout: Positive = 5000
    slave_timeout: Positive = 3000
    max_message_size: Positive = 4 * 1024 * 1024
    max_transfer_count_on_message_in_memory: Positive = 32
    max_transfer_bytes_on_message_in_memory: Positive = 256 * 1024
    # retention and disk space
    delete_when: str = "04"
    file_reserved_time: NonNegative = 72
    disk_max_used_space_ratio: Ratio = 75
    disk_space_clean_forcibly_ratio: Ratio = 85
    disk_space_warning_level_ratio: Ratio = 90
    clean_resource_interval: Positive = 10_000
    delete_commit_log_files_interval: NonNegative = 100
    destroy_mapped_file_interval_forcibly: NonNegative = field(
        default=120_000, name="destroyMapedFileIntervalForcibly"
    )
    redelete_hanged_file_interval: NonNegative = 120_000
    # topics, groups, polling
    auto_create_topic_enable: bool = True
    default_topic_queue_nums: Positive = 8
    max_topic_queue_nums: Positive = 1024
    """actormq's: most read or write queues of one topic (RocketMQ sets no limit)."""
    auto_create_subscription_group: bool = True
    broker_permission: Permission = 6
    long_polling_enable: bool = True
    short_polling_time_mills: Positive = 1000
    slave_read_enable: bool = False
    access_message_in_memory_max_ratio: Percent = 40
    enable_property_filter: bool = False
    trace_topic_enable: bool = False
    msg_trace_topic_name: str = "RMQ_SYS_TRACE_TOPIC"
    region_id: str = "DefaultRegion"
    trace_on: bool = True
    # replication (classic master/slave)
    ha_listen_port: Port = HA_PORT_FROM_LISTEN_PORT
    """Unset (negative): listenPort + 1, as RocketMQ (``derived_ha_listen_port``)."""
    ha_master_address: str = ""
    ha_send_heartbeat_interval: Positive = 5000
    ha_housekeeping_interval: Positive = 20_000
    ha_slave_fallbehind_max: Positive = 256 * 1024 * 1024
    ha_max_time_slave_not_catchup: Positive = 15_000
    min_in_sync_replicas: Positive = 1
    """RocketMQ 5's: a master refuses appends (IN_SYNC_REPLICAS_NOT_ENOUGH) while fewer
    replicas, itself counted, are in sync."""
    all_ack_in_sync_state_set: bool = False
    """RocketMQ 5's: a SYNC_MASTER answers SEND_OK only once every slave of the in-sync set
    holds the message (false: once one does)."""
    ha_transfer_batch_size: Positive = 32 * 1024
    ha_reconcile_wait_millis: NonNegative = 30_000
    """Classic ASYNC_MASTER back from a power loss: how long it waits for the slaves that were
    in sync to fetch what they hold past its end before it takes writes (a SYNC_MASTER waits
    for them however long it takes)."""
    # automatic failover (RocketMQ 5's controller mode)
    enable_controller_mode: bool = False
    controller_addr: str = ""
    # scheduled and transactional messages
    message_delay_level: str = DEFAULT_DELAY_LEVELS
    timer_wheel_enable: bool = True
    timer_max_loaded: Positive = 200_000
    """actormq's: the most pending timer messages the TimerScheduler holds in memory; the others
    stay in the timer topic only, read again as these are delivered."""
    transaction_timeout: Positive = field(default=6000, name="transactionTimeOut")
    transaction_check_max: Positive = 15
    transaction_check_interval: Positive = 30_000
    transient_store_pool_enable: bool = False  # accepted from RocketMQ files; no effect
    os_page_cache_busy_timeout_mills: Positive = field(
        default=1000, name="osPageCacheBusyTimeOutMills"
    )
    # accepted for compatibility with RocketMQ files; no effect in actormq
    use_reentrant_lock_when_put_message: bool = True
    send_message_thread_pool_nums: Positive = min(_CPUS, 4)
    pull_message_thread_pool_nums: Positive = 16 + _CPUS * 2
    wait_time_mills_in_send_queue: Positive = 200  # used: the send fast-failure wait
    send_thread_pool_queue_capacity: Positive = 10_000
    pull_thread_pool_queue_capacity: Positive = 100_000
    process_reply_message_thread_pool_nums: Positive = 16 + _CPUS * 2
    store_path_consume_queue: str = ""
    store_path_index: str = ""
    store_checkpoint: str = ""
    abort_file: str = ""
    acl_enable: bool = False
    acl_file: str = ""
    """actormq's: the plain ACL accounts file; empty: $ROCKETMQ_HOME/conf/plain_acl.yml."""
    inner_client_authentication_credentials: str = ""
    """RocketMQ 5's: the account (JSON ``accessKey`` / ``secretKey``) this broker signs its
    requests to name servers (registrations, controller heartbeats) and to its master with."""
    metrics_exporter_type: MetricsExporterType = MetricsExporterType.DISABLE
    metrics_prom_exporter_host: str = ""
    """Empty: brokerIP1, as RocketMQ."""
    metrics_prom_exporter_port: Port = 5557
    # refused when on: features actormq does not have
    enable_d_leger_commit_log: bool = field(default=False, name="enableDLegerCommitLog")

    def __post_init__(self) -> None:
        cls = BrokerConfig
        if self.ha_listen_port < 0:
            port = derived_ha_listen_port(self.listen_port)
            if self.listen_port == 65535:  # (a listenPort beyond that is refused as such)
                problem = "65535 leaves no haListenPort (listenPort + 1): set haListenPort"
                fail(cls, "listen_port", problem)
            msgspec.structs.force_setattr(self, "ha_listen_port", port)
        check_bounds(self)
        check_credentials(cls, self.inner_client_authentication_credentials)
        if self.acl_enable and self.acl_path() is None:
            fail(
                cls,
                "acl_file",
                "aclEnable=true needs the accounts file: set aclFile to the plain_acl.yml "
                "(or ROCKETMQ_HOME, whose conf/plain_acl.yml is then read, as RocketMQ does)",
            )
        if self.enable_d_leger_commit_log:
            fail(
                cls,
                "enable_d_leger_commit_log",
                "DLedger is not supported by actormq: for automatic failover use "
                "enableControllerMode=true with master/slave groups (docs/deploy.md)",
            )
        check_name(cls, "msg_trace_topic_name", self.msg_trace_topic_name)
        check_name(cls, "region_id", self.region_id)
        for attr in ("broker_cluster_name", "broker_name", "listen_host", "broker_ip1"):
            check_name(cls, attr, getattr(self, attr))
        if len(self.broker_name.encode()) > TOPIC_MAX_LENGTH:  # (a system topic bears it,
            # and the HA HELLO, at most 255 bytes)
            fail(cls, "broker_name", f"must be at most {TOPIC_MAX_LENGTH} bytes (UTF-8)")
        check_name(cls, "broker_ip2", self.broker_ip2, empty_ok=True)
        if self.default_topic_queue_nums > self.max_topic_queue_nums:
            fail(
                cls,
                "default_topic_queue_nums",
                f"must be at most maxTopicQueueNums ({self.max_topic_queue_nums})",
            )
        if not self.store_path_root_dir.strip():
            fail(cls, "store_path_root_dir", "must not be empty")
        if self.broker_role is BrokerRole.SLAVE and self.broker_id == 0:
            fail(cls, "broker_id", "a SLAVE needs brokerId > 0 (brokerId 0 is the master)")
        if self.broker_role is not BrokerRole.SLAVE and self.broker_id != 0:
            fail(
                cls,
                "broker_id",
                f"{self.broker_id} is a slave's id; a {self.broker_role.name} must have "
                "brokerId 0 (or set brokerRole=SLAVE)",
            )
        if self.ha_listen_port == self.listen_port != 0:
            fail(cls, "ha_listen_port", f"{self.ha_listen_port} is also the listenPort")
        if self.mapped_file_size_consume_queue % CONSUME_QUEUE_ENTRY_SIZE:
            fail(
                cls,
                "mapped_file_size_consume_queue",
                f"{self.mapped_file_size_consume_queue} is not a multiple of "
                f"{CONSUME_QUEUE_ENTRY_SIZE} (the consume-queue entry size)",
            )
        for attr, parse in (
            ("namesrv_addr", parse_namesrv_addr),
            ("delete_when", parse_delete_when),
            ("message_delay_level", parse_delay_levels),
        ):
            try:
                parse(getattr(self, attr))
            except ValueError as err:
                fail(cls, attr, str(err))
        for attr in ("ha_master_address", "controller_addr"):
            if getattr(self, attr):
                try:
                    parse_host_port(getattr(self, attr))
                except ValueError as err:
                    fail(cls, attr, str(err))
        if self.metrics_exporter_type in (MetricsExporterType.OTLP_GRPC, MetricsExporterType.LOG):
            fail(cls, "metrics_exporter_type", "actormq exports PROM (Prometheus) or DISABLE")
        host = self.metrics_prom_exporter_host
        check_name(cls, "metrics_prom_exporter_host", host, empty_ok=True)
        if self.fetch_namesrv_addr_by_address_server:
            fail(
                cls,
                "fetch_namesrv_addr_by_address_server",
                "true is not supported: actormq has no address-server lookup; set namesrvAddr",
            )

    @property
    def is_master(self) -> bool:
        """True for ASYNC_MASTER and SYNC_MASTER."""
        return self.broker_role is not BrokerRole.SLAVE

    @property
    def controller_mode(self) -> bool:
        """Automatic failover: enableControllerMode, or a controllerAddr set."""
        return self.enable_controller_mode or bool(self.controller_addr)

    def controller_address(self) -> str | None:
        """controllerAddr, else the first name server (which must run the controller)."""
        if self.controller_addr:
            return self.controller_addr
        addrs = self.namesrv_addresses()
        return f"{addrs[0][0]}:{addrs[0][1]}" if addrs else None

    def namesrv_addresses(self) -> list[tuple[str, int]]:
        """namesrvAddr as [(host, port), ...] (empty when unset)."""
        return parse_namesrv_addr(self.namesrv_addr)

    def inner_credentials(self) -> SessionCredentials | None:
        """``innerClientAuthenticationCredentials`` parsed; None when not set."""
        return parse_credentials(self.inner_client_authentication_credentials)

    def acl_path(self) -> pathlib.Path | None:
        """The plain ACL file: aclFile (``~`` expanded), else $ROCKETMQ_HOME/conf/plain_acl.yml,
        else None."""
        if self.acl_file.strip():
            return pathlib.Path(self.acl_file.strip()).expanduser()
        home = os.environ.get("ROCKETMQ_HOME")
        return pathlib.Path(home) / "conf" / "plain_acl.yml" if home else None

    def store_root(self) -> pathlib.Path:
        """storePathRootDir with ``~`` expanded."""
        return pathlib.Path(self.store_path_root_dir).expanduser()

    def commit_log_dir(self) -> pathlib.Path:
        """storePathCommitLog (``~`` expanded), or ``<store root>/commitlog`` when unset."""
        if self.store_path_commit_log:
            return pathlib.Path(self.store_path_commit_log).expanduser()
        return self.store_root() / "commitlog"

    def broker_addr(self) -> str:
        """``brokerIP1:listenPort``, the address given to name servers and clients."""
        return f"{self.broker_ip1}:{self.listen_port}"

    def ha_addr(self) -> str:
        """``brokerIP2:haListenPort`` (brokerIP1 when brokerIP2 is unset), given to slaves."""
        return f"{self.broker_ip2 or self.broker_ip1}:{self.ha_listen_port}"

    def delete_hours(self) -> list[int]:
        """deleteWhen as hours of the day."""
        return parse_delete_when(self.delete_when)

    def delay_levels_ms(self) -> tuple[int, ...]:
        """messageDelayLevel as milliseconds; level N (1-based) is element N-1 (parsed once:
        every send asks for the level count)."""
        return _delay_levels_ms(self.message_delay_level)

    def node_name(self) -> str:
        """``<brokerName>-<brokerId>``, the per-node directory name in cluster mode."""
        return f"{self.broker_name}-{self.broker_id}"


class ClusterProfile(
    msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True, kw_only=True
):
    """A whole cluster run in one process: name servers and brokers.

    Profile brokers leave namesrvAddr, haMasterAddress and store paths unset: the in-process
    runtime fills them in from the actual name-server addresses, the group's master and
    ``--data-dir``.
    """

    name: str
    namesrvs: list[NamesrvConfig] = field(name="namesrv")
    brokers: list[BrokerConfig] = field(name="broker")
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError(None, "name", "must not be empty")
        if not self.namesrvs:
            raise ConfigError(None, "namesrv", "a profile needs at least one [[namesrv]] table")
        if not self.brokers:
            raise ConfigError(None, "broker", "a profile needs at least one [[broker]] table")
        _check_groups(self)
        _check_ports(self)

    def masters(self) -> list[BrokerConfig]:
        """The brokers with brokerId 0."""
        return [b for b in self.brokers if b.is_master]

    def group(self, broker_name: str) -> list[BrokerConfig]:
        """The master and slaves of one broker group, master first."""
        return sorted(
            (b for b in self.brokers if b.broker_name == broker_name), key=lambda b: b.broker_id
        )


def _check_ports(profile: ClusterProfile) -> None:
    used: dict[int, str] = {}
    owners: list[tuple[str, int]] = [
        (f"namesrv[{i}].listenPort", n.listen_port) for i, n in enumerate(profile.namesrvs)
    ]
    for i, b in enumerate(profile.brokers):
        owners += [(f"broker[{i}].listenPort", b.listen_port)]
        owners += [(f"broker[{i}].haListenPort", b.ha_listen_port)]
    for key, port in owners:
        if port == 0:
            continue
        if port in used:
            raise ConfigError(None, key, f"port {port} is already used by {used[port]}")
        used[port] = key


def _check_groups(profile: ClusterProfile) -> None:
    seen: dict[tuple[str, int], int] = {}
    for i, b in enumerate(profile.brokers):
        node = (b.broker_name, b.broker_id)
        if node in seen:
            raise ConfigError(
                None,
                f"broker[{i}].brokerId",
                f"{b.broker_name} brokerId {b.broker_id} is already broker[{seen[node]}]",
            )
        seen[node] = i
    for i, b in enumerate(profile.brokers):
        master = next((m for m in profile.group(b.broker_name) if m.is_master), None)
        if master is None:
            raise ConfigError(
                None,
                f"broker[{i}].brokerName",
                f"group {b.broker_name} has a slave but no master (brokerId 0)",
            )
        if b.broker_cluster_name != master.broker_cluster_name:
            raise ConfigError(
                None,
                f"broker[{i}].brokerClusterName",
                f"{b.broker_cluster_name!r} differs from its master's "
                f"{master.broker_cluster_name!r}",
            )


@functools.lru_cache(maxsize=8)
def _delay_levels_ms(text: str) -> tuple[int, ...]:
    return tuple(parse_delay_levels(text))
