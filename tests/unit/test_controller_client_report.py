"""What a controller-mode master reports as acknowledged (``ControllerHeartbeat.confirmed``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from actors.broker.controller_client import ControllerClient


def opened(sync_flush: bool, flushed: int) -> SimpleNamespace:
    return SimpleNamespace(
        settings=SimpleNamespace(sync_flush=sync_flush),
        log=SimpleNamespace(segments=SimpleNamespace(flushed_offset=flushed)),
    )


@pytest.mark.parametrize(("sync_flush", "expected"), [(True, 800), (False, 900)])
def test_confirmed_is_what_was_acknowledged_or_shown(sync_flush: bool, expected: int) -> None:
    # Given a master whose slaves acked up to 900 (HAState.visible) while its own fsync
    # reached 800: under SYNC_FLUSH no PUT_OK and no consumer went past 800, under ASYNC_FLUSH
    # past it
    client = SimpleNamespace(state=SimpleNamespace(visible=900))
    # Then it reports that much (a power loss under SYNC_FLUSH takes nothing acknowledged)
    assert ControllerClient._confirmed(client, opened(sync_flush, 800)) == expected  # type: ignore[arg-type]
    assert ControllerClient._confirmed(client, None) == 900  # type: ignore[arg-type]
