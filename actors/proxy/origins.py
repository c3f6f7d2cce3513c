"""Origins: who a relayed connection's client is. ``origin(peer)``: the client's own address
for a gRPC peer string of a relayed connection (what grpcio sees is the front's loopback
connection; ``actors.proxy.front``): the ACL's address whitelists use it; with the PROXY
protocol, the address its header named. ``caller_address`` and ``peer_address`` read a gRPC
call's peer RocketMQ's way.

Owns ``ORIGINS`` (the front's loopback port of each relayed connection -> the client's peer
string): written by the relay's thread (``openings`` as it connects to grpcio, ``relay`` as a
connection ends), read by grpcio's handlers.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from runtime.errors import AddressError
from runtime.hostport import format_address, parse_address

ORIGINS: dict[int, str] = {}
"""The front's loopback port of each relayed connection -> the client's gRPC peer string."""


def origin(peer: str) -> str:
    """``peer`` (``ipv4:127.0.0.1:PORT``) as the client's own peer string when it is a relayed
    connection; else ``peer`` itself."""
    if peer.startswith("ipv4:127.0.0.1:"):
        port = peer.rpartition(":")[2]
        if port.isdigit():
            return ORIGINS.get(int(port), peer)
    return peer


def caller_address(context: Any) -> str:
    """The address a gRPC call came from, RocketMQ's way (``host:port``; the client's own
    through the relay, or the one a PROXY header named); "" when its peer names none."""
    try:
        host, port = parse_address(peer_address(origin(context.peer() or "")))
    except AddressError:
        return ""
    return format_address(host, port)


def peer_address(peer: str) -> str:
    """``host:port`` of a gRPC peer string (``ipv4:1.2.3.4:5``; grpcio writes an IPv6 one
    URL-encoded, ``ipv6:%5B::1%5D:5``: decoded)."""
    return urllib.parse.unquote(peer.partition(":")[2])


def peer_string(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"
