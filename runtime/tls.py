"""TLS on the remoting connections, configured as RocketMQ configures it: one ``tls.properties``
file for the whole process (RocketMQ's ``tls.config.file``; here ``python -m runtime
--tls-config FILE``), with RocketMQ's keys.

Server side (every name-server and broker listener of the process; HA replication stays plain,
as RocketMQ's): ``tls.server.mode`` ``disabled`` (the default here; RocketMQ's is permissive
with a generated test certificate, which this does not make), ``permissive`` (a connection
whose first byte is a TLS handshake record, 0x16, is served over TLS, any other in plain: no
remoting frame starts with it, as its length would be over 350 MB) or ``enforcing`` (TLS only: a
plain connection is closed). ``tls.server.certPath`` and ``keyPath`` (PEM; ``keyPassword``
when the key is encrypted) are then required; ``tls.server.need.client.auth`` ``none`` /
``optional`` / ``require`` asks for client certificates, checked against
``tls.server.trustCertPath``.

Client side (the process's own outbound remoting connections: a broker's registrations with the
name servers, a slave's requests to its master, the controller's; the Python client has its own
``tls=`` option, ``actors.client.TlsOptions``, a ``ClientTls``): ``tls.enable`` turns TLS on;
``tls.client.authServer`` verifies the server's certificate against
``tls.client.trustCertPath`` (off, RocketMQ's default: encrypted but not authenticated);
``tls.client.certPath`` / ``keyPath`` / ``keyPassword`` present a client certificate. Other
``tls.*`` keys RocketMQ knows load and do nothing; an unknown one, a bad value or a missing file
is a ``ConfigError`` naming the file and the key. Certificate files that change are loaded
again (``RELOAD_CHECK_S``), without a restart.
"""

from __future__ import annotations

import enum
import pathlib
import socket
import time
from typing import Any

import gevent.ssl
import msgspec
from loguru import logger

from config.properties import PropertiesSyntaxError, parse_properties
from runtime.errors import ConfigError

HANDSHAKE_S = 5.0
"""How long a connection's TLS handshake may take."""
FIRST_BYTE_S = 120.0
"""Permissive: how long a new connection may stay silent before its first byte tells TLS from
plain (a client may connect ahead of its first request); the sessions' idle limit."""
TLS_RECORD_HANDSHAKE = 0x16
"""The first byte of a TLS ClientHello."""


class TlsMode(enum.Enum):
    """RocketMQ's ``TlsMode``."""

    DISABLED = "disabled"
    PERMISSIVE = "permissive"
    ENFORCING = "enforcing"


class ClientAuth(enum.Enum):
    """RocketMQ's ``tls.server.need.client.auth``."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRE = "require"


class TlsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """One process's ``tls.properties`` (see the module docstring)."""

    server_mode: TlsMode = TlsMode.DISABLED
    server_cert_path: str = ""
    server_key_path: str = ""
    server_key_password: str = ""
    server_need_client_auth: ClientAuth = ClientAuth.NONE
    server_trust_cert_path: str = ""
    enable: bool = False
    client_auth_server: bool = False
    client_trust_cert_path: str = ""
    client_cert_path: str = ""
    client_key_path: str = ""
    client_key_password: str = ""

    def describe(self) -> str:
        """One line for the start-up log: what is encrypted and what is checked."""
        server = f"listeners {self.server_mode.value}"
        if self.server_mode is not TlsMode.DISABLED:
            server += f" (client certificates: {self.server_need_client_auth.value})"
        verified = "server certificate checked" if self.client_auth_server else "not checked"
        outbound = f"outbound TLS ({verified})" if self.enable else "outbound plain"
        return f"{server}, {outbound}, HA replication plain"

    def client_side(self) -> ClientTls:
        """The ``tls.client.*`` keys."""
        return ClientTls(
            verify=self.client_auth_server,
            trust_cert_path=self.client_trust_cert_path,
            cert_path=self.client_cert_path,
            key_path=self.client_key_path,
            key_password=self.client_key_password,
        )


_KEYS = {
    "tls.server.mode": "server_mode",
    "tls.server.certPath": "server_cert_path",
    "tls.server.keyPath": "server_key_path",
    "tls.server.keyPassword": "server_key_password",
    "tls.server.need.client.auth": "server_need_client_auth",
    "tls.server.trustCertPath": "server_trust_cert_path",
    "tls.enable": "enable",
    "tls.client.authServer": "client_auth_server",
    "tls.client.trustCertPath": "client_trust_cert_path",
    "tls.client.certPath": "client_cert_path",
    "tls.client.keyPath": "client_key_path",
    "tls.client.keyPassword": "client_key_password",
}
_INERT = frozenset(
    {"tls.test.mode.enable", "tls.server.authClient", "tls.ciphers", "tls.protocols"}
)
"""RocketMQ keys accepted with no effect (certificates are always checked when asked for)."""


