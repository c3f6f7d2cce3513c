"""Messages of the HA actors (HAService, HAConnection, HAClient, ControllerClient).

Frozen, tagged msgspec structs. Those carrying a ``reply`` future are answered later by the
actor that completes them; the rest are told.
"""

from __future__ import annotations

from typing import Any

import msgspec

# -- HAService (master) ------------------------------------------------------------------------


class AwaitReplica(msgspec.Struct, frozen=True, tag=True):
    """From the replication condition: set ``reply`` to a ReplicationStatus once an in-sync
    slave acknowledged the commit log up to ``offset`` (or the slave timeout passed)."""

    offset: int
    reply: Any


class SlaveJoined(msgspec.Struct, frozen=True, tag=True):
    """From an HAConnection: slave ``node`` was accepted from ``offset`` (``urn``: the link,
    ``addr``: where it comes from; ``epoch``: the newest epoch of the entries its ACCEPT
    carried, which the slave mirrored; None: not known)."""

    node: int
    urn: str
    offset: int
    addr: str = ""
    epoch: int | None = None


class SlaveAck(msgspec.Struct, frozen=True, tag=True):
    """From an HAConnection: slave ``node`` holds the commit log up to ``offset`` (``addr``:
    where its link comes from, for a service restarted since the link's join)."""

    node: int
    urn: str
    offset: int
    addr: str = ""


class SlaveLeft(msgspec.Struct, frozen=True, tag=True):
    node: int
    urn: str


class ServiceTick(msgspec.Struct, frozen=True, tag=True):
    """Timer: expire waiters past the slave timeout, recompute the in-sync set."""


class NewEpoch(msgspec.Struct, frozen=True, tag=True):
    """From the ControllerClient: this master's term is ``epoch``; record it in the epoch file
    before any write of the term (then ``reply`` gets True)."""

    epoch: int
    reply: Any = None


# -- HAConnection (master, one per slave) --------------------------------------------------------


class LinkHello(msgspec.Struct, frozen=True, tag=True):
    """From the connection's reader: the slave's HELLO (a ``runtime.ha.protocol.Hello``)."""

    hello: Any


class LinkProof(msgspec.Struct, frozen=True, tag=True):
    """From the connection's reader: the slave's PROOF answering the link's CHALLENGE."""

    mac: bytes


class LinkTail(msgspec.Struct, frozen=True, tag=True):
    """From the link's reader: part of the slave's log a FETCH asked for (empty: the end).
    ``done`` (a ``gevent.event.Event``) is set once it is handled: the reader reads no more
    until then."""

    offset: int
    data: bytes
    done: Any = None


class LinkReport(msgspec.Struct, frozen=True, tag=True):
    offset: int


class LinkClosed(msgspec.Struct, frozen=True, tag=True):
    """Close the link (``relink``: an accepted slave is told, in its stream, to link again at
    once: REFUSED not ready, which it retries after 0.2 s instead of 1 s)."""

    reason: str
    relink: bool = False


class LinkCheck(msgspec.Struct, frozen=True, tag=True):
    """Timer: close a link whose slave stopped reporting (haHousekeepingInterval)."""


# -- HAClient (slave) ---------------------------------------------------------------------------


class MasterAddress(msgspec.Struct, frozen=True, tag=True):
    """Where this slave's master's HA port is (``None``: no master known); ``source`` says who
    said so (config, namesrv, controller). The controller's word overrides the others."""

    address: str | None
    source: str
    epoch: int = 0


class ClientDone(msgspec.Struct, frozen=True, tag=True):
    """From the HAClient's link greenlet: the link ended (``reason``); reconnect later."""

    generation: int
    reason: str
    retry_after: float


class ClientTick(msgspec.Struct, frozen=True, tag=True):
    pass


# -- ControllerClient ---------------------------------------------------------------------------


class HeartbeatNow(msgspec.Struct, frozen=True, tag=True):
    """Heartbeat to the controller at once (the in-sync set changed, or the controller asked)."""


class HeartbeatDone(msgspec.Struct, frozen=True, tag=True):
    """Internal: a heartbeat sent at ``sent_at`` (monotonic) got ``reply`` (None: failed)."""

    sent_at: float
    reply: Any
    isr: frozenset[int]
