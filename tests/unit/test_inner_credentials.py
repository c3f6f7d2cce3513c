"""``innerClientAuthenticationCredentials``: parsed and checked at load, masked in config
answers, required by the name server's write check, and a super user in a broker's ACL."""

from __future__ import annotations

import pathlib

import pytest

from actors.namesrv.write_auth import SIGNED, WriteAuth, write_auth_for
from config import BrokerConfig, ConfigError, NamesrvConfig, dump_properties
from runtime.acl import plain
from runtime.acl.signature import SessionCredentials, sign
from runtime.ha.control import CONTROLLER_HEARTBEAT
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand

INNER = SessionCredentials("cluster-inner", "inner-secret")
TEXT = '{"accessKey": "cluster-inner", "secretKey": "inner-secret"}'


@pytest.mark.parametrize("cls", [NamesrvConfig, BrokerConfig])
def test_the_key_parses_to_the_account(cls: type) -> None:
    cfg = cls(inner_client_authentication_credentials=TEXT)
    assert cfg.inner_credentials() == INNER
    assert cls().inner_credentials() is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cluster-inner:inner-secret", "must be JSON like"),
        ('["a", "b"]', "must be JSON like"),
        ('{"accessKey": "cluster-inner"}', "needs a non-empty accessKey and secretKey"),
        ('{"accessKey": "", "secretKey": "x"}', "needs a non-empty accessKey and secretKey"),
        ('{"accessKey": 1, "secretKey": "x"}', "must be JSON like"),
    ],
)
def test_a_wrong_value_names_the_key_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"innerClientAuthenticationCredentials: {problem}"):
        BrokerConfig(inner_client_authentication_credentials=text)


def test_config_answers_mask_the_secret_and_files_keep_it() -> None:
    cfg = NamesrvConfig(inner_client_authentication_credentials=TEXT)
    masked = dump_properties(cfg, mask_secrets=True)
    assert "innerClientAuthenticationCredentials=******" in masked
    assert "inner-secret" not in masked
    assert "inner-secret" in dump_properties(cfg)  # a file written for reading back
    assert "innerClientAuthenticationCredentials=\n" in dump_properties(
        NamesrvConfig(), mask_secrets=True
    )  # unset stays empty: nothing to hide


def test_the_name_server_checks_writes_only_when_the_key_is_set() -> None:
    assert write_auth_for(NamesrvConfig()) is None
    auth = write_auth_for(NamesrvConfig(inner_client_authentication_credentials=TEXT))
    assert auth is not None and auth.credentials == INNER


@pytest.mark.parametrize("code", sorted(SIGNED))
def test_every_write_must_be_signed_with_the_inner_account(code: int) -> None:
    auth = WriteAuth(INNER)
    request = RemotingCommand.request(code, {"brokerName": "broker-a"}, b"body")
    assert "only signed" in (auth.check(request) or "")
    other = sign(request, SessionCredentials("someone-else", "inner-secret"))
    assert "is not the name server's inner account" in (auth.check(other) or "")
    guessed = sign(request, SessionCredentials(INNER.access_key, "guessed"))
    assert "signature does not match" in (auth.check(guessed) or "")
    assert auth.check(sign(request, INNER)) is None


def test_a_signed_request_changed_on_the_way_is_refused() -> None:
    signed = sign(RemotingCommand.request(CONTROLLER_HEARTBEAT, {}, b'{"node":1}'), INNER)
    tampered = RemotingCommand.request(
        CONTROLLER_HEARTBEAT, signed.ext_fields, b'{"node":2}', opaque=signed.opaque
    )
    assert WriteAuth(INNER).check(tampered) is not None


@pytest.mark.parametrize(
    "code",
    [
        RequestCode.GET_ROUTEINFO_BY_TOPIC,
        RequestCode.GET_BROKER_CLUSTER_INFO,
        RequestCode.GET_KV_CONFIG,
        RequestCode.CONTROLLER_GET_SYNC_STATE_DATA,
        RequestCode.GET_NAMESRV_CONFIG,
    ],
)
def test_reads_stay_open(code: int) -> None:
    assert WriteAuth(INNER).check(RemotingCommand.request(code, {})) is None


def test_a_broker_acl_takes_the_inner_account_as_a_super_user(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "plain_acl.yml"
    path.write_text("accounts:\n  - accessKey: app-account\n    secretKey: app-secret\n")
    request = RemotingCommand.request(RequestCode.GET_ALL_TOPIC_CONFIG, {})  # admin-only
    with_inner = plain.PlainAccessValidator(path, INNER)
    assert with_inner.check(sign(request, INNER), "10.0.0.9:5000") is None
    # a wrong secret under the inner account's name is judged by the file (no such account)
    guessed = sign(request, SessionCredentials(INNER.access_key, "guessed"))
    assert "No acl config for cluster-inner" in (with_inner.check(guessed, "10.0.0.9:5000") or "")
    # without the key, the account is nobody
    without = plain.PlainAccessValidator(path)
    assert without.check(sign(request, INNER), "10.0.0.9:5000") is not None


@pytest.mark.parametrize("cls", [NamesrvConfig, BrokerConfig])
def test_a_config_repr_masks_the_secret(cls: type) -> None:
    # (a config in a log line or a traceback)
    text = repr(cls(inner_client_authentication_credentials=TEXT))
    assert "inner_client_authentication_credentials=******" in text
    assert "inner-secret" not in text
    assert "inner_client_authentication_credentials=''" in repr(cls())