def load(path: pathlib.Path) -> TlsSettings:
    """Read a RocketMQ ``tls.properties``; ``ConfigError(path, key, problem)`` on a mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from exc
    try:
        entries = parse_properties(text)
    except PropertiesSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.line}", None, exc.problem) from None
    values: dict[str, Any] = {}
    for entry in entries:
        key = entry.key
        if key in _INERT:
            continue
        name = _KEYS.get(key)
        where = f"{path}:{entry.line}"
        if name is None:
            raise ConfigError(where, key, f"unknown key (known: {', '.join(_KEYS)})")
        values[name] = _coerce(where, key, name, entry.value.strip())
    settings = TlsSettings(**values)
    _check_files(path, settings)
    try:  # load what the files hold now: a file that is no certificate or key is named here
        if settings.server_mode is not TlsMode.DISABLED:
            server_context(settings)
    except OSError as exc:  # ssl.SSLError is one
        raise ConfigError(str(path), "tls.server.certPath", f"cannot load it: {exc}") from None
    try:
        if settings.enable:
            _outbound_context(settings)
    except OSError as exc:
        raise ConfigError(str(path), "tls.client.certPath", f"cannot load it: {exc}") from None
    return settings


def _coerce(where: str, key: str, name: str, value: str) -> Any:
    if name in ("enable", "client_auth_server"):
        if value.lower() not in ("true", "false"):
            raise ConfigError(where, key, f"expected true or false, got {value!r}")
        return value.lower() == "true"
    kind = {"server_mode": TlsMode, "server_need_client_auth": ClientAuth}.get(name)
    if kind is None:
        return value
    try:
        return kind(value.lower())
    except ValueError:
        known = " / ".join(m.value for m in kind)
        raise ConfigError(where, key, f"expected {known}, got {value!r}") from None


def _check_files(path: pathlib.Path, s: TlsSettings) -> None:
    needed = []
    if s.server_mode is not TlsMode.DISABLED:
        needed += [("tls.server.certPath", s.server_cert_path)]
        needed += [("tls.server.keyPath", s.server_key_path)]
        if s.server_need_client_auth is not ClientAuth.NONE:
            needed += [("tls.server.trustCertPath", s.server_trust_cert_path)]
    if s.enable and s.client_auth_server:
        needed += [("tls.client.trustCertPath", s.client_trust_cert_path)]
    if s.enable and (s.client_cert_path or s.client_key_path):
        needed += [("tls.client.certPath", s.client_cert_path)]
        needed += [("tls.client.keyPath", s.client_key_path)]
    for key, file in needed:
        if not file:
            raise ConfigError(str(path), key, "required by the other keys, not set")
        if not pathlib.Path(file).expanduser().is_file():
            raise ConfigError(str(path), key, f"no such file: {file}")


def server_context(s: TlsSettings) -> gevent.ssl.SSLContext:
    """The listeners' context (``server_mode`` not disabled)."""
    ctx = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(
        _path(s.server_cert_path), _path(s.server_key_path), s.server_key_password or None
    )
    if s.server_need_client_auth is not ClientAuth.NONE:
        ctx.load_verify_locations(_path(s.server_trust_cert_path))
        required = s.server_need_client_auth is ClientAuth.REQUIRE
        ctx.verify_mode = gevent.ssl.CERT_REQUIRED if required else gevent.ssl.CERT_OPTIONAL
    return ctx


class ClientTls(msgspec.Struct, frozen=True, kw_only=True):
    """One outbound side: the server's certificate checked only with ``verify`` (against
    ``trust_cert_path``, else the system's CAs; host names are not checked: brokers are
    addressed by IP), a client certificate presented when ``cert_path`` is given."""

    verify: bool = False
    trust_cert_path: str = ""
    cert_path: str = ""
    key_path: str = ""
    key_password: str = ""

    def context(self) -> gevent.ssl.SSLContext:
        """Its context (``OSError``, ``ssl.SSLError`` among them, for a bad file)."""
        ctx = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if self.verify:
            if self.trust_cert_path:
                ctx.load_verify_locations(_path(self.trust_cert_path))
            else:
                ctx.load_default_certs()
            ctx.verify_mode = gevent.ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = gevent.ssl.CERT_NONE
        if self.cert_path:
            key = _path(self.key_path) if self.key_path else None
            ctx.load_cert_chain(_path(self.cert_path), key, self.key_password or None)
        return ctx


