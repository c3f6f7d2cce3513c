"""The proxy's gRPC port and TLS: plain and TLS clients on one port by default (a certificate
made at start, as RocketMQ's proxy), ``permissive`` with a given certificate, ``enforcing`` TLS
only, ``disabled`` plain only (``--tls-config``)."""

from __future__ import annotations

import pathlib
import ssl
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from actors.client import Admin
from actors.proxy.proto import Code, M
from actors.proxy.server import SERVICE
from tests.client_support import wait_until
from tests.harness import REPO, RuntimeProcess
from tests.integration.test_proxy import _routed
from tests.tls_support import needs_openssl, self_signed

pytestmark = [pytest.mark.timeout(90), needs_openssl]

TOPIC = "ProxyTlsOrders"


def _route(channel: grpc.Channel) -> object:
    call = channel.unary_unary(
        f"/{SERVICE}/QueryRoute",
        request_serializer=M.QueryRouteRequest.SerializeToString,
        response_deserializer=M.QueryRouteResponse.FromString,
    )
    request = M.QueryRouteRequest()
    request.topic.name = TOPIC
    return call(request, timeout=10)


@pytest.fixture
def tls_proxy(tmp_path: pathlib.Path) -> Iterator[tuple[str, bytes]]:
    """(the proxy's address, its certificate) of a TLS-only proxy over a plain cluster."""
    cert, key = self_signed(tmp_path, "actormq-test")
    config = tmp_path / "tls.properties"
    config.write_text(
        f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
    )
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=2)
            wait_until(lambda: _routed(admin, TOPIC), what="routed")
        args = [
            "proxy",
            "--namesrv-addr",
            namesrv,
            "--ephemeral-ports",
            "--tls-config",
            str(config),
        ]
        with RuntimeProcess(args) as proxy:
            address = proxy.wait_ready(timeout=30)["proxy"]
            # the log line comes before the ready line, on stderr: read by another thread
            wait_until(lambda: any("over TLS" in line for line in proxy.stderr), what="TLS log")
            yield address, cert.read_bytes()


def test_an_enforcing_proxy_serves_tls_clients_only(tls_proxy: tuple[str, bytes]) -> None:
    address, cert = tls_proxy
    # Given a client trusting the proxy's certificate
    credentials = grpc.ssl_channel_credentials(root_certificates=cert)
    options = [("grpc.ssl_target_name_override", "actormq-test")]
    # When it asks for a route over TLS, Then it gets it
    with grpc.secure_channel(address, credentials, options=options) as channel:
        assert _route(channel).status.code == Code.OK
    # And a plain client is not served
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
        _route(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_encrypted_key_is_a_config_error_naming_the_key(tmp_path: pathlib.Path) -> None:
    # Given a tls.properties with a key password (gRPC takes no encrypted key)
    cert, key = self_signed(tmp_path, "actormq-test")
    config = tmp_path / "tls.properties"
    config.write_text(
        f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
        "tls.server.keyPassword=secret\n"
    )
    # When the proxy starts with it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "proxy",
            "--namesrv-addr",
            "127.0.0.1:9",
            "--ephemeral-ports",
            "--tls-config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it exits 2 naming the file and the key
    assert done.returncode == 2
    assert "tls.server.keyPassword" in done.stderr and str(config) in done.stderr


def test_a_proxy_reaches_an_enforcing_cluster_over_tls(tmp_path: pathlib.Path) -> None:
    # Given a cluster serving TLS only, and a plain-gRPC proxy with tls.enable=true
    cert, key = self_signed(tmp_path, "actormq-test")
    cluster_config = tmp_path / "cluster-tls.properties"
    cluster_config.write_text(
        f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
        "tls.enable=true\n"
    )
    proxy_config = tmp_path / "proxy-tls.properties"
    proxy_config.write_text("tls.server.mode=disabled\ntls.enable=true\n")
    cluster_args = ["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]
    with RuntimeProcess([*cluster_args, "--tls-config", str(cluster_config)]) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv, tls=True) as admin:
            admin.create_topic(TOPIC, queues=2)
            wait_until(lambda: _routed(admin, TOPIC), what="routed")
        args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports"]
        with RuntimeProcess([*args, "--tls-config", str(proxy_config)]) as proxy:
            address = proxy.wait_ready(timeout=30)["proxy"]
            # When a gRPC client asks the proxy for a route, Then the proxy got it over TLS
            with grpc.insecure_channel(address) as channel:
                assert _route(channel).status.code == Code.OK


def _proxy(namesrv: str, *extra: str) -> RuntimeProcess:
    return RuntimeProcess(["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports", *extra])


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[str]:
    with RuntimeProcess(["--ephemeral-ports", "--data-dir", str(tmp_path / "data")]) as node:
        namesrv = node.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv) as admin:
            admin.create_topic(TOPIC, queues=2)
            wait_until(lambda: _routed(admin, TOPIC), what="routed")
        yield namesrv


