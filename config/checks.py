"""Value checks shared by the config structs. Parsers raise ValueError with the problem text."""

from __future__ import annotations

import re
from typing import NoReturn

import msgspec

from config.fields import field_specs, key_of
from runtime.acl.signature import SessionCredentials
from runtime.errors import AddressError, ConfigError
from runtime.hostport import parse_address

_DELAY_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DELAY_TOKEN = re.compile(r"(\d+)([smhd])")
_HOUR = re.compile(r"\d{1,2}")


def fail(cls: type[msgspec.Struct], attr: str, problem: str) -> NoReturn:
    """Raise the ConfigError for field ``attr`` of ``cls`` (the loader adds the file)."""
    raise ConfigError(None, key_of(cls, attr), problem)


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` or RocketMQ's unbracketed ``v6:port``, split at the last
    ``:``) -> (host, port); port must be 1..65535 (``runtime.hostport.parse_address``)."""
    try:
        return parse_address(text)
    except AddressError as err:
        raise ValueError(str(err)) from None


def parse_namesrv_addr(text: str) -> list[tuple[str, int]]:
    """RocketMQ's ``host:port;host:port`` -> [(host, port), ...]; empty text -> []."""
    parts = [p.strip() for p in text.split(";")]
    if not text.strip():
        return []
    addresses: list[tuple[str, int]] = []
    for part in parts:
        if not part:
            continue
        try:
            addresses.append(parse_host_port(part))
        except ValueError as err:
            raise ValueError(f"{text!r} is not host:port;host:port ({err})") from None
    return addresses


def parse_delete_when(text: str) -> list[int]:
    """RocketMQ's deleteWhen, ``HH`` or ``HH;HH;...`` (0..23, one digit or two: RocketMQ reads
    each with Integer.parseInt, so ``4`` is 04) -> hours."""
    hours = text.split(";")
    if not all(_HOUR.fullmatch(h) and int(h) < 24 for h in hours):
        raise ValueError(f"{text!r} is not hours of the day as HH or HH;HH (0..23)")
    return [int(h) for h in hours]


def parse_delay_levels(text: str) -> list[int]:
    """RocketMQ's messageDelayLevel (``1s 5s ... 2h``, units s m h d) -> delays in ms."""
    tokens = text.split()
    if not tokens:
        raise ValueError("needs at least one delay level such as '1s'")
    delays = []
    for token in tokens:
        match = _DELAY_TOKEN.fullmatch(token)
        if not match or int(match[1]) == 0:
            raise ValueError(f"level {token!r} is not a positive number followed by s, m, h or d")
        delays.append(int(match[1]) * _DELAY_UNITS_MS[match[2]])
    return delays


def check_bounds(obj: msgspec.Struct) -> None:
    """Check every Annotated numeric bound of ``obj``'s fields; raise ConfigError on the first."""
    for spec in field_specs(type(obj)).values():
        value = getattr(obj, spec.attr)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if spec.kind == "port" and not 0 <= value <= 65535:
            problem = f"{value} is not a port number (0..65535; 0 picks a free port)"
        elif spec.kind == "ratio" and not spec.ge <= value <= spec.le:  # type: ignore[operator]
            problem = f"{value} is out of range: a disk-usage percentage in {spec.ge}..{spec.le}"
        elif spec.gt is not None and value <= spec.gt:
            problem = f"{value} is out of range: must be > {spec.gt}"
        elif spec.ge is not None and value < spec.ge:
            problem = f"{value} is out of range: must be >= {spec.ge}"
        elif spec.le is not None and value > spec.le:
            problem = f"{value} is out of range: must be <= {spec.le}"
        else:
            continue
        raise ConfigError(None, spec.key, problem)


def check_name(cls: type[msgspec.Struct], attr: str, value: str, *, empty_ok: bool = False) -> None:
    """A name or host: non-empty (unless ``empty_ok``), no whitespace or control characters."""
    if not value and not empty_ok:
        fail(cls, attr, "must not be empty")
    if any(c.isspace() or not c.isprintable() for c in value):
        fail(cls, attr, f"{value!r} must not contain whitespace or control characters")


class _Credentials(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=False):
    access_key: str = ""
    secret_key: str = ""


def parse_credentials(text: str) -> SessionCredentials | None:
    """RocketMQ 5's ``innerClientAuthenticationCredentials``: a JSON object with ``accessKey``
    and ``secretKey`` (non-empty strings) -> the account's keys; empty text -> None."""
    if not text.strip():
        return None
    try:
        creds = msgspec.json.decode(text.encode(), type=_Credentials)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError):
        raise ValueError('must be JSON like {"accessKey": "...", "secretKey": "..."}') from None
    if not creds.access_key or not creds.secret_key:
        raise ValueError("needs a non-empty accessKey and secretKey")
    return SessionCredentials(creds.access_key, creds.secret_key)


def check_credentials(cls: type[msgspec.Struct], value: str) -> None:
    """``innerClientAuthenticationCredentials`` of ``cls`` parses (``parse_credentials``)."""
    try:
        parse_credentials(value)
    except ValueError as exc:
        fail(cls, "inner_client_authentication_credentials", str(exc))
