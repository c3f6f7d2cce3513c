"""Request signatures of RocketMQ's ACL (``AclClientRPCHook`` / ``PlainAccessResource``).

A signed request carries ``AccessKey``, ``Signature`` (and ``SecurityToken`` when the client has
one) among its header fields. The signature is Base64(HMAC-SHA1(secretKey, content)), content
being the values of every header field except ``Signature`` and ``_UNIQUE_KEY_QUERY``, in the
order of their names, then the body's bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping

import msgspec

from runtime.remoting.command import RemotingCommand

ACCESS_KEY = "AccessKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"
UNSIGNED = frozenset({SIGNATURE, "_UNIQUE_KEY_QUERY"})


class SessionCredentials(msgspec.Struct, frozen=True):
    """An ACL account's keys, as RocketMQ's ``SessionCredentials``."""

    access_key: str
    secret_key: str
    security_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"SessionCredentials(access_key={self.access_key!r})"


def content(ext_fields: Mapping[str, str], body: bytes) -> bytes:
    """The bytes a signature covers."""
    values = "".join(ext_fields[k] for k in sorted(ext_fields) if k not in UNSIGNED)
    return values.encode() + body


def calculate(data: bytes, secret_key: str) -> str:
    """Base64(HMAC-SHA1(secret_key, data))."""
    digest = hmac.new(secret_key.encode(), data, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sign(cmd: RemotingCommand, credentials: SessionCredentials) -> RemotingCommand:
    """``cmd`` with its ``AccessKey`` (and ``SecurityToken``) and ``Signature`` fields."""
    ext = dict(cmd.ext_fields)
    ext[ACCESS_KEY] = credentials.access_key
    if credentials.security_token is not None:
        ext[SECURITY_TOKEN] = credentials.security_token
    ext[SIGNATURE] = calculate(content(ext, cmd.body), credentials.secret_key)
    return msgspec.structs.replace(cmd, ext_fields=ext)


def signer_for(
    credentials: SessionCredentials | None,
) -> Callable[[RemotingCommand], RemotingCommand] | None:
    """A function signing requests with ``credentials``; None without credentials."""
    if credentials is None:
        return None
    return functools.partial(sign, credentials=credentials)


def verify(ext_fields: Mapping[str, str], body: bytes, secret_key: str) -> bool:
    """The request's ``Signature`` is the one ``secret_key`` gives (compared in constant time,
    as bytes: ``compare_digest`` refuses a str with non-ASCII characters, which a client may
    send)."""
    given = ext_fields.get(SIGNATURE)
    if given is None:
        return False
    expected = calculate(content(ext_fields, body), secret_key)
    return hmac.compare_digest(given.encode(), expected.encode())
