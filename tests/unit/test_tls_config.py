"""runtime.tls.load: RocketMQ's tls.properties, and the mistakes it names."""

from __future__ import annotations

import os
import pathlib

import pytest

from runtime import tls
from runtime.errors import ConfigError
from tests.tls_support import needs_openssl, self_signed

pytestmark = pytest.mark.timeout(30)


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "tls.properties"
    path.write_text(text)
    return path


@needs_openssl
def test_a_full_file_loads_with_rocketmq_s_keys(tmp_path: pathlib.Path) -> None:
    cert, key = self_signed(tmp_path, "t")
    path = write(
        tmp_path,
        f"tls.server.mode = ENFORCING\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
        "tls.enable=true\ntls.test.mode.enable=false\ntls.client.authServer=false\n",
    )
    settings = tls.load(path)
    assert settings.server_mode is tls.TlsMode.ENFORCING
    assert settings.server_cert_path == str(cert) and settings.enable is True
    assert settings.server_need_client_auth is tls.ClientAuth.NONE
    assert settings.describe() == (
        "listeners enforcing (client certificates: none), outbound TLS (not checked), "
        "HA replication plain"
    )


def test_an_empty_file_leaves_tls_off(tmp_path: pathlib.Path) -> None:
    settings = tls.load(write(tmp_path, "# nothing\n"))
    assert settings.server_mode is tls.TlsMode.DISABLED and settings.enable is False
    assert settings.describe() == "listeners disabled, outbound plain, HA replication plain"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("tls.server.mode=sometimes\n", "tls.server.mode", "disabled / permissive / enforcing"),
        ("tls.enable=yes\n", "tls.enable", "true or false"),
        ("tls.server.mde=enforcing\n", "tls.server.mde", "unknown key"),
        ("tls.server.mode=permissive\n", "tls.server.certPath", "not set"),
        (
            "tls.server.mode=permissive\ntls.server.certPath=/nope.crt\ntls.server.keyPath=/k\n",
            "tls.server.certPath",
            "no such file: /nope.crt",
        ),
        (
            "tls.enable=true\ntls.client.authServer=true\n",
            "tls.client.trustCertPath",
            "not set",
        ),
    ],
)
def test_a_mistake_names_the_file_the_key_and_the_problem(
    tmp_path: pathlib.Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        tls.load(path)
    assert str(path) in str(info.value.file) and info.value.key == key
    assert problem in info.value.problem


def test_a_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        tls.load(tmp_path / "absent.properties")


def test_a_file_that_is_no_certificate_is_named(tmp_path: pathlib.Path) -> None:
    cert, key = tmp_path / "s.crt", tmp_path / "s.key"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    text = f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
    with pytest.raises(ConfigError) as info:
        tls.load(write(tmp_path, text))
    assert info.value.key == "tls.server.certPath" and "cannot load it" in info.value.problem


@needs_openssl
def test_changed_files_that_do_not_load_keep_the_old_context(tmp_path: pathlib.Path) -> None:
    cert, key = self_signed(tmp_path, "t")
    text = f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
    tls.configure(tls.load(write(tmp_path, text)))
    try:
        before = tls._server
        # Given a certificate file replaced by one that does not load (its key not yet renewed)
        cert.write_text("half-written\n")
        os.utime(cert, (1, 1))  # surely another modification time
        tls._checked_at = 0.0
        # When a connection looks, Then the old context stays
        tls._reload_if_changed()
        assert tls._server is before
        # And once the files load again, the next look replaces it
        self_signed(tmp_path, "t")
        tls._checked_at = 0.0
        tls._reload_if_changed()
        assert tls._server is not before and tls._server[1] is not None
    finally:
        tls.configure(tls.TlsSettings())
