"""The interop installer skips only when the registry cannot be reached; anything else fails.

Registries are simulated on loopback: a closed port (connection refused) and an HTTP server that
answers 404 to everything (reachable, but the package is not there: a real failure).
"""

from __future__ import annotations

import http.server
import os
import pathlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.interop import install

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def not_found_server() -> Iterator[str]:
    """An HTTP registry on loopback that has no package at all."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error":"Not found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def npm_env(registry: str, tmp_path: pathlib.Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        npm_config_registry=f"{registry}/",
        npm_config_cache=str(tmp_path / "npm-cache"),  # nothing cached: npm must ask
        npm_config_fetch_retry_mintimeout="100",
        npm_config_fetch_retry_maxtimeout="200",
    )
    return env


def pip_env(index: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no extra indexes or local wheel folders from pip.conf
        PIP_INDEX_URL=f"{index}/simple",
        PIP_NO_CACHE_DIR="1",
    )
    return env


def test_npm_registry_refusing_connections_is_unreachable(
    tmp_path: pathlib.Path, closed_port: int
) -> None:
    # Given an npm registry address where nothing listens
    env = npm_env(f"http://127.0.0.1:{closed_port}", tmp_path)
    # When ali-ons is installed, Then the installer reports the registry unreachable (a skip)
    with pytest.raises(install.RegistryUnreachable, match="npm ci"):
        install.install_ons(tmp_path / "ons", env=env)


def test_npm_registry_without_the_package_is_a_failure(
    tmp_path: pathlib.Path, not_found_server: str
) -> None:
    # Given a reachable npm registry that answers 404
    env = npm_env(not_found_server, tmp_path)
    # When ali-ons is installed, Then it is an install failure, not a skip
    with pytest.raises(install.InstallFailed) as failed:
        install.install_ons(tmp_path / "ons", env=env)
    assert not isinstance(failed.value, install.RegistryUnreachable)
    assert "E404" in failed.value.output


def test_pip_index_refusing_connections_is_unreachable(
    tmp_path: pathlib.Path, closed_port: int
) -> None:
    env = pip_env(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(install.RegistryUnreachable, match="pip install"):
        install.install_cpp(tmp_path / "cpp", env=env)


def test_pip_index_without_the_package_is_a_failure(
    tmp_path: pathlib.Path, not_found_server: str
) -> None:
    env = pip_env(not_found_server)
    with pytest.raises(install.InstallFailed) as failed:
        install.install_cpp(tmp_path / "cpp", env=env)
    assert not isinstance(failed.value, install.RegistryUnreachable)
    assert "No matching distribution" in failed.value.output


@pytest.mark.parametrize(
    ("output", "unreachable"),
    [
        ("npm error code ENOTFOUND\nnpm error syscall getaddrinfo", True),
        ("npm error code EAI_AGAIN", True),
        ("npm error code ETIMEDOUT", True),
        ("npm error network request to https://registry/ali-ons failed", True),
        ("npm error code E404\nnpm error 404 Not Found - GET https://registry/ali-ons", False),
        ("npm error code EINTEGRITY", False),
        ("npm error code ENOSPC", False),
    ],
)
def test_npm_output_classification(output: str, unreachable: bool) -> None:
    assert install.npm_output_means_unreachable(output) is unreachable


@pytest.mark.parametrize(
    ("output", "unreachable"),
    [
        (
            "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
            True,
        ),
        ("ReadTimeoutError(\"HTTPSConnectionPool(host='x', port=443): Read timed out.\")", True),
        (
            "ERROR: Could not find a version that satisfies the requirement rocketmq==0.4.4 "
            "(from versions: none)\nERROR: No matching distribution found for rocketmq==0.4.4",
            False,
        ),
        (
            "ERROR: rocketmq-0.4.4-py2.py3-none-manylinux1_x86_64.whl is not a supported wheel",
            False,
        ),
    ],
)
def test_pip_output_classification(output: str, unreachable: bool) -> None:
    assert install.pip_output_means_unreachable(output) is unreachable


def test_second_install_is_a_no_op(ons_client: install.Client, cpp_client: install.Client) -> None:
    # Given both clients installed (session fixtures), When installed again, Then it is quick
    # and gives the same folders (the stamp matched; nothing was fetched).
    started = time.monotonic()
    assert install.install_ons().root == ons_client.root
    assert install.install_cpp().root == cpp_client.root
    assert time.monotonic() - started < 10
