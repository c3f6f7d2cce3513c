"""The proxy's EndTransaction under the plain ACL: the proxy ends a half message with its own
account, so the broker's check of the half message's topic sees the proxy's account; the proxy
ends only a half message of the topic the call names, on which its ACL checked PUB."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from actors.proxy.proto import Code, M, MessageType, TransactionResolution
from actors.proxy.server import SERVICE
from tests.integration.proxy_acl_support import proxy_under_acl, signed

pytestmark = pytest.mark.timeout(90)

ACL = """\
accounts:
  - accessKey: proxy-admin
    secretKey: proxy-secret
    admin: true
  - accessKey: ledger-app
    secretKey: ledger-secret
    topicPerms: [Ledger=PUB]
  - accessKey: other-app
    secretKey: other-secret
    topicPerms: [Chatter=PUB]
"""


@pytest.fixture
def proxy(tmp_path: pathlib.Path) -> Iterator[str]:
    with proxy_under_acl(tmp_path, ACL, ("Ledger", "Chatter"), queues=1) as address:
        yield address


def _call(address: str, name: str, request: Any, metadata: list[tuple[str, str]]) -> Any:
    response = getattr(M, f"{name}Response")
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        return call(request, timeout=10, metadata=metadata)


def _send_half(address: str, topic: str, metadata: list[tuple[str, str]]) -> str:
    """A half message sent to ``topic``; its transaction id."""
    request = M.SendMessageRequest()
    msg = request.messages.add()
    msg.topic.name, msg.body = topic, b"debit 100"
    msg.system_properties.message_id = "01LEDGERHALF"
    msg.system_properties.message_type = MessageType.TRANSACTION
    msg.system_properties.body_encoding = 1
    sent = _call(address, "SendMessage", request, metadata)
    assert sent.status.code == Code.OK, sent.status.message
    return str(sent.entries[0].transaction_id)


def _end(address: str, topic: str, txn: str, metadata: list[tuple[str, str]]) -> Any:
    request = M.EndTransactionRequest(
        message_id=txn, transaction_id=txn, resolution=TransactionResolution.COMMIT
    )
    request.topic.name = topic
    return _call(address, "EndTransaction", request, metadata).status


def test_a_transaction_is_ended_only_by_a_call_naming_its_own_topic(proxy: str) -> None:
    # Given a half message ledger-app sent to Ledger, and other-app with PUB on Chatter only
    ledger, other = signed("ledger-app", "ledger-secret"), signed("other-app", "other-secret")
    txn = _send_half(proxy, "Ledger", ledger)
    # When other-app commits it naming Ledger, Then the proxy's ACL refuses it
    assert _end(proxy, "Ledger", txn, other).code == Code.FORBIDDEN
    # When other-app commits it naming Chatter (on which it has PUB)
    refused = _end(proxy, "Chatter", txn, other)
    # Then it is not ended: no open transaction of that topic
    assert refused.code == Code.INVALID_TRANSACTION_ID, refused.message
    # And ledger-app, naming its topic, still commits it
    ended = _end(proxy, "Ledger", txn, ledger)
    assert ended.code == Code.OK, ended.message
