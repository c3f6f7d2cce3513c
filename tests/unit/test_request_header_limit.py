"""No request leaves with a header past the servers' 256 KiB limit (a server refuses it),
no response with one past the clients' 8 MiB (a client closes the connection for one, failing
every other request on it) (``runtime.session_handle``)."""

from __future__ import annotations

import pytest

from actors.client import Admin, RequestInvalidError
from actors.client.testing import FakeCluster
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import MAX_HEADER, MAX_RESPONSE_HEADER, decode_frame, encode
from runtime.session_handle import _frame_of, _header_length

pytestmark = pytest.mark.timeout(30)


def test_a_request_whose_header_passes_the_limit_fails_alone() -> None:
    with FakeCluster(("broker-a",), topics=("Orders",)) as cluster, Admin(cluster.namesrv) as admin:
        # Given an admin whose connection to the name server is open
        assert admin.topic_route("Orders").queue_datas
        # When it asks for the route of a topic named with 300,000 characters
        with pytest.raises(RequestInvalidError, match="passes the 262144-byte limit: not sent"):
            admin.topic_route("T" * 300_000)
        # Then only that request failed: the connection goes on serving
        assert admin.topic_route("Orders").queue_datas


def test_a_response_past_a_clients_limit_becomes_an_error_and_one_past_256_kib_goes_out() -> None:
    request = RemotingCommand.request(10, {})
    # Given a response with a 300,000-byte header (a batch's msgId list): clients take it
    big = RemotingCommand.response_to(request, ResponseCode.SUCCESS, remark="r" * 300_000)
    assert MAX_HEADER < _header_length(encode(big)) < MAX_RESPONSE_HEADER
    assert _frame_of(big) == encode(big)
    # Given one past what a client accepts (8 MiB)
    huge = RemotingCommand.response_to(request, ResponseCode.SUCCESS, remark="r" * (9 << 20))
    frame = _frame_of(huge)
    # Then it is answered as a SYSTEM_ERROR that says so, to the same request
    assert frame is not None
    answer = decode_frame(frame)
    assert answer.code == ResponseCode.SYSTEM_ERROR and answer.opaque == request.opaque
    assert "passes the 8388608-byte limit" in (answer.remark or "")
    assert len(frame) < 1000
    # And a request past a server's 256 KiB is not sent at all
    assert _frame_of(RemotingCommand.request(10, {"k": "v" * 300_000})) is None
