"""A self-signed certificate made at start, for a TLS gRPC port given no certificate.

RocketMQ's proxy does the same (``tls.test.mode.enable``, on by default: netty's
SelfSignedCertificate), so that RocketMQ 5's Java and Go clients, which use TLS unless told
not to and accept any certificate, connect to a proxy nobody configured. A client that checks
certificates (Python's and Node.js' with TLS on) must be given this one to trust:
``ssl.get_server_certificate((host, port))`` or ``openssl s_client`` reads it off the port.
``kept(directory, hosts)``: the one kept in ``directory`` (``proxy-tls.crt`` and its key, made
and written there the first time, made anew when it has expired), so a client trusting it
keeps working across restarts (``cluster --proxy`` keeps it in its data directory).

Made with ``cryptography`` (the ``proxy`` extra): an ECDSA P-256 key, a year's validity, names
``localhost``, this host's name, 127.0.0.1, ::1 and the hosts given (IP addresses or names).
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import socket
from collections.abc import Iterable

from runtime.store.configfile import write_atomic

CERT_FILE = "proxy-tls.crt"
KEY_FILE = "proxy-tls.key"


def available() -> bool:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


def make(hosts: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM). ImportError without ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "actormq-proxy")])
    dns = {"localhost", socket.gethostname()}
    ips = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    for host in hosts:
        host = host.strip("[]")
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            ips.add(ipaddress.ip_address(host))
        except ValueError:
            dns.add(host)
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns)]
    alt_names += [x509.IPAddress(ip) for ip in sorted(ips, key=str)]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def kept(directory: pathlib.Path, hosts: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) kept in ``directory``: read when both files are
    there and the certificate is valid for a week more, else made and written (the key
    readable by its owner only). OSError when the directory cannot be written."""
    from cryptography import x509

    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    try:
        cert, key = cert_path.read_bytes(), key_path.read_bytes()
        ends = x509.load_pem_x509_certificate(cert).not_valid_after_utc
        if ends - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=7):
            return key, cert
    except (OSError, ValueError):
        pass  # none yet, or unreadable: made anew
    key, cert = make(hosts)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(str(key_path), key, 0o600)
    write_atomic(str(cert_path), cert)
    return key, cert
