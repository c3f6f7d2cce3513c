"""The enumerated values of the configuration schema (``config.schema``), with RocketMQ's
names."""

import enum


class BrokerRole(enum.Enum):
    """RocketMQ's broker role. brokerId 0 is the master; slaves have brokerId > 0."""

    ASYNC_MASTER = "ASYNC_MASTER"
    SYNC_MASTER = "SYNC_MASTER"
    SLAVE = "SLAVE"


class FlushDiskType(enum.Enum):
    """When an append counts as durable: after fsync (SYNC_FLUSH) or in the page cache."""

    ASYNC_FLUSH = "ASYNC_FLUSH"
    SYNC_FLUSH = "SYNC_FLUSH"


class MetricsExporterType(enum.Enum):
    """RocketMQ 5's ``metricsExporterType``: DISABLE (the default) or PROM, a Prometheus
    endpoint (``metricsPromExporterHost``:``metricsPromExporterPort``, ``GET /metrics``).
    OTLP_GRPC and LOG are RocketMQ's too; actormq refuses them (no OpenTelemetry here)."""

    DISABLE = "DISABLE"
    OTLP_GRPC = "OTLP_GRPC"
    PROM = "PROM"
    LOG = "LOG"
