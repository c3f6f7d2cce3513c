"""Checks of the addresses a broker advertises (brokerIP1 to clients and name servers,
brokerIP2 or brokerIP1 to slaves), run before anything binds: a cluster across hosts that
advertises an address nobody else can reach fails at start with a message, not later with
clients that time out.

Errors (``ConfigError``, the process exits 2):
- brokerIP1 / brokerIP2 does not resolve;
- the broker listens on loopback only (listenHost 127.x or ::1) but advertises another address;
- it advertises an IPv6 address but listens on IPv4 only (0.0.0.0, an IPv4 address) or an IPv4
  address but listens on one IPv6 address (``::`` takes both where the OS allows dual stack);
- it advertises a loopback address to a name server on another host.
Warning only: an advertised address that is not one of this host's (NAT or port forwarding
may make that right).
"""

from __future__ import annotations

import ipaddress
import socket

from loguru import logger

from config import BrokerConfig
from runtime.errors import AddressError, ConfigError
from runtime.hostport import family_of, resolve_ip

_ANY = {"0.0.0.0", "::", ""}
_DUAL = "::"


def _resolve(host: str, key: str) -> str:
    """An IP literal as it is (IPv6 too); a name to its first address, IPv4 preferred."""
    try:
        return resolve_ip(host)
    except AddressError as exc:
        raise ConfigError(None, key, str(exc)) from None


def _family_problem(listen: str, ip: str) -> str | None:
    """Why clients cannot reach ``ip`` when the broker listens on ``listen``, or None."""
    if listen == _DUAL:
        return None
    v6 = family_of(ip) == socket.AF_INET6
    if v6 and (listen in _ANY or family_of(listen) != socket.AF_INET6):
        return "an IPv6 address, but the broker listens on IPv4 only; set listenHost=::"
    if not v6 and listen not in _ANY and family_of(listen) == socket.AF_INET6:
        return "an IPv4 address, but the broker listens on IPv6 only; set listenHost=::"
    return None


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _is_local(ip: str) -> bool:
    with socket.socket(family_of(ip), socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, 0))
        except OSError:
            return False
    return True


def check_advertised(cfg: BrokerConfig) -> None:
    """Raise ConfigError for an advertised address nobody can use (see the module doc)."""
    listen = cfg.listen_host
    listen_ip = None if listen in _ANY else _resolve(listen, "listenHost")
    for key, host in (("brokerIP1", cfg.broker_ip1), ("brokerIP2", cfg.broker_ip2)):
        if not host:
            continue
        ip = _resolve(host, key)
        problem = _family_problem(listen if listen in _ANY else str(listen_ip), ip)
        if problem is not None:
            raise ConfigError(None, key, f"{host} is {problem}")
        if listen_ip is not None and _loopback(listen_ip) and not _loopback(ip):
            raise ConfigError(
                None,
                key,
                f"{host} is advertised but the broker listens on {listen} only: clients "
                f"cannot connect; set listenHost=0.0.0.0 (or {host})",
            )
        for ns_host, _port in cfg.namesrv_addresses():
            ns_ip = _resolve(ns_host, "namesrvAddr")
            if _loopback(ip) and not _loopback(ns_ip):
                raise ConfigError(
                    None,
                    key,
                    f"{host} is a loopback address, advertised to the name server {ns_host} on "
                    "another host: clients there cannot reach it; set it to this host's address",
                )
        if not _is_local(ip):
            logger.warning(
                "{}={} is not an address of this host; fine behind NAT or port forwarding, "
                "otherwise clients cannot reach this broker",
                key,
                host,
            )
