"""A CONTROLLER_HEARTBEAT the name server cannot take (bytes that are not UTF-8 inside a JSON
string, an absurd epoch) is answered with an error on a connection that goes on: msgspec raises
UnicodeDecodeError, not its DecodeError, for the first."""

from __future__ import annotations

import pytest

from runtime.ha.control import CONTROLLER_HEARTBEAT
from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.ha_support import start_namesrv, stop_node
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


def test_undecodable_heartbeats_are_answered_with_an_error_and_the_connection_goes_on() -> None:
    node = start_namesrv(controller=True)
    try:
        client = WireClient(node.addresses["namesrv"])
        for body in (
            b'{"cluster": "\x80", "group": "g"}',
            b'{"cluster":"c","group":"g","node":1,"addr":"a","haAddr":"h","claimMaster":true,'
            b'"epoch":9223372036854775807,"maxOffset":0}',
        ):
            reply = client.call(CONTROLLER_HEARTBEAT, body=body)
            assert reply.code == ResponseCode.SYSTEM_ERROR and "controller heartbeat" in (
                reply.remark or ""
            )
        assert client.call(RequestCode.GET_NAMESRV_CONFIG).code == ResponseCode.SUCCESS
        client.close()
    finally:
        stop_node(node)


def test_a_failing_controller_restarts_alone_and_connections_stay() -> None:
    from actors.namesrv.controller import _StoreFailed
    from tests.actors.ha_support import wait_until

    node = start_namesrv(controller=True)
    try:
        client = WireClient(node.addresses["namesrv"])
        assert client.call(RequestCode.GET_NAMESRV_CONFIG).code == ResponseCode.SUCCESS
        before = node.directory.require("namesrv/controller")
        # When the controller fails (its store could not write)
        before.tell(_StoreFailed("disk says no"))
        wait_until(
            lambda: (
                (ref := node.directory.get("namesrv/controller")) is not None
                and ref.actor_urn != before.actor_urn
            ),
            what="the controller restarted",
        )
        # Then the name server's connections were not closed with it
        assert client.call(RequestCode.GET_NAMESRV_CONFIG).code == ResponseCode.SUCCESS
        client.close()
    finally:
        stop_node(node)
