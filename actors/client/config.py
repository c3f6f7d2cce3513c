"""Client settings shared by producers and consumers, and the name-server address rules."""

from __future__ import annotations

import itertools
import os
import pathlib
from typing import Any

import msgspec

from actors.client.errors import ClientError
from actors.client.msgid import local_ip
from runtime.acl.signature import SessionCredentials
from runtime.errors import AddressError
from runtime.hostport import parse_address
from runtime.tls import ClientTls, load

NAMESRV_ENV = "NAMESRV_ADDR"
DEFAULT_NAMESRV = "127.0.0.1:9876"
LANGUAGE = "PYTHON"
"""The ``language`` our requests carry."""

_instances = itertools.count(1)


def resolve_namesrv(namesrv: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Name-server addresses from the argument, else ``$NAMESRV_ADDR``, else 127.0.0.1:9876.

    A string may hold several addresses separated by ``;`` (RocketMQ's syntax) or ``,``; an IPv6
    host with (``[::1]:9876``) or without brackets (``::1:9876``, split at the last ``:``)."""
    if namesrv is None:
        namesrv = os.environ.get(NAMESRV_ENV) or DEFAULT_NAMESRV
    items = namesrv.replace(",", ";").split(";") if isinstance(namesrv, str) else list(namesrv)
    out = tuple(a.strip() for a in items if a and a.strip())
    for address in out:
        try:
            parse_address(address)
        except AddressError as err:
            raise ClientError(f"bad name server address {address!r}: {err.problem}") from None
    if not out:
        raise ClientError("no name server address given")
    return out


class TlsOptions(ClientTls, frozen=True, kw_only=True):
    """TLS to the name servers and brokers (RocketMQ's ``useTLS`` with its ``tls.client.*``
    settings); ``tls=True`` on a client is ``TlsOptions()``. By default the connection is
    encrypted but the server's certificate is not checked, as RocketMQ's default
    (``tls.client.authServer=false``); ``verify`` checks it against ``trust_cert_path`` (PEM;
    empty: the system's CAs), not its host name (brokers are addressed by IP).
    ``cert_path`` / ``key_path`` present a client certificate (a server that asks for one)."""

    @classmethod
    def of(cls, tls: TlsOptions | bool | None) -> TlsOptions | None:
        if tls is None or tls is False:
            return None
        return cls() if tls is True else tls

    @classmethod
    def from_properties(cls, path: pathlib.Path) -> TlsOptions:
        """The ``tls.client.*`` keys of a RocketMQ ``tls.properties`` (``ConfigError``)."""
        return cls(**msgspec.structs.asdict(load(path).client_side()))

    def context(self) -> Any:
        """A gevent ``SSLContext`` for these options (``ClientError`` for a bad file)."""
        try:
            return super().context()
        except OSError as exc:  # ssl.SSLError is one: a file that is no certificate or key
            raise ClientError(f"TLS options {self}: {exc}") from None


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What every client object needs. Intervals and timeouts in seconds."""

    namesrv: tuple[str, ...]
    client_ip: str
    instance_name: str
    client_id: str
    request_timeout: float = 3.0
    """Timeout of control requests (routes, offsets, heartbeats)."""
    connect_timeout: float = 3.0
    route_refresh_interval: float = 30.0
    heartbeat_interval: float = 30.0
    credentials: SessionCredentials | None = None
    """ACL keys: every request to a broker or name server is signed with them."""
    tls: TlsOptions | None = None
    """TLS on every connection (None: plain)."""

    @classmethod
    def make(
        cls,
        namesrv: str | list[str] | tuple[str, ...] | None,
        instance_name: str | None = None,
        credentials: SessionCredentials | None = None,
        tls: TlsOptions | bool | None = None,
        **options: float,
    ) -> ClientConfig:
        """A config with a fresh client id ``ip@instance`` (instance: ``pid#n`` by default, so
        every client object in a process is its own client, as RocketMQ does per instance). An
        IPv6 ip is bracketed, ``[fd00::2]@...``, as RocketMQ's RemotingUtil.getLocalAddress
        writes it."""
        ip = local_ip()
        if ":" in ip:
            ip = f"[{ip}]"
        instance = instance_name or f"{os.getpid()}#{next(_instances)}"
        tls_options = TlsOptions.of(tls)
        if tls_options is not None:
            tls_options.context()  # a bad file is the caller's ClientError now, not at start
        return cls(
            namesrv=resolve_namesrv(namesrv),
            client_ip=ip,
            instance_name=instance,
            client_id=f"{ip}@{instance}",
            credentials=credentials,
            tls=tls_options,
            **options,
        )