def _path(file: str) -> str:
    return str(pathlib.Path(file).expanduser())


# -- the process's settings ------------------------------------------------------------------

RELOAD_CHECK_S = 1.0
"""How often, at most, a new connection looks whether the certificate files changed (RocketMQ
watches its files the same way: a renewed certificate is used without a restart)."""

_server: tuple[TlsMode, gevent.ssl.SSLContext | None] = (TlsMode.DISABLED, None)
_outbound: gevent.ssl.SSLContext | None = None
_settings: TlsSettings | None = None
_stamp: tuple[float, ...] = ()
_checked_at = 0.0


def configure(s: TlsSettings) -> None:
    """Set this process's listeners and outbound connections (before any starts; again when
    the files change, ``_reload_if_changed``)."""
    global _server, _outbound, _settings, _stamp
    stamp = _stamp_of(s)
    server = server_context(s) if s.server_mode is not TlsMode.DISABLED else None
    outbound = _outbound_context(s) if s.enable else None
    _server, _outbound, _settings, _stamp = (s.server_mode, server), outbound, s, stamp


def _stamp_of(s: TlsSettings) -> tuple[float, ...]:
    """The modification times of every file ``s`` names (0 for one that is missing)."""
    files = (
        s.server_cert_path,
        s.server_key_path,
        s.server_trust_cert_path,
        s.client_cert_path,
        s.client_key_path,
        s.client_trust_cert_path,
    )
    stamp = []
    for file in files:
        try:
            stamp.append(pathlib.Path(file).expanduser().stat().st_mtime if file else 0.0)
        except OSError:
            stamp.append(0.0)
    return tuple(stamp)


def _reload_if_changed() -> None:
    """Load the certificate files again when they changed (checked once a second at most); a
    set that does not load (a key not yet written beside its new certificate) keeps the old
    contexts and is tried again at the next check."""
    global _checked_at
    now = time.monotonic()
    if _settings is None or now - _checked_at < RELOAD_CHECK_S:
        return
    _checked_at = now
    if _stamp_of(_settings) == _stamp:
        return
    try:
        configure(_settings)
    except OSError as exc:  # ssl.SSLError is one
        logger.warning("tls: the changed certificate files do not load ({}); old ones kept", exc)
        return
    logger.info("tls: certificate files changed: reloaded")


def _outbound_context(s: TlsSettings) -> gevent.ssl.SSLContext:
    return s.client_side().context()


def outbound() -> gevent.ssl.SSLContext | None:
    """The context of this process's own outbound remoting connections (None: plain)."""
    _reload_if_changed()
    return _outbound


def accept(conn: socket.socket, address: Any) -> socket.socket | None:
    """An accepted listener connection as the process's mode wants it: as it is, wrapped in
    TLS (handshake done), or None (closed: a plain peer under ``enforcing``, a failed
    handshake). Blocks this greenlet up to ``HANDSHAKE_S``."""
    if _server[0] is TlsMode.DISABLED:
        return conn
    _reload_if_changed()
    mode, ctx = _server
    if ctx is None:
        return conn
    secure: Any = None
    try:
        if mode is TlsMode.PERMISSIVE:
            conn.settimeout(FIRST_BYTE_S)
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                conn.close()
                return None
            if first[0] != TLS_RECORD_HANDSHAKE:
                conn.settimeout(None)
                return conn
        conn.settimeout(HANDSHAKE_S)
        secure = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        secure.do_handshake()
        secure.settimeout(None)
        return secure
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; timeouts too
        logger.info("tls: connection from {} refused: {}", address, exc)
        (conn if secure is None else secure).close()  # the TLS socket took over the descriptor
        return None


def wrap_client(sock: socket.socket, ctx: gevent.ssl.SSLContext, timeout: float) -> Any:
    """``sock`` (connected) wrapped in TLS, its handshake done within ``timeout``."""
    secure = ctx.wrap_socket(sock, do_handshake_on_connect=False)
    secure.settimeout(timeout)
    try:
        secure.do_handshake()
    except BaseException:
        secure.close()
        raise
    secure.settimeout(None)
    return secure
