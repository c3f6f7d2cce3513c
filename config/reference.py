"""The key reference: what each key does in actormq; renders the tables of the configuration doc.

``python -m config.reference docs/configuration.md`` rewrites the generated tables in place.
"""

from __future__ import annotations

import enum
import pathlib
import sys

import msgspec

from config.fields import field_specs
from config.schema import BrokerConfig, NamesrvConfig

USED = "used"
IGNORED = "accepted, no effect"

PROXY_PROTOCOL = (
    "actormq's: take a connection that begins with a load balancer's PROXY protocol header "
    "(HAProxy's, v1 or v2) as coming from the client it names (ACL whitelists, connection "
    "lists, born hosts); connections without one are taken as they are. Only for a port "
    "clients reach through the balancer alone: anyone reaching it directly could claim any "
    "address. Off: such a header closes the connection (on a plain listener its log names "
    "this key)."
)

NAMESRV_KEYS: dict[str, tuple[str, str]] = {
    "listenPort": (USED, "TCP port for clients and brokers. 0 picks a free port."),
    "listenHost": (
        USED,
        "Bind address. 127.0.0.1 is local only; 0.0.0.0 for multi-host; IPv6: ::1, or :: "
        "(IPv6 and IPv4, dual stack).",
    ),
    "enableProxyProtocol": (USED, PROXY_PROTOCOL),
    "scanNotActiveBrokerInterval": (USED, "ms between scans for silent brokers."),
    "brokerChannelExpiredTime": (
        USED,
        "ms without a sign of life (registration, QUERY_DATA_VERSION, BROKER_HEARTBEAT) before a "
        "broker is dropped, for a broker that registered without its own "
        "`heartbeatTimeoutMillis`.",
    ),
    "enableControllerInNamesrv": (
        USED,
        "Run the failover controller in this name server (brokers in controller mode heartbeat "
        "to it; it grants master leases and elects a new master). See docs/deploy.md.",
    ),
    "controllerStartupGraceMillis": (
        USED,
        "actormq's: ms the controller grants no master lease after the name server starts (the "
        "3 s lease plus 1 s): a lease an earlier controller granted may still run, and brokers "
        "report their state meanwhile. Lower it only for a brand-new cluster, whose brokers "
        "cannot hold a lease from an earlier controller (python -m runtime with a profile uses 0 "
        "for its in-process controller for that reason). A controller restarted inside the "
        "process always waits 4 s.",
    ),
    "kvConfigPath": (
        USED,
        "Where the KV config (mqadmin updateKvConfig, updateOrderConf) is kept, in RocketMQ's "
        "kvConfig.json shape. Empty: <data-dir>/<namesrv>/kvConfig.json when the process has a "
        "data directory (python -m runtime, cluster), else memory only "
        "(python -m runtime namesrv).",
    ),
    "controllerStorePath": (
        USED,
        "Directory where the controller keeps what it decided (controller.json and "
        "controller.log: each broker group's term, master, in-sync set and member ids), so a "
        "restarted controller can still elect a slave; locked while a controller uses it. "
        "Empty: <data-dir>/<namesrv> when the process has a data directory (python -m "
        "runtime, cluster), else ~/actormq/controller/<listenPort> (RocketMQ's default is "
        "~/DledgerController). Starting a group afresh (new stores) under the same name: "
        "admin cleanBrokerMetadata, or delete the files. One controller decides for at most "
        "4,096 groups of 64 members.",
    ),
    "orderMessageEnable": (
        USED,
        "Add the topic's orderTopicConf (KV namespace ORDER_TOPIC_CONFIG, set by mqadmin "
        "updateOrderConf) to its route; RocketMQ adds it only with this key on, too.",
    ),
    "innerClientAuthenticationCredentials": (
        USED,
        'RocketMQ 5\'s key, JSON {"accessKey": "...", "secretKey": "..."}: the account the '
        "brokers sign with. Set: every request that changes this name server's state "
        "(registrations, controller heartbeats, electMaster, cleanBrokerMetadata, KV config, "
        "write perm, topic deletion) must be signed with it, else AclException; reads stay "
        "open. Give the admin the same keys (tools.yml). Shown masked in getNamesrvConfig. "
        "See docs/deploy.md, Access control.",
    ),
}

