"""actormq configuration: msgspec-typed RocketMQ keys, loaders and shipped cluster profiles."""

from config.loader import (
    PROFILE_RUNTIME_KEYS,
    dump_properties,
    list_profiles,
    load_broker_config,
    load_namesrv_config,
    load_profile,
    parse_profile,
    with_data_dir,
    with_overrides,
)
from config.schema import BrokerConfig, BrokerRole, ClusterProfile, FlushDiskType, NamesrvConfig
from runtime.errors import ConfigError

__all__ = [
    "PROFILE_RUNTIME_KEYS",
    "BrokerConfig",
    "BrokerRole",
    "ClusterProfile",
    "ConfigError",
    "FlushDiskType",
    "NamesrvConfig",
    "dump_properties",
    "list_profiles",
    "load_broker_config",
    "load_namesrv_config",
    "load_profile",
    "parse_profile",
    "with_data_dir",
    "with_overrides",
]
