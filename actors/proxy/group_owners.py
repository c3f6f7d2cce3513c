"""GroupOwners: which client made each consumer group the proxy serves, so one client cannot
take the proxy's whole budget of groups (``service.MAX_GROUPS``).

A probe's one client named 1,000 new groups in ReceiveMessage calls: the proxy served 1,000
(each a consumer of the cluster, and a ``%RETRY%`` topic on the brokers) and a legitimate new
group got TOO_MANY_REQUESTS. A RocketMQ 5 client is one consumer of one group, so one client
makes at most ``PER_CLIENT`` here; the owner is its client id (``x-mq-client-id``), else the
host it calls from (``owner_of``). A group counts for the client that made it until it leaves
the proxy (idle, ``ProxyService._leave``). Not thread-safe: the service calls it under its lock.
"""

from __future__ import annotations

from typing import Any

from actors.proxy.front import caller_address
from runtime.errors import AddressError
from runtime.hostport import parse_address

PER_CLIENT = 32


def owner_of(context: Any, client: str) -> str:
    """Who a call's new group counts for: its client id, else ``host <address>``."""
    if client:
        return client
    try:
        host = parse_address(caller_address(context))[0] if context is not None else ""
    except AddressError:
        host = ""
    return f"host {host}" if host else ""


class GroupOwners:
    def __init__(self, per_client: int = PER_CLIENT) -> None:
        self.per_client = per_client
        self._made: dict[str, set[str]] = {}
        """Owner -> the groups it made."""
        self._owner: dict[str, str] = {}
        """Group -> its owner."""

    def refusal(self, owner: str) -> str | None:
        """Why ``owner`` may not make another group (None: it may)."""
        if len(self._made.get(owner, ())) < self.per_client:
            return None
        who = f"client {owner[:128]}" if not owner.startswith("host ") else owner[:128]
        return (
            f"{who} made {self.per_client} consumer groups on this proxy: a group leaves after "
            "2 minutes without receives"
        )

    def made(self, owner: str, group: str) -> None:
        self._owner[group] = owner
        self._made.setdefault(owner, set()).add(group)

    def left(self, group: str) -> None:
        owner = self._owner.pop(group, None)
        if owner is None:
            return
        groups = self._made.get(owner)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._made[owner]

    def count(self, owner: str) -> int:
        return len(self._made.get(owner, ()))
