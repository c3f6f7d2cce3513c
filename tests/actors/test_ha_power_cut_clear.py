"""``HAContext.clear_power_cut`` when the ``powercut`` marker cannot be removed (an OSError
other than FileNotFoundError): its callers are handlers (the HAClient's ACCEPT, the
ControllerClient's heartbeat reply), so it logs and goes on."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace
from typing import Any

from actors.broker.ha_service import HAContext
from runtime.ha import boot
from runtime.ha.epoch import EpochFile
from runtime.ha.state import HAState, Role


class OpenedStore:
    def __init__(self, root: pathlib.Path) -> None:
        self.settings = SimpleNamespace(root=str(root))

    def require_open(self) -> Any:
        return self


def test_a_power_cut_marker_that_cannot_be_removed_is_logged_not_raised(
    tmp_path: pathlib.Path,
) -> None:
    # Given a node suspected of a power loss whose marker cannot be removed (a directory
    # there: os.remove raises IsADirectoryError)
    (tmp_path / boot.MARKER).mkdir()
    state = HAState(node_id=1, role=Role.SLAVE, sync=False)
    state.power_cut = True
    store: Any = OpenedStore(tmp_path)
    ha = HAContext(store, state, EpochFile(str(tmp_path)), prefix="b")
    # When a master accepts its log, Then nothing is raised and it is no longer suspected
    ha.clear_power_cut()
    assert state.power_cut is False
