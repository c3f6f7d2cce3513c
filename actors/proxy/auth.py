"""ProxyAuth: RocketMQ's plain ACL (ACL 1.0, a ``plain_acl.yml``) on the proxy's gRPC calls.

A RocketMQ 5 client signs every call in its metadata: ``authorization: MQv2-HMAC-SHA1
Credential=<accessKey>, SignedHeaders=x-mq-date-time, Signature=<hex HMAC-SHA1(secretKey,
x-mq-date-time)>``. With ``--acl-file`` the proxy checks that signature against the account's
secret and what the call needs against the account's permissions, the broker's rules
(``runtime.acl.plain``, the same file format, reloaded when it changes):

- SendMessage, EndTransaction, RecallMessage: PUB on the topic (an EndTransaction ends only a
  half message sent to the topic it names: ``ProxyTransactions.end``, so PUB on the half
  message's own topic is what counts);
- ReceiveMessage, AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue,
  QueryAssignment: SUB on the topic and on the group (kept as ``%RETRY%<group>``, as RocketMQ);
- Heartbeat: SUB on its group; QueryRoute, NotifyClientTermination: a valid signature only;
  Telemetry: a valid signature to open the stream, and a consumer's Settings SUB on its group
  and topics (the proxy joins the group for it: ``subscription_refusal``).

A refusal is UNAUTHORIZED (no or unknown key, bad signature) or FORBIDDEN (a valid account
without the permission). The proxy's own requests to the brokers are signed with its own
account (``--access-key`` / ``--secret-key``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from actors.proxy.convert import resource_name
from actors.proxy.front import origin, peer_address
from actors.proxy.proto import Code
from runtime.acl.plain import NO_PERMISSION, PlainAccessValidator
from runtime.acl.resources import Permission
from runtime.hostport import host_of
from runtime.remoting.codes import RETRY_PREFIX

PUB, SUB = int(Permission.PUB), int(Permission.SUB)
_TOPIC_PUB = {"SendMessage", "EndTransaction", "RecallMessage"}
_TOPIC_AND_GROUP = {
    "ReceiveMessage",
    "AckMessage",
    "ChangeInvisibleDuration",
    "ForwardMessageToDeadLetterQueue",
    "QueryAssignment",
}


def needed(method: str, request: Any) -> dict[str, int]:
    """The resources call ``method`` with ``request`` needs, RocketMQ's way of keying them."""
    if method in _TOPIC_PUB:
        if method == "SendMessage":
            return {resource_name(m.topic): PUB for m in request.messages}
        return {resource_name(request.topic): PUB}
    if method in _TOPIC_AND_GROUP:
        topic = request.message_queue.topic if method == "ReceiveMessage" else request.topic
        return {resource_name(topic): SUB, RETRY_PREFIX + resource_name(request.group): SUB}
    if method == "Heartbeat" and request.HasField("group"):
        return {RETRY_PREFIX + resource_name(request.group): SUB}
    return {}


def _credential(metadata: dict[str, str]) -> tuple[str | None, str]:
    """(access key, signature) of an ``authorization`` value (None: none readable)."""
    value = metadata.get("authorization", "")
    scheme, _, rest = value.partition(" ")
    if scheme != "MQv2-HMAC-SHA1":
        return None, ""
    parts = dict(item.strip().partition("=")[::2] for item in rest.split(",") if "=" in item)
    return parts.get("Credential") or None, parts.get("Signature", "")


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, or as grpcio
    writes it, ``ipv6:%5B::1%5D:5``)."""
    return host_of(peer_address(peer))


class ProxyAuth:
    def __init__(self, acl_file: str | os.PathLike[str]) -> None:
        self.validator = PlainAccessValidator(acl_file)

    def subscription_refusal(self, settings: Any, context: Any) -> tuple[int, str] | None:
        """A consumer's Settings on its telemetry stream (whose signature was checked when
        the stream opened): the proxy joins the group and pulls its topics only with SUB on
        them, as a receive would need."""
        if not settings.HasField("subscription"):
            return None
        subscription = settings.subscription
        wanted = {resource_name(e.topic): SUB for e in subscription.subscriptions}
        wanted[RETRY_PREFIX + resource_name(subscription.group)] = SUB
        return self._check(context, wanted, verify=False)

    def refusal(self, method: str, request: Any, context: Any) -> tuple[int, str] | None:
        """None when the call may go on, else (code, reason)."""
        wanted = needed(method, request) if request is not None else {}
        return self._check(context, wanted, verify=True)

    def _check(
        self, context: Any, wanted: dict[str, int], *, verify: bool
    ) -> tuple[int, str] | None:
        """The call's account against the ACL file: its signature (``verify``; else checked
        when its stream opened) and ``wanted``."""
        metadata = {k: str(v) for k, v in context.invocation_metadata() or ()}
        access_key, signature = _credential(metadata)
        date = metadata.get("x-mq-date-time", "").encode()

        def signed(secret: str) -> bool:
            if not verify:
                return True
            expected = hmac.new(secret.encode(), date, hashlib.sha1).hexdigest()
            # (as bytes: compare_digest refuses a str with non-ASCII characters, which a
            # client may send; runtime.acl.signature.verify does the same)
            return hmac.compare_digest(expected.encode(), signature.lower().encode())

        reason = self.validator.current().authorize(
            access_key, peer_host(origin(context.peer() or "")), signed, lambda: wanted
        )
        if reason is None:
            return None
        code = Code.FORBIDDEN if reason.startswith(NO_PERMISSION) else Code.UNAUTHORIZED
        return code, reason
