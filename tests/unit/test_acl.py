"""RocketMQ's plain ACL: signatures, address patterns, permissions, the accounts file."""

from __future__ import annotations

import os
import pathlib

import pytest
from loguru import logger

from runtime.acl import edit, plain, refusals
from runtime.acl.addresses import compile_pattern
from runtime.acl.resources import Permission, grants, needed
from runtime.acl.signature import SessionCredentials, calculate, content, sign, verify
from runtime.errors import ConfigError
from runtime.remoting.bodies import ConsumerData, HeartbeatData, SubscriptionData, encode_body
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand

PRODUCER = SessionCredentials("producer-ak", "producer-sk")
ACL_FILE = b"""
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: producer-ak
    secretKey: producer-sk
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - Orders=PUB
      - Audit=SUB
    groupPerms:
      - billing=DENY
  - accessKey: operator-ak
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
"""


def request(code: int, body: bytes = b"", **ext: str) -> RemotingCommand:
    return RemotingCommand(code=code, ext_fields=ext, body=body)


def test_the_signature_is_hmac_sha1_base64_over_sorted_values_and_body() -> None:
    # A value computed with openssl: printf abc | openssl dgst -sha1 -hmac 12345678 | base64
    assert calculate(b"abc", "12345678") == "BOigG5+Fiv0354g5bQuwOUOPMp0="
    # Values in the order of their names, Signature and _UNIQUE_KEY_QUERY left out
    ext = {"b": "2", "a": "1", "Signature": "x", "_UNIQUE_KEY_QUERY": "true", "c": "3"}
    assert content(ext, b"body") == b"123body"


def test_a_signed_request_verifies_and_a_changed_one_does_not() -> None:
    signed = sign(request(10, b"payload", topic="Orders"), PRODUCER)
    assert signed.ext_fields["AccessKey"] == "producer-ak"
    assert verify(signed.ext_fields, signed.body, "producer-sk")
    assert not verify(signed.ext_fields, b"other", "producer-sk")
    assert not verify({**signed.ext_fields, "topic": "Other"}, signed.body, "producer-sk")
    assert not verify(signed.ext_fields, signed.body, "wrong-secret")
    assert "producer-sk" not in repr(PRODUCER)


@pytest.mark.parametrize(
    ("pattern", "inside", "outside"),
    [
        ("*", ["1.2.3.4"], []),
        ("*.*.*.*", ["1.2.3.4"], []),
        ("", [], ["1.2.3.4"]),
        ("10.0.0.1", ["10.0.0.1"], ["10.0.0.2"]),
        ("10.0.0.1,10.0.0.3", ["10.0.0.3"], ["10.0.0.2"]),
        ("192.168.1.{1,7}", ["192.168.1.7"], ["192.168.1.2"]),
        ("192.168.*", ["192.168.9.9"], ["192.169.0.1"]),
        ("192.168.1.10-20", ["192.168.1.15"], ["192.168.1.21", "192.168.2.15"]),
    ],
)
def test_white_address_patterns(pattern: str, inside: list[str], outside: list[str]) -> None:
    match = compile_pattern(pattern)
    assert all(match(h) for h in inside) and not any(match(h) for h in outside)


@pytest.mark.parametrize("bad", ["10.0.0.300", "10.0.0.x-y", "a.b.c.d", "1.2.3.{4,z}"])
def test_a_malformed_pattern_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad address pattern"):
        compile_pattern(bad)


def test_permissions_mirror_rocketmq() -> None:
    assert (
        Permission.parse("PUB|SUB")
        == Permission.parse("SUB|PUB")
        == Permission.PUB | Permission.SUB
    )
    assert (
        Permission.parse("nonsense") == Permission.DENY
        and Permission.parse(None) == Permission.DENY
    )
    assert grants(Permission.PUB, Permission.PUB) and not grants(Permission.SUB, Permission.PUB)
    assert grants(Permission.SUB, Permission.ANY) and not grants(Permission.DENY, Permission.ANY)