BROKER_KEYS: dict[str, tuple[str, str]] = {
    "brokerClusterName": (USED, "Cluster the broker registers under."),
    "brokerName": (
        USED,
        "Broker group name, shared by a master and its slaves (at most 127 bytes: a "
        "system topic bears it).",
    ),
    "brokerId": (USED, "0 is the master; slaves use 1, 2, ..."),
    "brokerRole": (
        USED,
        "ASYNC_MASTER, SYNC_MASTER (a send waits for an in-sync slave) or SLAVE.",
    ),
    "flushDiskType": (
        USED,
        "ASYNC_FLUSH (ack once in the kernel, fsync every flushIntervalCommitLog) or "
        "SYNC_FLUSH (ack after fsync).",
    ),
    "listenPort": (USED, "TCP port for clients. 0 picks a free port."),
    "listenHost": (
        USED,
        "Bind address (actormq key). 0.0.0.0 for multi-host; :: for IPv6 and IPv4 (dual stack).",
    ),
    "enableProxyProtocol": (USED, PROXY_PROTOCOL),
    "brokerIP1": (
        USED,
        "Address advertised to name servers and clients (IPv4, IPv6 or a host name; a name is "
        "resolved, IPv4 first, for the store host of the records).",
    ),
    "brokerIP2": (USED, "Address advertised to slaves for HA; empty means brokerIP1."),
    "namesrvAddr": (
        USED,
        "Name servers, host:port;host:port (IPv6: fd00::5:9876 or [fd00::5]:9876). Empty: "
        "--namesrv-addr, else $NAMESRV_ADDR (as RocketMQ's broker), else no registration.",
    ),
    "fetchNamesrvAddrByAddressServer": (
        USED,
        "Only false is accepted: actormq has no address server.",
    ),
    "registerNameServerPeriod": (USED, "ms between registrations with each name server."),
    "compressedRegister": (
        USED,
        "Register with RocketMQ's compressed binary body (zlib; RocketMQ 4 and 5 name servers "
        "read it; it carries no topic sysFlag or order flag, as in RocketMQ). false: JSON, "
        "except that a registration whose JSON would pass 4 MiB (about 20,000 topics, e.g. "
        "the retry topics of many consumer groups) is sent compressed anyway, so it never "
        "passes the name server's 16 MiB frame limit.",
    ),
    "storePathRootDir": (USED, "Store root; `~` is expanded. `--data-dir` overrides it."),
    "storePathCommitLog": (
        USED,
        "The commit log's directory (e.g. its own disk; retention's disk ratios are measured "
        "there); empty: `<storePathRootDir>/commitlog`. Reset to that when `--data-dir` or "
        "cluster mode moves the store.",
    ),
    "mappedFileSizeCommitLog": (USED, "Bytes per commit-log segment."),
    "mappedFileSizeConsumeQueue": (
        USED,
        "Bytes per consume-queue file; a multiple of 20 (one entry).",
    ),
    "flushIntervalCommitLog": (USED, "ms between commit-log fsyncs under ASYNC_FLUSH."),
    "flushIntervalConsumeQueue": (
        USED,
        "ms between checks whether a checkpoint is due (fsync the consume queues and the key "
        "index, write the checkpoint): when the commit log grew 64 MiB past the last one, or "
        "flushConsumeQueueThoroughInterval passed.",
    ),
    "flushConsumeQueueThoroughInterval": (
        USED,
        "ms after which a checkpoint is written even if the log grew less than 64 MiB. Bounds "
        "how far back recovery scans after a crash; no effect on what a crash can lose.",
    ),
    "queueIdleStopMillis": (
        USED,
        "actormq's: ms after which a consume queue nobody used (no message dispatched to it, "
        "no read, no waiting long poll) stops its actor (~17 KiB each) once its files are "
        "synced; the files stay open and the next message or read starts it again (~0.1 ms). "
        "0: never. Keeps a broker with thousands of queues at the memory of the ones in use.",
    ),
    "flushCommitLogTimed": (
        IGNORED,
        "RocketMQ's flush-thread sleep mode; actormq's Flusher always runs on a timer.",
    ),
    "syncFlushTimeout": (USED, "ms a SYNC_FLUSH send waits for fsync (FLUSH_DISK_TIMEOUT)."),
    "slaveTimeout": (USED, "ms a SYNC_MASTER send waits for a slave (FLUSH_SLAVE_TIMEOUT)."),
    "maxMessageSize": (USED, "Largest message body in bytes; larger is MESSAGE_ILLEGAL."),
    "maxTransferCountOnMessageInMemory": (
        USED,
        "Most messages in one pull response (a consumer asking for more gets this many).",
    ),
    "maxTransferBytesOnMessageInMemory": (USED, "Most bytes in one pull response."),
    "deleteWhen": (
        USED,
        "Hours of the day (HH or HH;HH, 0..23; one digit too, as RocketMQ: 4 is 04) when "
        "expired segments are deleted.",
    ),
    "fileReservedTime": (USED, "Hours a commit-log segment is kept."),
    "diskMaxUsedSpaceRatio": (USED, "Disk use % above which expired segments go at once."),
    "diskSpaceCleanForciblyRatio": (USED, "Disk use % above which even unexpired ones go."),
    "diskSpaceWarningLevelRatio": (
        USED,
        "Disk use % above which writes are refused (SERVICE_NOT_AVAILABLE).",
    ),
    "cleanResourceInterval": (USED, "ms between retention checks."),
    "deleteCommitLogFilesInterval": (IGNORED, "RocketMQ's pause between deleted files."),
    "destroyMapedFileIntervalForcibly": (IGNORED, "RocketMQ's wait for mmap references."),
    "redeleteHangedFileInterval": (IGNORED, "RocketMQ's retry of a hung deletion."),
    "autoCreateTopicEnable": (USED, "Create a topic on first send."),
    "defaultTopicQueueNums": (
        USED,
        "Upper bound of queues for an auto-created topic (min with the producer's request).",
    ),
    "maxTopicQueueNums": (
        USED,
        "actormq's: most read or write queues one topic may have (RocketMQ sets no limit). "
        "UPDATE_AND_CREATE_TOPIC and a group's retryQueueNums beyond it get INVALID_PARAMETER; "
        "auto-created and retry topics are cut to it. A topic of 2^31 queues once made one "
        "stats request walk every queue for hours.",
    ),
    "autoCreateSubscriptionGroup": (
        USED,
        "Create a consumer group on first use; false: pulls and send-backs of a group without a "
        "config (updateSubGroup) get SUBSCRIPTION_GROUP_NOT_EXIST, except RocketMQ's system "
        "groups (TOOLS_CONSUMER, ...).",
    ),
    "brokerPermission": (USED, "Permission bits registered for the broker: 4 read, 2 write."),
    "longPollingEnable": (USED, "Park pulls that find nothing until a message or timeout."),
    "shortPollingTimeMills": (USED, "ms a pull is held when long polling is off."),
    "slaveReadEnable": (
        USED,
        "Slaves serve pulls while their master is up, and a master suggests its slave "
        "(suggestWhichBrokerId=1) to a consumer reading far behind. Off: a slave serves pulls "
        "only while its master is unreachable.",
    ),
    "accessMessageInMemoryMaxRatio": (
        USED,
        "% of physical memory: a consumer further behind the commit-log end than this is "
        "suggested the slave (with slaveReadEnable).",
    ),
    "enablePropertyFilter": (USED, "Allow SQL92 property-filter subscriptions."),
    "traceTopicEnable": (
        USED,
        "Create the message-trace topic (msgTraceTopicName) at start, for clients that send "
        "their trace data to it.",
    ),
    "msgTraceTopicName": (USED, "Name of the message-trace topic (with traceTopicEnable)."),
    "regionId": (
        USED,
        "The broker's region: every send response and every stored message carry it "
        "(MSG_REGION), and clients' message traces record it.",
    ),
    "traceOn": (
        USED,
        "false: send responses and stored messages carry TRACE_ON=false, and clients with "
        "message traces on record no Pub of those sends and no Sub of those messages "
        "(their END_TRANSACTION records still, as RocketMQ's).",
    ),
    "haListenPort": (
        USED,
        "TCP port slaves replicate from. 0 picks a free port. Unset: listenPort + 1 (a free "
        "port with listenPort 0), as RocketMQ's BrokerStartup sets it; a negative value means "
        "the same (RocketMQ 5).",
    ),
    "haMasterAddress": (
        USED,
        "Slave only: master's HA host:port; empty means learn it from the name server. Not "
        "used in controller mode: the controller names the master.",
    ),
    "haSendHeartbeatInterval": (
        USED,
        "ms between a slave's offset reports when idle (the master sends a heartbeat frame "
        "at least every second).",
    ),
    "haHousekeepingInterval": (
        USED,
        "ms of silence after which either end closes a replication link.",
    ),
    "haSlaveFallbehindMax": (USED, "Bytes a slave may lag and still count as in sync."),
    "haMaxTimeSlaveNotCatchup": (
        USED,
        "Controller mode: ms a slave may go without catching up with the master and still "
        "count as in sync.",
    ),
    "minInSyncReplicas": (
        USED,
        "RocketMQ 5's: a master (SYNC or ASYNC) takes a send only while at least this many "
        "replicas, itself counted, are in sync (in controller mode: slaves the controller "
        "counts in sync too); else SYSTEM_ERROR 'in-sync replicas not enough' and nothing is "
        "stored, so a producer retries another broker instead of getting SLAVE_NOT_AVAILABLE "
        "for a message that lives on one machine. Delayed and timer deliveries wait and "
        "retry; an END_TRANSACTION commit gets the error (the half message stays and is "
        "checked again). 1 (the default): no check. Read at start.",
    ),
    "allAckInSyncStateSet": (
        USED,
        "RocketMQ 5's: a SYNC_MASTER answers SEND_OK only once every slave of the in-sync set "
        "holds the message (in controller mode: every slave the controller counts in sync, so "
        "whichever it elects holds every acknowledged message); a slave that stops acking "
        "holds sends back (each FLUSH_SLAVE_TIMEOUT after slaveTimeout) until the controller "
        "drops it from the set (classic mode: until it has not caught up for "
        "haMaxTimeSlaveNotCatchup; a slave that links again behind the master's end, after a "
        "restart, is not waited for until it has caught up). false (RocketMQ's default): once "
        "one in-sync slave holds "
        "it, so with two or more slaves a failover that loses the master and that slave "
        "together can lose acknowledged messages. Same effect with one slave. Read at start.",
    ),
    "haTransferBatchSize": (
        USED,
        "Largest replication frame in bytes (a frame holds whole records: one larger record "
        "travels alone).",
    ),
    "haReconcileWaitMillis": (
        USED,
        "actormq's (classic mode): a master back from a power loss under ASYNC_FLUSH (its "
        "store stopped uncleanly on an earlier boot of the machine) takes no write until the "
        "slaves in sync before it are back and it fetched what they hold past its end "
        "(docs/ha-design.md, 'A classic master back from a power loss reconciles'). A "
        "SYNC_MASTER waits for them however long it takes (its acknowledgements relied on "
        "them); an ASYNC_MASTER waits at most this many ms, then takes writes and cuts a "
        "slave that returns later back to its log (what only that slave held is lost). 0: an "
        "ASYNC_MASTER does not wait. Read at start.",
    ),
    "enableControllerMode": (
        USED,
        "Automatic failover: the broker heartbeats to the controller, a master writes only "
        "while it holds the controller's lease, roles follow the controller's elections.",
    ),
    "controllerAddr": (
        USED,
        "The controller's host:port (a name server with enableControllerInNamesrv). Setting "
        "it turns controller mode on; empty with controller mode: the first namesrvAddr.",
    ),
    "messageDelayLevel": (USED, "Delay levels for delayed messages and retries (s, m, h, d)."),
    "timerWheelEnable": (
        USED,
        "Accept messages with an arbitrary delivery time (RocketMQ 5); false: a send with a "
        "TIMER_* property gets MESSAGE_ILLEGAL.",
    ),
    "timerMaxLoaded": (
        USED,
        "actormq's: the most pending timer messages held in memory (~130 bytes each); the "
        "others stay in the timer topic only and are read again, in due order, as the loaded "
        "ones are delivered (no send is refused). Read at start.",
    ),
    "transactionTimeOut": (USED, "ms before a half message is first checked back."),
    "transactionCheckMax": (USED, "Check-backs before a half message is discarded."),
    "transactionCheckInterval": (USED, "ms between transaction check-back rounds."),
    "transientStorePoolEnable": (IGNORED, "RocketMQ's off-heap write buffer."),
    "osPageCacheBusyTimeOutMills": (
        USED,
        "ms an append may wait in the commit-log writer's inbox before it is refused with "
        "OS_PAGE_CACHE_BUSY (SYSTEM_BUSY to the client), nothing stored.",
    ),
    "useReentrantLockWhenPutMessage": (IGNORED, "Appends go through one writer actor."),
    "sendMessageThreadPoolNums": (IGNORED, "Threads in RocketMQ's send pool."),
    "pullMessageThreadPoolNums": (IGNORED, "Threads in RocketMQ's pull pool."),
    "waitTimeMillsInSendQueue": (
        USED,
        "ms a send (or send-back) may wait, from being read off its socket to being stored, "
        "before it is answered SYSTEM_BUSY unstored (RocketMQ's send-queue fast failure).",
    ),
    "sendThreadPoolQueueCapacity": (IGNORED, "Length of RocketMQ's send-pool queue."),
    "pullThreadPoolQueueCapacity": (IGNORED, "Length of RocketMQ's pull-pool queue."),
    "processReplyMessageThreadPoolNums": (IGNORED, "Threads in RocketMQ's reply pool."),
    "storePathConsumeQueue": (
        IGNORED,
        "RocketMQ's consume-queue directory; actormq keeps them under storePathRootDir.",
    ),
    "storePathIndex": (IGNORED, "RocketMQ's index directory; kept under storePathRootDir."),
    "storeCheckpoint": (IGNORED, "RocketMQ's checkpoint file; kept under storePathRootDir."),
    "abortFile": (IGNORED, "RocketMQ's abort marker; kept under storePathRootDir."),
    "aclEnable": (
        USED,
        "RocketMQ's plain ACL: every request must carry a valid AccessKey and Signature of an "
        "account in the accounts file, with the permissions it needs (docs/broker.md, ACL).",
    ),
    "aclFile": (
        USED,
        "actormq's: the plain ACL accounts file (plain_acl.yml, RocketMQ's format, reloaded "
        "when it changes); empty: $ROCKETMQ_HOME/conf/plain_acl.yml.",
    ),
    "innerClientAuthenticationCredentials": (
        USED,
        'RocketMQ 5\'s key, JSON {"accessKey": "...", "secretKey": "..."}: the account this '
        "broker signs its registrations, controller heartbeats and (a slave) its copy of the "
        "master's metadata with; under aclEnable the broker takes requests signed with it as "
        "from a super user (RocketMQ 5 creates it as one), so a group needs no white "
        "addresses. A master's HA port then takes only slaves that prove the same secret. "
        "Set the same on every broker and name server. Shown masked in getBrokerConfig.",
    ),
    "metricsExporterType": (
        USED,
        "RocketMQ 5's: PROM serves Prometheus metrics on GET /metrics (docs/broker.md, "
        "Metrics); DISABLE: none. OTLP_GRPC and LOG are refused (no OpenTelemetry here).",
    ),
    "metricsPromExporterHost": (
        USED,
        "Where the metrics endpoint listens; empty: brokerIP1, as RocketMQ.",
    ),
    "metricsPromExporterPort": (
        USED,
        "The metrics endpoint's port (a free one with --ephemeral-ports; the ready line "
        "names it as metrics@<broker>).",
    ),
    "enableDLegerCommitLog": (
        USED,
        "Must be false: actormq has no DLedger (true is refused; use enableControllerMode).",
    ),
}

