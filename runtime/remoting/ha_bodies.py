"""GET_BROKER_HA_STATUS (907, ``mqadmin haStatus``): RocketMQ's ``HARuntimeInfo`` body.

A master fills ``ha_connection_info`` (one entry per slave link: where it comes from, what it
acknowledged, how far behind, whether in sync, bytes a second, the offset its link began at);
a slave fills ``ha_client_runtime_info`` (its master's HA address, its log's end, bytes a
second, when it last read from its master and last reported to it). Fields RocketMQ has and
actormq does not keep stay 0 (a slave's ``masterFlushOffset``).
"""

from __future__ import annotations

from runtime.remoting.bodies import Body, Int64


class HAConnectionRuntimeInfo(Body, kw_only=True):
    addr: str = ""
    slave_ack_offset: Int64 = 0
    diff: Int64 = 0
    in_sync: bool = False
    transferred_byte_in_second: Int64 = 0
    transfer_from_where: Int64 = 0


class HAClientRuntimeInfo(Body, kw_only=True):
    master_addr: str = ""
    transferred_byte_in_second: Int64 = 0
    max_offset: Int64 = 0
    last_read_timestamp: Int64 = 0
    last_write_timestamp: Int64 = 0
    master_flush_offset: Int64 = 0
    activated: bool = False
    """RocketMQ's ``isActivated`` (fastjson writes the getter's name): linked to a master."""


class HARuntimeInfo(Body, kw_only=True):
    master: bool = False
    master_commit_log_max_offset: Int64 = 0
    in_sync_slave_nums: int = 0
    ha_connection_info: list[HAConnectionRuntimeInfo] = []
    ha_client_runtime_info: HAClientRuntimeInfo = HAClientRuntimeInfo()
