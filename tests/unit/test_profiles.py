"""tests.profiles: the one-broker profile parses as the runtime reads it."""

from __future__ import annotations

import pathlib

import pytest

from config import load_profile
from tests.profiles import one_broker

pytestmark = pytest.mark.timeout(10)


def test_one_broker_profile_carries_the_keys_set(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        one_broker(
            {"transactionCheckMax": 3, "enablePropertyFilter": True, "messageDelayLevel": "1s 2s"},
            namesrv={"orderMessageEnable": True},
            description='a "quoted" test',
        )
    )
    profile = load_profile(path)
    (broker,) = profile.brokers
    assert broker.transaction_check_max == 3 and broker.enable_property_filter
    assert broker.message_delay_level == "1s 2s" and broker.broker_name == "broker-a"
    assert profile.namesrvs[0].order_message_enable