def test_what_requests_need() -> None:
    assert needed(request(RequestCode.SEND_MESSAGE_V2, a="pg", b="Orders")) == {
        "Orders": Permission.PUB
    }
    assert needed(request(RequestCode.SEND_MESSAGE_V2, a="pg", b="%RETRY%billing")) == {
        "%RETRY%billing": Permission.SUB
    }
    assert needed(request(RequestCode.PULL_MESSAGE, topic="Orders", consumerGroup="billing")) == {
        "Orders": Permission.SUB,
        "%RETRY%billing": Permission.SUB,
    }
    beat = HeartbeatData(
        client_id="c",
        consumer_data_set=[
            ConsumerData(
                group_name="billing",
                subscription_data_set=[SubscriptionData(topic="Orders", sub_string="*")],
            )
        ],
    )
    assert needed(request(RequestCode.HEART_BEAT, encode_body(beat))) == {
        "%RETRY%billing": Permission.SUB,
        "Orders": Permission.SUB,
    }
    assert needed(request(RequestCode.GET_MAX_OFFSET, topic="Orders")) == {}


@pytest.fixture
def acl() -> plain.PlainAcl:
    return plain.parse(ACL_FILE, "plain_acl.yml")


def test_the_check_follows_rocketmq_order(acl: plain.PlainAcl) -> None:
    send = request(RequestCode.SEND_MESSAGE_V2, b"x", a="pg", b="Orders")
    host = "127.0.0.1"
    assert acl.check(send, host) == "No accessKey is configured"
    assert acl.check(send, "10.10.103.7") is None  # a globally white host
    stranger = sign(send, SessionCredentials("stranger-ak", "whatever"))
    assert acl.check(stranger, host) == "No acl config for stranger-ak"
    forged = sign(send, SessionCredentials("producer-ak", "not-the-secret"))
    assert acl.check(forged, host) == "Check signature failed for accessKey=producer-ak"
    assert acl.check(sign(send, PRODUCER), host) is None
    # topic entries, then the default (DENY); groups: entries, then the default (SUB)
    to_audit = sign(request(RequestCode.SEND_MESSAGE_V2, a="pg", b="Audit"), PRODUCER)
    assert acl.check(to_audit, host) == "No permission for topic:Audit"
    elsewhere = sign(request(RequestCode.SEND_MESSAGE_V2, a="pg", b="Other"), PRODUCER)
    assert acl.check(elsewhere, host) == "No permission for topic:Other"
    pull = request(RequestCode.PULL_MESSAGE, topic="Audit", consumerGroup="reports")
    assert acl.check(sign(pull, PRODUCER), host) is None
    denied = request(RequestCode.PULL_MESSAGE, topic="Audit", consumerGroup="billing")
    assert acl.check(sign(denied, PRODUCER), host) == "No permission for group:billing"
    # admin codes need an admin account; an admin without entries may do anything
    create = request(RequestCode.UPDATE_AND_CREATE_TOPIC, topic="New")
    assert acl.check(sign(create, PRODUCER), host) == (
        "Need admin permission for request code=17, but accessKey=producer-ak is not"
    )
    operator = SessionCredentials("operator-ak", "12345678")
    assert acl.check(sign(create, operator), host) is None
    assert acl.check(sign(denied, operator), host) is None
    # an account's white hosts skip its signature check
    assert (
        acl.check(request(RequestCode.GET_MAX_OFFSET, AccessKey="operator-ak"), "192.168.1.5")
        is None
    )


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            b"accounts:\n  - accessKey: short\n    secretKey: long-enough\n",
            "accounts[0].accessKey",
            "longer than 6",
        ),
        (b"accounts:\n  - accessKey: long-enough\n", "accounts[0].secretKey", "longer than 6"),
        (
            b"accounts:\n  - {accessKey: long-enough, secretKey: long-enough, topicPerms: [T]}\n",
            "accounts[0].topicPerms[0]",
            "name=PERM",
        ),
        (b"globalWhiteRemoteAddresses: [10.0.0.999]\n", "globalWhiteRemoteAddresses[0]", "IPv4"),
        (b"accounts: [\n", None, "YAML"),
        (b"", None, "no accounts"),
    ],
)
def test_file_mistakes_name_the_file_and_key(text: bytes, key: str | None, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        plain.parse(text, "conf/plain_acl.yml")
    assert err.value.file == "conf/plain_acl.yml" and err.value.key == key
    assert problem in err.value.problem


def test_the_validator_reloads_a_changed_file_and_keeps_rules_a_bad_one_breaks(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain_acl.yml"
    path.write_bytes(ACL_FILE)
    validator = plain.PlainAccessValidator(path)
    send = sign(request(RequestCode.SEND_MESSAGE_V2, a="pg", b="Audit"), PRODUCER)
    assert validator.check(send, "127.0.0.1:5000") == "No permission for topic:Audit"
    monkeypatch.setattr(plain, "RELOAD_CHECK_S", 0.0)
    # When the file grants PUB on Audit, Then the next request sees it
    path.write_bytes(ACL_FILE.replace(b"Audit=SUB", b"Audit=PUB"))
    os.utime(path, ns=(1, 1))
    assert validator.check(send, "127.0.0.1:5000") is None
    # When the file is broken, Then the previous rules stay
    path.write_bytes(b"accounts: [\n")
    assert validator.check(send, "127.0.0.1:5000") is None


def test_account_edits_keep_a_loadable_file_and_bump_its_version(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "plain_acl.yml"
    path.write_bytes(ACL_FILE)
    path.chmod(0o600)
    # When an account is created, Then it loads with what was given, and the version counts
    edit.update_account(
        path,
        edit.AccountUpdate(
            access_key="billing-ak", secret_key="billing-sk", topic_perms=["Orders=SUB"]
        ),
    )
    rules = plain.load(path)
    assert rules.accounts["billing-ak"].perms == {"Orders": Permission.SUB}
    assert edit.version(path).counter == 1
    assert path.stat().st_mode & 0o777 == 0o600  # it holds secrets
    # When it is updated with only a default, Then its other fields stay
    edit.update_account(path, edit.AccountUpdate(access_key="billing-ak", default_topic_perm="PUB"))
    account = plain.load(path).accounts["billing-ak"]
    assert account.secret_key == "billing-sk" and account.default_topic == Permission.PUB
    assert edit.version(path).counter == 2
    # A new account without a secret, a short key or an unknown one to delete: refused,
    # the file unchanged
    before = path.read_bytes()
    for bad in (
        lambda: edit.update_account(path, edit.AccountUpdate(access_key="no-secret-ak")),
        lambda: edit.update_account(path, edit.AccountUpdate(access_key="short")),
        lambda: edit.delete_account(path, "nobody-ak"),
    ):
        with pytest.raises(edit.AclEditError):
            bad()
    assert path.read_bytes() == before
    # When the account is deleted and the white list replaced, Then the file says so
    edit.delete_account(path, "billing-ak")
    edit.set_global_white(path, ["10.0.0.*"])
    rules = plain.load(path)
    assert "billing-ak" not in rules.accounts and rules.global_white[0]("10.0.0.9")


def test_refusals_are_logged_at_most_once_an_interval_per_host_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    clock = [100.0]
    monkeypatch.setattr(refusals.time, "monotonic", lambda: clock[0])
    try:
        log = refusals.RefusalLog(interval=1.0)
        # Given a client flooding one refused request
        for _ in range(50):
            log.refused(10, "10.0.0.7:4000", "No accessKey is configured")
        # And another host, another reason
        log.refused(10, "10.0.0.8:4000", "No accessKey is configured")
        log.refused(10, "10.0.0.7:4001", "No acl config for x")
        assert len(lines) == 3
        # When the interval passed, Then the next one says how many were left out
        clock[0] += 1.0
        log.refused(10, "10.0.0.7:4002", "No accessKey is configured")
        assert lines[-1].endswith("No accessKey is configured (49 more like it left out)")
    finally:
        logger.remove(sink)


def test_a_host_varying_the_reason_is_still_held_to_a_few_lines_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    clock = [100.0]
    monkeypatch.setattr(refusals.time, "monotonic", lambda: clock[0])
    try:
        log = refusals.RefusalLog(interval=1.0)
        # Given a client sending a new accessKey with every request (a new reason each time)
        for i in range(500):
            log.refused(100, "10.0.0.7:4000", f"No acl config for k{i}")
        # Then that host gets at most HOST_LINES WARNINGs in the interval
        assert len(lines) == refusals.HOST_LINES
        # And another host is not held back by it
        log.refused(100, "10.0.0.8:4000", "No acl config for k0")
        assert len(lines) == refusals.HOST_LINES + 1
        # When the interval passed, Then the next line says how many the host had left out
        clock[0] += 1.0
        log.refused(100, "10.0.0.7:4000", "No acl config for k500")
        left_out = 500 - refusals.HOST_LINES
        assert lines[-1].endswith(f"k500 ({left_out} more from this host left out)")
    finally:
        logger.remove(sink)
