"""RocketMQ's plain ACL: the accounts file (``plain_acl.yml``) and the check of one request.

The file (RocketMQ's format)::

    globalWhiteRemoteAddresses: [10.10.103.*]   # these hosts are never checked
    accounts:
      - accessKey: RocketMQ                     # longer than 6 characters
        secretKey: "12345678"                   # longer than 6 characters
        whiteRemoteAddress: 192.168.0.*         # this account's hosts are never checked
        admin: false                            # admin codes need true
        defaultTopicPerm: DENY                  # PUB, SUB, PUB|SUB or DENY (the default)
        defaultGroupPerm: SUB
        topicPerms: [topicA=DENY, topicB=PUB|SUB]
        groupPerms: [groupA=DENY, groupB=SUB]

``check`` follows ``PlainPermissionManager.validate``: a globally white host passes; else the
request's ``AccessKey`` must name an account (whose white hosts then pass), its ``Signature``
must match, admin codes need ``admin: true``, and every topic or group the request touches needs
its permission (the account's entry, else its default; an admin account without entries passes).
``PlainAccessValidator`` reloads the file when it changes (checked at most once a second); a
file that no longer loads leaves the previous rules in force, with an error logged.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable

import gevent.lock
import msgspec
from loguru import logger

from runtime.acl.addresses import Matcher, compile_pattern
from runtime.acl.refusals import RefusalLog
from runtime.acl.resources import (
    ADMIN_CODES,
    Permission,
    grants,
    group_resource,
    is_group_resource,
    needed,
)
from runtime.acl.signature import ACCESS_KEY, SessionCredentials, verify
from runtime.errors import ConfigError
from runtime.hostport import host_of
from runtime.remoting.codes import RETRY_PREFIX
from runtime.remoting.command import RemotingCommand

MIN_KEY_LENGTH = 7  # RocketMQ: "length should longer than 6"
RELOAD_CHECK_S = 1.0


class _AccountFile(msgspec.Struct, rename="camel"):
    access_key: str | int | None = None
    secret_key: str | int | None = None
    white_remote_address: str | None = None
    admin: bool = False
    default_topic_perm: str | None = None
    default_group_perm: str | None = None
    topic_perms: list[str] | None = None
    group_perms: list[str] | None = None


class _AclFile(msgspec.Struct, rename="camel"):
    global_white_remote_addresses: list[str] | None = None
    accounts: list[_AccountFile] | None = None


class Account(msgspec.Struct, frozen=True):
    access_key: str
    secret_key: str
    white: Matcher
    admin: bool
    default_topic: int
    default_group: int
    perms: dict[str, int] | None


NO_PERMISSION = "No permission"


class PlainAcl(msgspec.Struct, frozen=True):
    """The rules of one accounts file."""

    global_white: tuple[Matcher, ...]
    accounts: dict[str, Account]

    def check(
        self, request: RemotingCommand, host: str, wanted: dict[str, int] | None = None
    ) -> str | None:
        """None when ``request`` from ``host`` may be served, else why not (RocketMQ's words).
        ``wanted``: the resources to check instead of those its header names (a handler's
        second check, once it read the message the request names)."""
        fields = request.ext_fields
        return self.authorize(
            fields.get(ACCESS_KEY),
            host,
            lambda secret: verify(fields, request.body, secret),
            (lambda: needed(request)) if wanted is None else (lambda: wanted),
            request.code if request.code in ADMIN_CODES else None,
        )

    def authorize(
        self,
        access_key: str | None,
        host: str,
        signed: Callable[[str], bool],
        wanted: Callable[[], dict[str, int]],
        admin_code: int | None = None,
    ) -> str | None:
        """The check of one request, whatever carried it (remoting, or the gRPC proxy's
        calls): ``signed(secret)`` says whether its signature is the account's, ``wanted()``
        the resources it needs, ``admin_code`` its code when it needs an admin account. None
        when it may be served, else why not; a refusal of a valid account's permission starts
        with ``NO_PERMISSION``."""
        if any(white(host) for white in self.global_white):
            return None
        if access_key is None:
            return "No accessKey is configured"
        account = self.accounts.get(access_key)
        if account is None:
            return f"No acl config for {access_key}"
        if account.white(host):
            return None
        if not signed(account.secret_key):
            return f"Check signature failed for accessKey={access_key}"
        if admin_code is not None and not account.admin:
            return (
                f"Need admin permission for request code={admin_code}, "
                f"but accessKey={access_key} is not"
            )
        wanted_now = wanted()
        if not wanted_now or (account.perms is None and account.admin):
            return None
        owned_map = account.perms or {}
        for resource, perm in wanted_now.items():
            group = is_group_resource(resource)
            owned = owned_map.get(resource)
            if owned is None:
                owned = account.default_group if group else account.default_topic
            if not grants(owned, perm):
                name = resource[len(RETRY_PREFIX) :] if group else resource
                return f"{NO_PERMISSION} for {'group' if group else 'topic'}:{name}"
        return None


def parse(data: bytes, file: str) -> PlainAcl:
    """The rules in ``data`` (the text of ``file``); ConfigError naming the file and key."""
    try:
        raw = msgspec.yaml.decode(data, type=_AclFile) if data.strip() else _AclFile()
    except msgspec.ValidationError as exc:
        raise ConfigError(file, None, f"not an ACL file: {exc}") from None
    except Exception as exc:  # the YAML parser's own errors
        raise ConfigError(file, None, f"not valid YAML: {exc}") from None
    if raw.accounts is None and raw.global_white_remote_addresses is None:
        raise ConfigError(file, None, "no accounts and no globalWhiteRemoteAddresses")
    white = []
    for i, pattern in enumerate(raw.global_white_remote_addresses or ()):
        white.append(_pattern(pattern, file, f"globalWhiteRemoteAddresses[{i}]"))
    accounts: dict[str, Account] = {}
    for i, entry in enumerate(raw.accounts or ()):
        account = _account(entry, file, f"accounts[{i}]")
        if account.access_key in accounts:
            raise ConfigError(file, f"accounts[{i}].accessKey", "appears twice")
        accounts[account.access_key] = account
    return PlainAcl(global_white=tuple(white), accounts=accounts)


def _pattern(pattern: str, file: str, key: str) -> Matcher:
    try:
        return compile_pattern(str(pattern))
    except ValueError as exc:
        raise ConfigError(file, key, str(exc)) from None


def _account(entry: _AccountFile, file: str, key: str) -> Account:
    for name in ("access_key", "secret_key"):
        value = getattr(entry, name)
        if value is None or len(str(value)) < MIN_KEY_LENGTH:
            field = "accessKey" if name == "access_key" else "secretKey"
            raise ConfigError(file, f"{key}.{field}", "must be longer than 6 characters")
    perms: dict[str, int] = {}
    for field, items, is_topic in (
        ("topicPerms", entry.topic_perms, True),
        ("groupPerms", entry.group_perms, False),
    ):
        for j, item in enumerate(items or ()):
            name, sep, perm = str(item).partition("=")
            if not sep or not name.strip() or "=" in perm:
                raise ConfigError(file, f"{key}.{field}[{j}]", f"{item!r} is not name=PERM")
            resource = name.strip() if is_topic else group_resource(name.strip())
            perms[resource] = Permission.parse(perm)
    return Account(
        access_key=str(entry.access_key),
        secret_key=str(entry.secret_key),
        white=_pattern(entry.white_remote_address or "", file, f"{key}.whiteRemoteAddress"),
        admin=entry.admin,
        default_topic=Permission.parse(entry.default_topic_perm),
        default_group=Permission.parse(entry.default_group_perm),
        perms=perms or None,
    )


def load(path: str | os.PathLike[str]) -> PlainAcl:
    """The rules of the file at ``path``; ConfigError when it is missing or wrong."""
    file = str(path)
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read the ACL file: {exc.strerror}") from None
    return parse(data, file)


class PlainAccessValidator:
    """The broker's ACL: the rules of one file, reloaded when it changes; and, when the broker
    has one, its inner account (``innerClientAuthenticationCredentials``), which may do
    anything, as RocketMQ 5 makes it a super user: a slave's requests to its master are signed
    with it."""

    def __init__(
        self, path: str | os.PathLike[str], inner: SessionCredentials | None = None
    ) -> None:
        self.path = pathlib.Path(path)
        self.inner = inner
        self.edit_lock = gevent.lock.Semaphore()
        """Held while an admin request changes the file (``actors.broker.acl_handler``)."""
        self.refusals = RefusalLog()
        """Where the broker logs the refusals (its processor's and its handlers')."""
        self._stamp = self._stat()
        self.rules = load(self.path)
        self._checked_at = time.monotonic()

    def check(
        self, request: RemotingCommand, remote_address: str, wanted: dict[str, int] | None = None
    ) -> str | None:
        """None when the request may be served, else the reason it may not; ``wanted`` as
        ``PlainAcl.check``'s."""
        inner = self.inner
        fields = request.ext_fields
        if (
            inner is not None
            and fields.get(ACCESS_KEY) == inner.access_key
            and verify(fields, request.body, inner.secret_key)
        ):
            return None
        return self.current().check(request, host_of(remote_address), wanted)

    def current(self) -> PlainAcl:
        """The rules, the file looked at again if ``RELOAD_CHECK_S`` passed since."""
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_S:
            self._checked_at = now
            self._reload_if_changed()
        return self.rules

    def reload(self) -> None:
        """Load the file now (after our own change to it); ConfigError leaves the rules."""
        self._stamp = self._stat()
        self.rules = load(self.path)

    def _stat(self) -> tuple[int, ...] | None:
        """What tells a changed file: its modification time and size, and its inode and
        change time (a file put in place with its old modification time, ``cp -p``,
        ``rsync -t``, a package, and of the same size, changes only those)."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)

    def _reload_if_changed(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self.rules = load(self.path)
        except ConfigError as exc:
            logger.error("acl: {}; the previous rules stay in force", exc)
            return
        logger.info("acl: reloaded {} ({} accounts)", self.path, len(self.rules.accounts))
