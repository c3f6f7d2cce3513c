"""SQL92 property filters on the pull path (enablePropertyFilter), over the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.properties import encode_properties
from tests.harness import RuntimeProcess
from tests.integration.test_broker_wire import pull_request, records, send
from tests.profiles import one_broker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


def start(tmp: pytest.TempPathFactory, enabled: bool) -> RuntimeProcess:
    root = tmp.mktemp("filter")
    profile = root / "p.toml"
    profile.write_text(one_broker({"enablePropertyFilter": enabled}))
    node = RuntimeProcess(
        [
            "cluster",
            "--profile",
            str(profile),
            "--ephemeral-ports",
            "--data-dir",
            str(root / "data"),
        ]
    )
    return node


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireClient]:
    with start(tmp_path_factory, True) as node:
        yield WireClient(node.wait_ready()["broker-a/0"])
        assert node.terminate() == 0, node.stderr_text()


def sql_pull(client: WireClient, topic: str, expression: str, offset: int = 0):
    request = pull_request(topic, 0, offset, subscription=expression)
    ext = dict(request.ext_fields)
    ext["expressionType"] = "SQL92"
    return client.call(RequestCode.PULL_MESSAGE, ext)


def test_sql92_selects_by_properties(broker: WireClient) -> None:
    # Given messages with numeric and string properties
    for region, price in [("eu", 5), ("us", 20), ("eu", 50), ("apac", 7)]:
        props = encode_properties({"region": region, "price": str(price), "TAGS": "t"})
        assert send(broker, "SqlT", f"{region}-{price}".encode(), properties=props).code == 0
    # When a consumer pulls with an SQL92 expression, Then only matching messages come back
    got = sql_pull(broker, "SqlT", "region = 'eu' AND price BETWEEN 10 AND 100")
    assert got.code == ResponseCode.SUCCESS
    assert [r.body for r in records(got.body)] == [b"eu-50"]
    got = sql_pull(broker, "SqlT", "region IN ('us', 'apac') OR price < 6")
    assert [r.body for r in records(got.body)] == [b"eu-5", b"us-20", b"apac-7"]
    # A page with no match advances the offset and asks the client to retry at once
    none = sql_pull(broker, "SqlT", "missing IS NOT NULL")
    assert none.code == ResponseCode.PULL_RETRY_IMMEDIATELY
    assert none.ext_fields["nextBeginOffset"] == "4"


def test_invalid_expression_is_subscription_parse_failed(broker: WireClient) -> None:
    assert send(broker, "SqlBad", b"x").code == 0
    got = sql_pull(broker, "SqlBad", "a > 5 AND AND b = 1")
    assert got.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
    assert "column" in got.remark


def check_client(client: WireClient, expression_type: str, expression: str) -> Any:
    """CHECK_CLIENT_CONFIG as a Java push consumer sends it at start."""
    sub = {
        "topic": "SqlT",
        "subString": expression,
        "tagsSet": [],
        "codeSet": [],
        "subVersion": 1732000000000,
        "expressionType": expression_type,
        "classFilterMode": False,
    }
    body = json.dumps({"clientId": "10.0.0.1@42", "group": "g", "subscriptionData": sub})
    return client.call(RequestCode.CHECK_CLIENT_CONFIG, {}, body.encode())


def test_check_client_config_answers_what_a_pull_would(broker: WireClient) -> None:
    # Given a broker with enablePropertyFilter
    # When a client checks its subscription before consuming
    # Then tags and a valid SQL92 expression are fine, a broken one is refused with the reason
    assert check_client(broker, "TAG", "a || b").code == ResponseCode.SUCCESS
    assert check_client(broker, "SQL92", "region = 'eu' AND price > 3").code == 0
    bad = check_client(broker, "SQL92", "a > 5 AND AND b = 1")
    assert bad.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED and bad.remark
    assert check_client(broker, "XPATH", "/a").code == ResponseCode.SUBSCRIPTION_PARSE_FAILED


def test_sql92_refused_when_the_broker_does_not_enable_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with start(tmp_path_factory, False) as node:
        client = WireClient(node.wait_ready()["broker-a/0"])
        assert send(client, "SqlOff", b"x").code == 0
        got = sql_pull(client, "SqlOff", "a = 1")
        assert got.code == ResponseCode.SYSTEM_ERROR and "SQL92" in got.remark
        checked = check_client(client, "SQL92", "a = 1")
        assert checked.code == ResponseCode.SYSTEM_ERROR and "SQL92" in checked.remark
        assert check_client(client, "TAG", "*").code == ResponseCode.SUCCESS
        assert node.terminate() == 0
