"""Plain or TLS: how the chaos harness reaches its cluster.

By default everything is plain TCP. With ``CHAOS_TLS_CONFIG`` naming a RocketMQ
``tls.properties`` (``python -m tests.chaos.soak --tls`` writes one with :func:`setup` and
sets it), every node of the cluster enforces TLS with it (``--tls-config``; the brokers' own
registrations and slave requests go over TLS too) and every client of the harness connects
over TLS, checking the certificate the file names: producers and consumers (``client_tls``,
also in the consumer worker processes, which inherit the variable) and the harness's blocking
admin sockets (``connect``). HA replication stays plain, as the broker's.
"""

from __future__ import annotations

import os
import pathlib
import socket
import ssl

from actors.client import TlsOptions
from tests.tls_support import self_signed

ENV = "CHAOS_TLS_CONFIG"


def tls_config() -> pathlib.Path | None:
    """The ``tls.properties`` the run uses, or None for plain TCP."""
    value = os.environ.get(ENV, "")
    return pathlib.Path(value) if value else None


def node_args() -> list[str]:
    """The runtime's global arguments for this transport (before the command)."""
    path = tls_config()
    return ["--tls-config", str(path)] if path is not None else []


def client_tls() -> TlsOptions | None:
    """The ``tls=`` of every client the harness starts."""
    path = tls_config()
    return TlsOptions.from_properties(path) if path is not None else None


def connect(address: tuple[str, int], timeout: float) -> socket.socket:
    """A blocking connection to ``address``, wrapped in TLS when the run uses it."""
    sock = socket.create_connection(address, timeout=timeout)
    options = client_tls()
    if options is None:
        return sock
    context = ssl.create_default_context(cafile=options.trust_cert_path)
    context.check_hostname = False  # nodes are addressed by IP, as the client does
    try:
        return context.wrap_socket(sock)
    except BaseException:
        sock.close()
        raise


def setup(directory: pathlib.Path) -> pathlib.Path:
    """Make a self-signed certificate and a ``tls.properties`` enforcing TLS with it in
    ``directory``; its path, for ``CHAOS_TLS_CONFIG``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(directory, "chaos")
    path = directory / "tls.properties"
    path.write_text(
        "tls.server.mode=enforcing\n"
        f"tls.server.certPath={cert}\n"
        f"tls.server.keyPath={key}\n"
        "tls.enable=true\n"
        "tls.client.authServer=true\n"
        f"tls.client.trustCertPath={cert}\n"
    )
    return path
