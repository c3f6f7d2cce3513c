"""How the proxy's gRPC port takes TLS: ``PortTls`` from the ``tls.server.*`` keys.

- ``permissive`` (the default, as RocketMQ's proxy: also when ``--tls-config`` is not given or
  its file has no ``tls.server.mode``): plain and TLS clients on the one port
  (``actors.proxy.front``);
- ``enforcing``: TLS only (grpcio owns the port); ``disabled``: plain only (grpcio owns it).

TLS uses ``tls.server.certPath`` / ``keyPath`` (``tls.server.need.client.auth=require`` with
``tls.server.trustCertPath`` asks clients for a certificate). In the default (no file, or no
``tls.server.mode`` in it: a certificate it names is then not used, with a warning) a
certificate is made at start (``actors.proxy.self_signed``; RocketMQ's test mode): without the
``cryptography`` package the default port is plain only, with a warning.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import grpc
from loguru import logger

from actors.proxy import self_signed
from runtime.errors import ConfigError
from runtime.tls import ClientAuth, TlsMode, TlsSettings


class PortTls(NamedTuple):
    mode: TlsMode
    credentials: grpc.ServerCredentials | None = None
    made_certificate: bytes | None = None
    """The certificate made at start (PEM), when none was given."""
    kept_in: pathlib.Path | None = None
    """Where that certificate is kept (``self_signed.CERT_FILE``), if anywhere."""


PLAIN = PortTls(TlsMode.DISABLED)


def port_tls(
    settings: TlsSettings | None,
    file: str | None,
    hosts: list[str],
    mode_given: bool = True,
    keep_in: pathlib.Path | None = None,
) -> PortTls:
    """The port's TLS: from ``settings`` (read from ``file``), or RocketMQ's default when
    there is no file or it says no ``tls.server.mode`` (``mode_given``), its certificate kept
    in ``keep_in`` when given (else made anew at each start). ConfigError naming the key for
    what gRPC cannot use, or the directory that cannot be written."""
    if settings is None or not mode_given:
        if settings is not None and settings.server_cert_path:
            logger.warning(
                "proxy: {} names tls.server.certPath but no tls.server.mode: the gRPC port "
                "uses a certificate made at start (set tls.server.mode=permissive to use it)",
                file,
            )
        if not self_signed.available():
            logger.warning(
                "proxy: gRPC port plain only: RocketMQ 5 clients using TLS (Java's and Go's "
                "default) cannot connect; pip install cryptography to serve them"
            )
            return PLAIN
        if keep_in is None:
            key, cert = self_signed.make(hosts)
        else:
            try:
                key, cert = self_signed.kept(keep_in, hosts)
            except OSError as exc:
                problem = f"cannot keep the proxy's certificate: {exc}"
                raise ConfigError(str(keep_in), None, problem) from None
        credentials = grpc.ssl_server_credentials([(key, cert)])
        return PortTls(TlsMode.PERMISSIVE, credentials, cert, keep_in)
    if settings.server_mode is TlsMode.DISABLED:
        return PLAIN
    assert file is not None
    if settings.server_key_password:
        raise ConfigError(file, "tls.server.keyPassword", "the gRPC proxy needs an unencrypted key")

    def read(key: str, path: str) -> bytes:
        try:
            return pathlib.Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(file, key, f"cannot read {path!r}: {exc.strerror}") from None

    pair = (
        read("tls.server.keyPath", settings.server_key_path),
        read("tls.server.certPath", settings.server_cert_path),
    )
    roots = None
    if settings.server_trust_cert_path:
        roots = read("tls.server.trustCertPath", settings.server_trust_cert_path)
    credentials = grpc.ssl_server_credentials(
        [pair],
        root_certificates=roots,
        require_client_auth=settings.server_need_client_auth is ClientAuth.REQUIRE,
    )
    return PortTls(settings.server_mode, credentials)
