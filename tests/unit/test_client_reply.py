"""Request-reply codec of the client (``actors.client.reply``): what a request carries, the
reply built from a request, the pushed reply decoded (hosts, compression), bad pushes refused."""

from __future__ import annotations

import zlib

import pytest

from actors.client.errors import MessageInvalidError
from actors.client.message import MessageExt
from actors.client.reply import (
    decode_pushed_reply,
    reply_outgoing,
    request_properties,
)
from runtime.errors import ProtocolError
from runtime.remoting import properties as P
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand

REQUEST = MessageExt(
    "Prices",
    b"apple",
    request_properties("c-1", "10.0.0.1@7", 3000) + "CLUSTER\x01DefaultCluster\x02",
)


def test_a_request_names_its_correlation_id_client_and_ttl() -> None:
    props = P.decode_properties(request_properties("c-1", "10.0.0.1@7", 3000))
    assert props == {"CORRELATION_ID": "c-1", "REPLY_TO_CLIENT": "10.0.0.1@7", "TTL": "3000"}


def test_a_reply_goes_to_the_clusters_reply_topic_with_the_requests_marks() -> None:
    # Given a stored request; When a reply is built for it
    out = reply_outgoing(REQUEST, b"0.40", {"x": "1"}, max_size=1 << 20, compress_over=4096)
    # Then it is a reply to the cluster's reply topic, carrying what routes it back
    props = P.decode_properties(out.properties)
    assert out.reply and out.topic == "DefaultCluster_REPLY_TOPIC" and out.body == b"0.40"
    assert props["MSG_TYPE"] == "reply" and props["CORRELATION_ID"] == "c-1"
    assert props["REPLY_TO_CLIENT"] == "10.0.0.1@7" and props["TTL"] == "3000"
    assert props["x"] == "1" and P.UNIQ_KEY in props
    # And a message that is not a request cannot be answered
    with pytest.raises(MessageInvalidError):
        reply_outgoing(MessageExt("T", b"x", ""), b"r", None, max_size=100, compress_over=10)


def push(**ext: object) -> RemotingCommand:
    ext.setdefault("producerGroup", "price-service")
    return RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, ext, ext.pop("body"))  # type: ignore[arg-type]


def test_a_pushed_reply_is_decoded_with_its_hosts_and_inflated() -> None:
    # Given a push as a broker sends it, its body compressed
    got = decode_pushed_reply(
        push(
            topic="DefaultCluster_REPLY_TOPIC",
            sysFlag=1,
            properties="CORRELATION_ID\x01c-1\x02",
            bornHost="/10.0.0.2:5000",
            storeHost="/10.0.0.3:10911",
            storeTimestamp=42,
            queueId=0,
            body=zlib.compress(b"0.40" * 100),
        )
    )
    # Then the reply has its body, properties and hosts
    assert got.body == b"0.40" * 100
    assert got.all_properties["CORRELATION_ID"] == "c-1"
    assert (got.born_host, got.store_host, got.store_timestamp) == (
        "10.0.0.2:5000",
        "10.0.0.3:10911",
        42,
    )


def test_a_bad_push_raises_only_the_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_pushed_reply(push(queueId="x", body=b""))  # no topic, a queue id not a number
    with pytest.raises(ProtocolError):
        decode_pushed_reply(push(topic="T", sysFlag=1, body=b"not zlib"))
