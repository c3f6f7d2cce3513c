"""GET_ALL_PRODUCER_INFO (328, ``mqadmin producer``; its request header has no fields): a broker's
producers by group, as RocketMQ 5's ProducerTableInfo body (``{"data": {group: [ProducerInfo,
...]}}``).

A ProducerInfo is one producer connection of a group: the client id of its heartbeat, the
connection's remote address as Java's ``Channel.remoteAddress().toString()`` writes it
(``/127.0.0.1:53422``), the client's language and version (the request header's) and when its
last heartbeat came (ms since the epoch). ``decode_producer_table`` raises only ProtocolError.
"""

from __future__ import annotations

import msgspec

from runtime.remoting.bodies import Body, Int32, Int64, decode_body


class ProducerInfo(Body, kw_only=True):
    """One producer connection of a group."""

    client_id: str
    remote_ip: str = msgspec.field(default="", name="remoteIP")
    language: str = ""
    version: Int32 = 0
    last_update_timestamp: Int64 = 0

    def describe(self) -> str:
        """Java's ``ProducerInfo.toString()``, the text ``mqadmin producer`` prints."""
        return (
            f"clientId={self.client_id},remoteIP={self.remote_ip}, language={self.language}, "
            f"version={self.version}, lastUpdateTimestamp={self.last_update_timestamp}"
        )


class ProducerTableInfo(Body, kw_only=True):
    """GET_ALL_PRODUCER_INFO (328) response body: producer group -> its producers."""

    data: dict[str, list[ProducerInfo]] = {}


def decode_producer_table(body: bytes) -> dict[str, list[ProducerInfo]]:
    """The group -> producers table of a 328 answer (ProtocolError when it does not decode)."""
    return decode_body(ProducerTableInfo, body).data
