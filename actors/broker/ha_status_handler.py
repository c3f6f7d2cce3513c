"""GET_BROKER_HA_STATUS (907, ``mqadmin haStatus``): this broker's replication, now; and
GET_BROKER_EPOCH_CACHE (1007, ``mqadmin getBrokerEpoch``): its epoch file.

A master answers one entry per slave link (``HAState.slaves``: its address, acknowledged offset,
how far behind the master's log end it is, whether it counts as in sync, its acks' bytes a
second since the figure before, the offset the link began at); a slave answers its link to its
master (the master's HA address, its own log end, bytes a second appended from the master,
when it last read from the master and last reported its end, whether the link is up). A broker
without replication answers as a master without slaves. Body:
``runtime.remoting.ha_bodies.HARuntimeInfo``.

The epoch cache (``runtime.remoting.controller_bodies.EpochEntryCache``): the broker's cluster,
name and node id (its configured brokerId, stable across promotions), each master term of its
log with the range it wrote (the last one up to the commit log's end), and that end. Empty
outside controller mode (no terms are kept).
"""

from __future__ import annotations

import time

from actors.broker.context import BrokerContext, reply
from runtime.ha.state import HAState, Role
from runtime.remoting.bodies import encode_body
from runtime.remoting.command import RemotingCommand
from runtime.remoting.controller_bodies import EpochEntry, EpochEntryCache
from runtime.remoting.ha_bodies import HAClientRuntimeInfo, HAConnectionRuntimeInfo, HARuntimeInfo
from runtime.session import SessionHandle


def ha_status(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    info = ctx.ask(ctx.proxy(ctx.stats).runtime_info())
    end = int(info.get("commitLogMaxOffset", "0") or 0)
    return reply(request, body=encode_body(runtime_info(ctx.ha, end)))


def epoch_cache(
    ctx: BrokerContext, session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    info = ctx.ask(ctx.proxy(ctx.stats).runtime_info())
    end = int(info.get("commitLogMaxOffset", "0") or 0)
    entries = list(ctx.epochs.entries) if ctx.epochs is not None else []
    ends = [e.start for e in entries[1:]] + ([end] if entries else [])
    body = EpochEntryCache(
        cluster_name=ctx.cfg.broker_cluster_name,
        broker_name=ctx.cfg.broker_name,
        broker_id=ctx.ha.node_id if ctx.ha is not None else ctx.cfg.broker_id,
        epoch_list=[
            EpochEntry(epoch=e.epoch, start_offset=e.start, end_offset=stop)
            for e, stop in zip(entries, ends, strict=True)
        ],
        max_offset=end,
    )
    return reply(request, body=encode_body(body))


def runtime_info(ha: HAState | None, end: int) -> HARuntimeInfo:
    """The HA picture of a node whose commit log ends at ``end``."""
    now = time.monotonic() if ha is None else ha.clock()
    if ha is not None and ha.role is Role.SLAVE:
        return HARuntimeInfo(
            master=False,
            ha_client_runtime_info=HAClientRuntimeInfo(
                master_addr=ha.master_ha_addr or "",
                transferred_byte_in_second=ha.received.current(time.monotonic()),
                max_offset=end,
                last_read_timestamp=ha.last_read_ms,
                last_write_timestamp=ha.last_report_ms,
                activated=ha.master_link_up,
            ),
        )
    links = [] if ha is None else sorted(ha.slaves.items())
    in_sync = frozenset() if ha is None else ha.in_sync
    return HARuntimeInfo(
        master=True,
        master_commit_log_max_offset=end,
        in_sync_slave_nums=len(in_sync),
        ha_connection_info=[
            HAConnectionRuntimeInfo(
                addr=link.addr,
                slave_ack_offset=link.acked,
                diff=max(end - link.acked, 0),
                in_sync=node in in_sync,
                transferred_byte_in_second=link.rate.current(now),
                transfer_from_where=link.since,
            )
            for node, link in links
            if link.connected
        ],
    )
