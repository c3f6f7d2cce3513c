"""TLS on the remoting connections: a whole cluster in one process started with RocketMQ's
``tls.properties`` (``--tls-config``), our client with ``tls=...``, and a peer that does not
speak TLS."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest

from actors.client import ClientError, ConsumeFrom, Message, Producer, PullConsumer, TlsOptions
from actors.client.routes import MASTER_ID
from runtime.hostport import parse_address
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import encode
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.tls_support import needs_openssl, self_signed

pytestmark = [pytest.mark.timeout(90), needs_openssl]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(directory, "actormq-test")
    stranger, _ = self_signed(directory, "somebody-else")
    client_cert, client_key = self_signed(directory, "a-client")
    return {
        "cert": cert,
        "key": key,
        "stranger": stranger,
        "client_cert": client_cert,
        "client_key": client_key,
    }


def cluster(
    tmp: pathlib.Path, certs: dict[str, pathlib.Path], mode: str, extra: str = ""
) -> RuntimeProcess:
    config = tmp / "tls.properties"
    config.write_text(
        f"tls.server.mode={mode}\n"
        f"tls.server.certPath={certs['cert']}\n"
        f"tls.server.keyPath={certs['key']}\n"
        "tls.enable=true\n"  # the broker's registrations with the name server
        "tls.test.mode.enable=false\n" + extra
    )
    args = ["--ephemeral-ports", "--data-dir", str(tmp / "data"), "--tls-config", str(config)]
    return RuntimeProcess(args)


@pytest.fixture
def enforcing(tmp_path: pathlib.Path, certs: dict[str, pathlib.Path]) -> Iterator[str]:
    with cluster(tmp_path, certs, "enforcing") as node:
        yield node.wait_ready()["namesrv"]


def round_trip(namesrv: str, tls: TlsOptions | bool | None, topic: str) -> list[bytes]:
    """Three messages sent, then read back by a new group: their bodies."""
    with Producer(f"p-{topic}", namesrv=namesrv, tls=tls) as producer:
        for i in range(3):
            producer.send(Message(topic, b"secret %d" % i, keys=[f"k{i}"]))
    consumer = PullConsumer(f"c-{topic}", namesrv=namesrv, tls=tls, consume_from=ConsumeFrom.FIRST)
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        got: list[bytes] = []
        for _ in range(20):
            got += [m.body for m in consumer.poll(1.0)]
            if len(got) >= 3:
                break
        return sorted(got)
    finally:
        consumer.shutdown()


def assert_refused(namesrv: str, tls: TlsOptions | bool, topic: str) -> None:
    """A client with these TLS options cannot send (its route cannot be fetched)."""
    with (
        Producer(f"p-{topic}", namesrv=namesrv, tls=tls, send_timeout=2) as producer,
        pytest.raises(ClientError),
    ):
        producer.send(Message(topic, b"x"))


def plain_request_answered(address: str) -> bool:
    """Whether a plain (non-TLS) GET_ROUTEINFO_BY_TOPIC to ``address`` gets any answer."""
    host, port = parse_address(address)
    request = RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "TlsOrders"})
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(encode(request))
        try:
            head = sock.recv(4)
        except (ConnectionResetError, TimeoutError):
            return False
        return len(head) == 4 and struct.unpack(">i", head)[0] > 0


def test_an_enforcing_cluster_serves_tls_clients_only(enforcing: str) -> None:
    # Given a cluster whose listeners enforce TLS (its broker registered over TLS)
    # When a TLS producer sends and a TLS consumer reads, Then every message comes back
    assert round_trip(enforcing, True, "TlsOrders") == [b"secret 0", b"secret 1", b"secret 2"]
    # And a peer speaking plain remoting is closed unanswered
    assert not plain_request_answered(enforcing)


def test_a_client_may_verify_the_server_certificate(
    enforcing: str, certs: dict[str, pathlib.Path]
) -> None:
    # Given the server's certificate as the trusted one, Then the round trip works
    trusted = TlsOptions(verify=True, trust_cert_path=str(certs["cert"]))
    assert len(round_trip(enforcing, trusted, "TlsVerified")) == 3
    # And trusting another certificate, the client fails (its route cannot be fetched)
    stranger = TlsOptions(verify=True, trust_cert_path=str(certs["stranger"]))
    assert_refused(enforcing, stranger, "TlsStranger")


def test_a_permissive_cluster_serves_plain_and_tls_clients(
    tmp_path: pathlib.Path, certs: dict[str, pathlib.Path]
) -> None:
    # Given a cluster in permissive mode
    with cluster(tmp_path, certs, "permissive") as node:
        namesrv = node.wait_ready()["namesrv"]
        # When a TLS client and a plain one each send and read back
        # Then both get their messages
        assert len(round_trip(namesrv, True, "TlsMixed")) == 3
        assert len(round_trip(namesrv, None, "PlainMixed")) == 3
        assert plain_request_answered(namesrv)


def test_a_bad_certificate_file_is_a_client_error(tmp_path: pathlib.Path) -> None:
    # Given a trust file that is no certificate
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    # When a client is made with it, Then it is refused at once, naming the options
    with pytest.raises(ClientError, match="TLS options"):
        Producer(
            "p", namesrv="127.0.0.1:1", tls=TlsOptions(verify=True, trust_cert_path=str(bogus))
        )


def test_the_route_names_the_master(enforcing: str) -> None:
    # Given the enforcing cluster, When a TLS admin reads a route, Then its master is there
    from actors.client import Admin

    with Producer("p-route", namesrv=enforcing, tls=True) as producer:
        producer.send(Message("TlsRoute", b"x"))
    admin = Admin(enforcing, tls=True).start()
    try:
        route = admin.topic_route("TlsRoute")
    finally:
        admin.shutdown()
    assert any(MASTER_ID in b.broker_addrs for b in route.broker_datas)


def test_the_admin_command_connects_over_tls(enforcing: str) -> None:
    # Given the enforcing cluster, When mqadmin's clusterList runs with --tls, Then it lists
    # the broker; without it the name server cannot be read (exit 1)
    command = [sys.executable, "-m", "runtime", "admin", "clusterList", "-n", enforcing]
    over_tls = subprocess.run([*command, "--tls"], capture_output=True, text=True, timeout=60)
    assert over_tls.returncode == 0, over_tls.stderr
    assert "broker-a" in over_tls.stdout
    plain = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 1 and "error" in plain.stderr
    assert "add --tls" in plain.stderr  # the hint for a plain connection closed unanswered


def test_a_server_requiring_client_certificates_serves_only_clients_with_one(
    tmp_path: pathlib.Path, certs: dict[str, pathlib.Path]
) -> None:
    # Given a cluster that requires a client certificate it trusts (the broker presents the
    # same one to its name server)
    client = f"{certs['client_cert']}"
    extra = (
        f"tls.server.need.client.auth=require\ntls.server.trustCertPath={client}\n"
        f"tls.client.certPath={client}\ntls.client.keyPath={certs['client_key']}\n"
    )
    with cluster(tmp_path, certs, "enforcing", extra) as node:
        namesrv = node.wait_ready()["namesrv"]
        # When a client presents that certificate, Then its messages round trip
        mutual = TlsOptions(cert_path=client, key_path=str(certs["client_key"]))
        assert len(round_trip(namesrv, mutual, "TlsMutual")) == 3
        # And a TLS client without one is refused (its route cannot be fetched)
        assert_refused(namesrv, True, "TlsAnonymous")


def test_a_tls_broker_stopping_mid_stream_finishes_its_connections_cleanly(
    tmp_path: pathlib.Path, certs: dict[str, pathlib.Path]
) -> None:
    # Given TLS async sends streaming to an enforcing cluster
    node = cluster(tmp_path, certs, "enforcing")
    with node:
        namesrv = node.wait_ready()["namesrv"]
        producer = Producer("tls-stopping", namesrv=namesrv, tls=True, retries=0).start()
        try:
            producer.send(Message("TlsStopping", b"warm"))
            futures = [producer.send_async(Message("TlsStopping", b"x" * 512)) for _ in range(500)]
            # When the process gets SIGTERM mid-stream (its sessions half-close after their last
            # answers)
            node.proc.send_signal(signal.SIGTERM)
            futures += [producer.send_async(Message("TlsStopping", b"y")) for _ in range(500)]
            code = node.proc.wait(30)
            # Then every send completed, and the process stopped cleanly: no read loop died on
            # its TLS socket (a TLS socket's own shutdown dropped its TLS layer)
            outcomes = [f.exception(timeout=30) for f in futures]
        finally:
            producer.shutdown(timeout=2)
    assert code == 0
    assert all(e is None or isinstance(e, ClientError) for e in outcomes)
    assert not [line for line in node.stderr if "Traceback" in line], node.stderr[-20:]


def presents(address: str, trusted: pathlib.Path) -> bool:
    """Whether the TLS server at ``address`` presents a certificate ``trusted`` vouches for."""
    context = ssl.create_default_context(cafile=str(trusted))
    context.check_hostname = False
    host, port = parse_address(address)
    try:
        with (
            socket.create_connection((host, port), timeout=5) as sock,
            context.wrap_socket(sock),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


def test_renewed_certificate_files_are_used_without_a_restart(
    tmp_path: pathlib.Path, certs: dict[str, pathlib.Path]
) -> None:
    # Given an enforcing cluster reading its certificate from files we may replace
    live = {"cert": tmp_path / "live.crt", "key": tmp_path / "live.key"}
    shutil.copy(certs["cert"], live["cert"])
    shutil.copy(certs["key"], live["key"])
    renewed_cert, renewed_key = self_signed(tmp_path, "renewed")
    with cluster(tmp_path, live, "enforcing") as node:
        namesrv = node.wait_ready()["namesrv"]
        assert presents(namesrv, certs["cert"]) and not presents(namesrv, renewed_cert)
        # When the files are renewed (new ones renamed over the old, as a renewal tool does)
        os.replace(shutil.copy(renewed_key, tmp_path / "k.tmp"), live["key"])
        os.replace(shutil.copy(renewed_cert, tmp_path / "c.tmp"), live["cert"])
        # Then new connections get the new certificate, and clients trusting it are served
        wait_until(lambda: presents(namesrv, renewed_cert), what="the renewed certificate")
        renewed = TlsOptions(verify=True, trust_cert_path=str(renewed_cert))
        assert len(round_trip(namesrv, renewed, "TlsRenewed")) == 3
