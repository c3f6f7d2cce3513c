"""What brokers and the controller say to each other (actormq's own remoting codes; not part of
RocketMQ's protocol) and the timings of failover.

- ``CONTROLLER_HEARTBEAT`` (broker -> controller, every ``HEARTBEAT_S``): body
  ``ControllerHeartbeat`` (JSON), reply body ``ControllerReply``. The reply is the controller's
  word on the broker's role: MASTER (with the term's epoch, and a lease when the broker already
  runs that term), SLAVE (with where its master is), or WAIT (the controller is still learning
  who is who after its start: keep your role, no lease).
- ``CONTROLLER_NOTIFY`` (controller -> broker, oneway, on the heartbeat's connection): "your
  role changed, heartbeat now", so a promotion (or a handover's resignation and catch-up) does
  not wait for the next heartbeat.

Leases: a master may write only until ``sent_at + lease_ms`` on its own monotonic clock, where
``sent_at`` is when it sent the heartbeat that earned the lease. The controller counts the same
lease from when it received that heartbeat (later), and elects nobody else before it expired
plus ``MARGIN_S``: two masters of one group never both hold a lease.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

CONTROLLER_HEARTBEAT = 3001
CONTROLLER_NOTIFY = 3002

HEARTBEAT_S = 1.0
LEASE_S = 3.0
MARGIN_S = 0.2
GRACE_S = LEASE_S + 1.0
"""After a controller starts it grants nothing for this long: a lease granted by a previous
incarnation has run out by then, and every live broker has said what it is."""


class ControlRole(enum.Enum):
    MASTER = "MASTER"
    SLAVE = "SLAVE"
    WAIT = "WAIT"


Id = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
"""A broker id, or an epoch: a heartbeat claiming epoch 2^63 - 1 made the next term overflow
the HA protocol's int64 and broke replication for good (hostile-input probe)."""
Name = Annotated[str, msgspec.Meta(max_length=255)]


class ControllerHeartbeat(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    cluster: Name
    group: Name  # brokerName
    node: Id  # the broker's stable id in its group (its configured brokerId)
    addr: Name  # brokerIP1:listenPort
    ha_addr: Name
    claim_master: bool  # runs as master, and the newest epoch entry is its own (or none)
    epoch: Id  # its newest epoch entry (0: none)
    max_offset: Annotated[int, msgspec.Meta(ge=0, le=2**62)]  # its commit log's end
    sync: bool = False  # a master: SYNC_MASTER
    in_sync: Annotated[list[Id], msgspec.Meta(max_length=64)] = []  # a master: its in-sync slaves
    writable: bool = True
    """It may append now (a master holding its lease), read in the same turn as ``max_offset``.
    (Missing, from an older broker: True, the safe reading.)"""
    confirmed: Annotated[int, msgspec.Meta(ge=0, le=2**62)] = 0
    """A master: the highest offset it acknowledged (PUT_OK) or let consumers see
    (``HAState.visible``). The controller elects nobody whose log ends before the highest it
    heard (0 from an older broker: no such check)."""
    power_cut: bool = False
    """Its store came back from an unclean stop on an earlier boot of its machine (a power
    loss: what was not fsync'd may be gone) and it has not caught up with a master since:
    not elected while a member that may hold more is away."""
    resigned: int = 0
    """The handover (its ``ControllerReply.resign`` token) this master gave its lease up for;
    0: none. It never holds a lease again in that handover, so from a heartbeat carrying the
    handover's token, ``max_offset`` covers every record it ever acknowledged
    (``actors.namesrv.handover``)."""
    incarnation: Annotated[int, msgspec.Meta(ge=0, le=2**62)] = 0
    """A random id of the sending ControllerClient (a new one each time it starts); 0 from an
    older broker (no ordering)."""
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**62)] = 0
    """The heartbeat's number within its incarnation (from 1). A heartbeat can reach the
    controller after a later one (it went on a connection that failed, and the next one on a
    new connection): the controller applies none older than one it applied, nor any of an
    incarnation it saw replaced, so a stale in-sync set never overwrites a newer one."""


class ControllerReply(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    role: ControlRole
    epoch: int = 0
    lease_ms: int = 0  # > 0: a lease for a master running ``epoch``
    sync: bool = False  # the group's replication mode (for a slave being promoted)
    master_node: int = -1
    master_addr: str = ""
    master_ha_addr: str = ""
    register_id: int = 0  # the brokerId to register with the name servers
    in_sync: list[int] = []  # a master: the in-sync set the controller now knows
    resign: int = 0
    """To a master being handed over (mqadmin electMaster), the handover's token: give up the
    lease now and heartbeat at once carrying the token (``ControllerHeartbeat.resigned``), so
    the controller need not wait for the lease to run out. 0: none."""


def encode(obj: msgspec.Struct) -> bytes:
    return msgspec.json.encode(obj)
