"""A client reads responses past the 16 MiB request limit (``MAX_RESPONSE_FRAME``): a master's
whole consumer-offset table for a slave's sync passed 16 MiB and the slave, closing the
connection for it, never linked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.net import Acceptor, bind
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import MAX_FRAME
from runtime.session import SessionHandle, connect, session_factory

pytestmark = pytest.mark.timeout(60)

BIG, HUGE = 950, 951


class LargeAnswers:
    """BIG: a 20 MiB body (past a request's limit); HUGE: past a response's limit too."""

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        size = MAX_FRAME + (4 << 20) if request.code == BIG else 130 << 20
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=b"o" * size)

    def on_close(self, session: SessionHandle) -> None:
        pass


@pytest.fixture
def address() -> Iterator[str]:
    sock = bind("127.0.0.1", 0, what="test")
    acceptor = Acceptor.start("test", sock, session_factory("test", LargeAnswers()))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        acceptor.stop()


def test_a_response_past_16_mib_is_read_and_one_past_the_limit_is_an_error(address: str) -> None:
    session = connect(address, role="test->large")
    try:
        # When a server answers with a 20 MiB body
        reply = session.call(RemotingCommand.request(BIG), timeout=30)
        # Then the client reads it whole
        assert reply.code == ResponseCode.SUCCESS and len(reply.body) == MAX_FRAME + (4 << 20)
        # When an answer would pass the 128 MiB a client reads
        reply = session.call(RemotingCommand.request(HUGE), timeout=30)
        # Then it comes as a SYSTEM_ERROR saying so, on the same connection
        assert reply.code == ResponseCode.SYSTEM_ERROR
        assert "passes the 134217728-byte limit" in (reply.remark or "")
        assert session.alive
    finally:
        session.close()


def test_a_request_past_16_mib_is_not_sent(address: str) -> None:
    session = connect(address, role="test->large")
    try:
        # When a request's body passes what a server reads
        future = session.request(RemotingCommand.request(BIG, body=b"x" * (MAX_FRAME + 1)))
        # Then it fails alone, unsent, and the connection serves the next one
        with pytest.raises(Exception, match="passes the 16777216-byte limit: not sent"):
            future.get(timeout=5)
        assert session.call(RemotingCommand.request(BIG), timeout=30).code == ResponseCode.SUCCESS
    finally:
        session.close()
