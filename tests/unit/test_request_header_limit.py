"""No request leaves with a header past the servers' 64 KiB limit: a server closes the
connection for one, failing every other request on it (``runtime.session_handle``)."""

from __future__ import annotations

import pytest

from actors.client import Admin, RequestInvalidError
from actors.client.testing import FakeCluster
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import MAX_HEADER, encode
from runtime.session_handle import _header_length, _too_large

pytestmark = pytest.mark.timeout(30)


def test_a_request_whose_header_passes_the_limit_fails_alone() -> None:
    with FakeCluster(("broker-a",), topics=("Orders",)) as cluster, Admin(cluster.namesrv) as admin:
        # Given an admin whose connection to the name server is open
        assert admin.topic_route("Orders").queue_datas
        # When it asks for the route of a topic named with 70,000 characters
        with pytest.raises(RequestInvalidError, match="passes the 65536-byte limit: not sent"):
            admin.topic_route("T" * 70_000)
        # Then only that request failed: the connection goes on serving
        assert admin.topic_route("Orders").queue_datas


def test_a_response_whose_header_passes_the_limit_becomes_an_error() -> None:
    # Given a response whose remark would make its header pass the limit
    request = RemotingCommand.request(10, {})
    huge = RemotingCommand.response_to(request, ResponseCode.SUCCESS, remark="r" * 70_000)
    assert _header_length(encode(huge)) > MAX_HEADER
    # Then it is answered as a SYSTEM_ERROR that says so, to the same request
    answer = _too_large(huge, encode(huge))
    assert answer.code == ResponseCode.SYSTEM_ERROR and answer.opaque == request.opaque
    assert "passes the limit" in (answer.remark or "")
    assert _header_length(encode(answer)) < 1000
