"""Changes to the plain ACL accounts file, as RocketMQ's admin requests make them
(UPDATE_AND_CREATE_ACL_CONFIG, DELETE_ACL_CONFIG, UPDATE_GLOBAL_WHITE_ADDRS_CONFIG).

Each change reads the file, edits its data, bumps its ``dataVersion`` (RocketMQ's
``[{counter, timestamp}]``), checks that the result loads (``plain.parse``: a change never
leaves a file the broker cannot read) and replaces the file atomically, keeping its mode (it
holds secrets). Comments in the file are not kept (RocketMQ's rewrite drops them too). Problems
raise ``AclEditError`` with RocketMQ's words.
"""

from __future__ import annotations

import copy
import os
import pathlib
import stat
import time
from typing import Any

import msgspec
import yaml

from runtime.acl import plain
from runtime.errors import ActorMQError, ConfigError
from runtime.store.configfile import write_atomic


class AclEditError(ActorMQError):
    """A change to the accounts file that cannot be made; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AccountUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An UPDATE_AND_CREATE_ACL_CONFIG: None (or empty) leaves a field as it is, except
    ``admin``, which is always written (as RocketMQ does)."""

    access_key: str
    secret_key: str | None = None
    white_remote_address: str | None = None
    admin: bool = False
    default_topic_perm: str | None = None
    default_group_perm: str | None = None
    topic_perms: list[str] | None = None
    group_perms: list[str] | None = None


class Version(msgspec.Struct, frozen=True):
    counter: int
    timestamp: int


def read(path: pathlib.Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_bytes()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AclEditError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AclEditError(f"{path} is not a map of globalWhiteRemoteAddresses and accounts")
    return data


def version(path: pathlib.Path) -> Version:
    """The file's dataVersion (0 and its modification time when it has none); AclEditError
    when it has one that is not ``[{counter: N, timestamp: N}]`` (the file is edited by hand
    too)."""
    entries = read(path).get("dataVersion")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        first = entries[0]
        counter, timestamp = first.get("counter", 0), first.get("timestamp", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (counter, timestamp)):
            raise AclEditError(f"{path}: dataVersion is not [{{counter: N, timestamp: N}}]")
        return Version(counter, timestamp)
    return Version(0, int(path.stat().st_mtime * 1000))


def update_account(path: pathlib.Path, change: AccountUpdate) -> None:
    """Create the account or update the fields ``change`` sets."""
    if len(change.access_key) < plain.MIN_KEY_LENGTH:
        raise AclEditError(
            f"The accessKey={change.access_key} cannot be null and length should longer than 6"
        )
    if change.secret_key and len(change.secret_key) < plain.MIN_KEY_LENGTH:
        raise AclEditError("The secretKey value length should longer than 6")
    data = read(path)
    accounts = _accounts(data)
    account = next((a for a in accounts if str(a.get("accessKey")) == change.access_key), None)
    if account is None:
        account = {"accessKey": change.access_key}
        accounts.append(account)
    fields = {
        "secretKey": change.secret_key,
        "whiteRemoteAddress": change.white_remote_address,
        "defaultTopicPerm": change.default_topic_perm,
        "defaultGroupPerm": change.default_group_perm,
        "topicPerms": change.topic_perms,
        "groupPerms": change.group_perms,
    }
    for key, value in fields.items():
        if value:
            account[key] = value
    account["admin"] = change.admin
    _write(path, data)


def delete_account(path: pathlib.Path, access_key: str) -> None:
    data = read(path)
    accounts = _accounts(data)
    kept = [a for a in accounts if str(a.get("accessKey")) != access_key]
    if len(kept) == len(accounts):
        raise AclEditError(f"Accesskey: {access_key} not existed, Please check it again")
    data["accounts"] = kept
    _write(path, data)


def set_global_white(path: pathlib.Path, addresses: list[str]) -> None:
    data = read(path)
    data["globalWhiteRemoteAddresses"] = list(addresses)
    _write(path, data)


def _accounts(data: dict[str, Any]) -> list[dict[str, Any]]:
    accounts = data.get("accounts")
    if accounts is None:
        accounts = data["accounts"] = []
    if not isinstance(accounts, list) or not all(isinstance(a, dict) for a in accounts):
        raise AclEditError("the file's accounts is not a list of accounts")
    return accounts


def _write(path: pathlib.Path, data: dict[str, Any]) -> None:
    data = copy.deepcopy(data)
    try:
        old = version(path).counter
    except (AclEditError, OSError):
        old = 0
    data["dataVersion"] = [{"counter": old + 1, "timestamp": int(time.time() * 1000)}]
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False).encode()
    try:
        plain.parse(text, str(path))
    except ConfigError as exc:
        raise AclEditError(f"the change would leave a file that does not load: {exc}") from None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o600
    write_atomic(os.fspath(path), text, mode)
