"""actors.broker.store_figures: the store's part of GET_BROKER_RUNTIME_INFO."""

from __future__ import annotations

import pytest

from actors.broker.store_figures import _human

pytestmark = pytest.mark.timeout(10)


def test_unflushed_bytes_read_as_rocketmq_prints_them() -> None:
    assert [_human(n) for n in (0, 1023, 1536, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
    ]