def test_a_proxy_by_default_serves_plain_and_tls_clients_on_one_port(cluster: str) -> None:
    # Given a proxy started with no TLS configuration
    with _proxy(cluster) as proxy:
        address = proxy.wait_ready(timeout=30)["proxy"]
        wait_until(
            lambda: any("plain and TLS" in line for line in proxy.stderr), what="the log line"
        )
        host, port = address.rsplit(":", 1)
        # When a plain client asks for a route, Then it gets it
        with grpc.insecure_channel(address) as channel:
            assert _route(channel).status.code == Code.OK
        # And a TLS client trusting the certificate the proxy made (read off the port: names
        # 127.0.0.1) gets it too, as RocketMQ 5's Java and Go clients would by default
        cert = ssl.get_server_certificate((host, int(port))).encode()
        credentials = grpc.ssl_channel_credentials(root_certificates=cert)
        with grpc.secure_channel(address, credentials) as channel:
            assert _route(channel).status.code == Code.OK


def test_permissive_with_a_given_certificate_and_disabled_plain_only(
    cluster: str, tmp_path: pathlib.Path
) -> None:
    cert, key = self_signed(tmp_path, "actormq-test")
    permissive = tmp_path / "permissive.properties"
    permissive.write_text(
        f"tls.server.mode=permissive\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
    )
    disabled = tmp_path / "disabled.properties"
    disabled.write_text("tls.server.mode=disabled\n")
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    options = [("grpc.ssl_target_name_override", "actormq-test")]
    # Given a permissive proxy with its own certificate: both kinds of client are served
    with _proxy(cluster, "--tls-config", str(permissive)) as proxy:
        address = proxy.wait_ready(timeout=30)["proxy"]
        with grpc.secure_channel(address, credentials, options=options) as channel:
            assert _route(channel).status.code == Code.OK
        with grpc.insecure_channel(address) as channel:
            assert _route(channel).status.code == Code.OK
    # Given a proxy with tls.server.mode=disabled: plain only, a TLS client is not served
    with _proxy(cluster, "--tls-config", str(disabled)) as proxy:
        address = proxy.wait_ready(timeout=30)["proxy"]
        with grpc.insecure_channel(address) as channel:
            assert _route(channel).status.code == Code.OK
        secure = grpc.secure_channel(address, credentials, options=options)
        with secure as channel, pytest.raises(grpc.RpcError) as refused:
            _route(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_cluster_keeps_the_certificate_it_made_across_restarts(tmp_path: pathlib.Path) -> None:
    # Given `cluster --proxy` with a data directory, serving TLS with a certificate it made
    args = ["cluster", "--ephemeral-ports", "--data-dir", str(tmp_path / "data"), "--proxy"]
    kept = tmp_path / "data" / "proxy" / "proxy-tls.crt"
    seen = []
    for _ in range(2):
        # When it starts (again)
        with RuntimeProcess(args) as node:
            host, port = node.wait_ready(timeout=30)["proxy"].rsplit(":", 1)
            seen.append(ssl.get_server_certificate((host, int(port))))
            wait_until(
                lambda: any(str(kept) in line for line in node.stderr), what="the log names it"
            )
            assert node.terminate() == 0, node.stderr_text()
    # Then it presents the same certificate each time, the one kept in the data directory
    assert seen[0] == seen[1]
    assert ssl.PEM_cert_to_DER_cert(seen[0]) == ssl.PEM_cert_to_DER_cert(kept.read_text())


def test_a_standalone_proxy_given_a_data_dir_keeps_its_certificate(
    cluster: str, tmp_path: pathlib.Path
) -> None:
    # Given a standalone proxy with --data-dir, started twice
    seen = []
    for _ in range(2):
        with _proxy(cluster, "--data-dir", str(tmp_path / "proxy-data")) as proxy:
            host, port = proxy.wait_ready(timeout=30)["proxy"].rsplit(":", 1)
            seen.append(ssl.get_server_certificate((host, int(port))))
            assert proxy.terminate() == 0, proxy.stderr_text()
    # Then it presents the certificate it keeps there both times
    kept = (tmp_path / "proxy-data" / "proxy" / "proxy-tls.crt").read_text()
    assert seen[0] == seen[1]
    assert ssl.PEM_cert_to_DER_cert(seen[0]) == ssl.PEM_cert_to_DER_cert(kept)
