"""A request code the broker does not serve, over the wire to an in-process broker: answered
REQUEST_CODE_NOT_SUPPORTED with RocketMQ's remark, to the letter (its leading space included:
NettyRemotingAbstract's " request type N not supported"), and the connection goes on."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from runtime.node import Node
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import (
    T,
    broker_config,
    label,
    start_broker,
    start_namesrv,
    stop_node,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def broker(tmp_path: pathlib.Path) -> Iterator[Node]:
    namesrv = start_namesrv()
    cfg = broker_config("broker-u", 0, "ASYNC_MASTER", namesrv.addresses["namesrv"])
    node = start_broker(cfg, tmp_path / "b")
    yield node
    stop_node(node)
    stop_node(namesrv)


def test_an_unsupported_code_gets_rocketmqs_remark_and_the_connection_goes_on(
    broker: Node,
) -> None:
    client = WireClient(broker.addresses[label(broker)], timeout=T)
    try:
        # Given a connection to a broker
        # When it sends a request code no handler serves
        answer = client.call(9999)
        # Then the answer is REQUEST_CODE_NOT_SUPPORTED with RocketMQ's remark, leading space
        assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert answer.remark == " request type 9999 not supported"
        # And the same connection is still served
        assert client.call(RequestCode.GET_BROKER_RUNTIME_INFO).code == ResponseCode.SUCCESS
    finally:
        client.close()