DEFAULT_TEXT = {
    "haListenPort": "listenPort + 1",
    "sendMessageThreadPoolNums": "min(CPUs, 4)",
    "pullMessageThreadPoolNums": "16 + 2*CPUs",
    "processReplyMessageThreadPoolNums": "16 + 2*CPUs",
}
TABLES = {"namesrv-keys": (NamesrvConfig, NAMESRV_KEYS), "broker-keys": (BrokerConfig, BROKER_KEYS)}


def _default(key: str, value: object) -> str:
    if key in DEFAULT_TEXT:
        return DEFAULT_TEXT[key]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_table(cls: type[msgspec.Struct], keys: dict[str, tuple[str, str]]) -> str:
    """A markdown table of every key of ``cls``: default, actormq status, meaning."""
    rows = ["| Key | Default | actormq | Meaning |", "|---|---|---|---|"]
    for key, spec in field_specs(cls).items():
        status, meaning = keys[key]
        default = _default(key, spec.default)
        shown = f"`{default}`" if default else "(empty)"
        rows.append(f"| `{key}` | {shown} | {status} | {meaning} |")
    return "\n".join(rows) + "\n"


def replace_generated(doc: str) -> str:
    """``doc`` with each ``<!-- BEGIN name -->...<!-- END name -->`` block re-rendered."""
    for name, (cls, keys) in TABLES.items():
        begin, end = f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"
        head, sep, rest = doc.partition(begin)
        if not sep:
            raise ValueError(f"missing marker {begin.strip()}")
        _, sep, tail = rest.partition(end)
        if not sep:
            raise ValueError(f"missing marker {end}")
        doc = head + begin + render_table(cls, keys) + end + tail
    return doc


def main(argv: list[str]) -> int:
    """Rewrite the generated tables of the doc named by ``argv[0]``."""
    path = pathlib.Path(argv[0] if argv else "docs/configuration.md")
    path.write_text(replace_generated(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
