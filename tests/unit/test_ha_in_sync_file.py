"""A classic SYNC_MASTER's in-sync file: what it names, when a slave that left is forgotten
(only once the log is fsync'd past what it may have acknowledged), and that a master waiting
after a power loss follows the file as the operator edits it."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace
from typing import Any

import pytest

from actors.broker.ha_messages import NewEpoch
from actors.broker.ha_reconcile import Reconciliation, suspect_power_cut
from actors.broker.messages import ClampOffsets
from runtime.ha import boot, in_sync_file
from runtime.ha.state import HAState, Role
from runtime.store.lockfile import create_abort

pytestmark = pytest.mark.timeout(30)


def test_the_file_round_trips_and_ignores_junk(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path)
    assert in_sync_file.load(root) == frozenset()
    in_sync_file.save(root, [3, 1, 3])
    assert (tmp_path / in_sync_file.FILE).read_text() == "1\n3\n"
    assert in_sync_file.load(root) == {1, 3}
    (tmp_path / in_sync_file.FILE).write_text("2\n-4\nslave\n\n7")
    assert in_sync_file.load(root) == {2, 7}


def power_lost(store: pathlib.Path) -> None:
    """The store stopped uncleanly (its abort marker) on an earlier boot of the machine."""
    create_abort(str(store))
    (store / boot.FILE).write_text("an-earlier-boot\n")


class FakeHA:
    """What a Reconciliation reads of its HAContext: the state, the store's root and log."""

    def __init__(self, root: str, state: HAState) -> None:
        self.state = state
        self.service = "broker-a/0/ha-service"
        self.log = SimpleNamespace(write_offset=0, segments=SimpleNamespace(flushed_offset=0))
        opened = SimpleNamespace(settings=SimpleNamespace(root=root), log=self.log)
        names = SimpleNamespace(offsets="broker-a/0/store/consumer-offsets")
        self.store = SimpleNamespace(require_open=lambda: opened, names=names)
        self.epochs = SimpleNamespace(last_epoch=0)
        self.on_writable = None
        self.reconcile_wait_s = 30.0
        self.cleared = 0
        self.told: list[tuple[str, Any]] = []

    def clear_power_cut(self) -> None:
        self.cleared += 1

    def tell(self, name: str, message: Any) -> None:
        self.told.append((name, message))


def reconciliation(tmp_path: pathlib.Path, **state_kw: Any) -> tuple[Reconciliation, FakeHA]:
    state = HAState(node_id=0, role=Role.MASTER, sync=True, **state_kw)
    ha = FakeHA(str(tmp_path), state)
    return Reconciliation(ha), ha  # type: ignore[arg-type]


def test_a_slave_that_left_stays_listed_until_the_log_is_fsynced_past_its_leaving(
    tmp_path: pathlib.Path,
) -> None:
    # Given a SYNC_MASTER whose slaves 1 and 2 joined the in-sync set at once
    rec, ha = reconciliation(tmp_path)
    rec.persist({1, 2})
    assert in_sync_file.load(str(tmp_path)) == {1, 2}
    # When slave 2 leaves it with the log written to 5,000 and fsync'd to 4,000
    ha.log.write_offset, ha.log.segments.flushed_offset = 5000, 4000
    rec.persist({1})
    rec.tick()
    # Then it stays listed (it may hold acked records the master's disk lacks) ...
    assert in_sync_file.load(str(tmp_path)) == {1, 2}
    # ... until the log is fsync'd past where it left
    ha.log.segments.flushed_offset = 5000
    rec.tick()
    assert in_sync_file.load(str(tmp_path)) == {1}
    # And one that comes back before that is simply listed again
    rec.persist(set())
    rec.persist({1})
    ha.log.segments.flushed_offset = 9000
    rec.tick()
    assert in_sync_file.load(str(tmp_path)) == {1}


def test_controller_mode_keeps_no_file_and_an_async_master_keeps_one(
    tmp_path: pathlib.Path,
) -> None:
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    Reconciliation(FakeHA(str(tmp_path), state)).persist({1})  # type: ignore[arg-type]
    assert not (tmp_path / in_sync_file.FILE).exists()
    # (an ASYNC_MASTER's slaves hold most of what it acknowledged: it waits for them a while)
    state = HAState(node_id=0, role=Role.MASTER, sync=False)
    Reconciliation(FakeHA(str(tmp_path), state)).persist({1})  # type: ignore[arg-type]
    assert in_sync_file.load(str(tmp_path)) == {1}


@pytest.mark.parametrize("wait_s", [0.0, 30.0])
def test_an_async_master_waits_for_its_slaves_only_as_long_as_configured(
    tmp_path: pathlib.Path, wait_s: float
) -> None:
    root = str(tmp_path)
    # Given an ASYNC_MASTER's store back from a power loss, slave 1 listed
    in_sync_file.save(root, [1])
    power_lost(tmp_path)
    state = HAState(node_id=0, role=Role.MASTER, sync=False)
    ha = FakeHA(root, state)
    ha.reconcile_wait_s = wait_s
    rec = Reconciliation(ha)  # type: ignore[arg-type]
    suspect_power_cut(state, root, sync_flush=False)
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch))
    if not wait_s:
        # Then with haReconcileWaitMillis 0 it takes writes at once, in a new epoch
        assert epochs == [1] and state.accepting_writes()
        return
    # Then it waits for slave 1 ...
    rec.tick()
    assert state.reconciling and rec.waiting == {1} and not epochs and not ha.told
    # ... until its wait runs out: then it takes writes without it, in a new epoch, its
    # consumer offsets past the end it kept lowered to it first (new messages take them)
    assert rec._deadline is not None
    rec._deadline -= wait_s
    rec.tick()
    assert epochs == [1] and not state.reconciling and state.accepting_writes()
    assert ha.told == [(ha.store.names.offsets, ClampOffsets())]


def test_a_master_back_from_a_power_loss_waits_for_the_listed_slaves_as_edited(
    tmp_path: pathlib.Path,
) -> None:
    root = str(tmp_path)
    # Given a SYNC_MASTER's store that stopped uncleanly on an earlier boot, slaves 1 and 2 listed
    in_sync_file.save(root, [1, 2])
    power_lost(tmp_path)
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)
    assert ha.state.power_cut and ha.state.reconciling
    assert not ha.state.accepting_writes() and ha.state.registrable()
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch) if isinstance(msg, NewEpoch) else None)
    assert rec.waiting == {1, 2}
    # When slave 1 returns, Then it still waits for slave 2
    rec.joined(1)
    assert ha.state.reconciling and not epochs
    # When the operator takes slave 2 off the list
    in_sync_file.save(root, [1])
    rec._loaded_at = float("-inf")  # (the tick re-reads the file once a second)
    rec.tick()
    # Then it starts a new epoch, clears the power-loss suspicion and takes writes
    assert epochs == [1] and ha.cleared == 1
    assert not ha.state.reconciling and ha.state.accepting_writes()


def test_a_sync_flush_store_or_one_killed_on_this_boot_is_not_suspected(
    tmp_path: pathlib.Path,
) -> None:
    root = str(tmp_path)
    create_abort(root)
    (tmp_path / boot.FILE).write_text(f"{boot.current_boot()}\n")
    state = HAState(node_id=0, role=Role.MASTER, sync=True)
    suspect_power_cut(state, root, sync_flush=False)
    assert state.power_cut is False and not state.reconciling
    # (a slave is never suspected here: it follows its master)
    slave = HAState(node_id=1, role=Role.SLAVE, sync=False)
    suspect_power_cut(slave, root, sync_flush=False)
    assert slave.power_cut is None


def test_a_service_that_failed_while_finishing_finishes_when_it_starts_again(
    tmp_path: pathlib.Path,
) -> None:
    root = str(tmp_path)
    # Given a master back from a power loss with slave 1 listed, and slave 1 back
    in_sync_file.save(root, [1])
    power_lost(tmp_path)
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)

    def broken(msg: NewEpoch) -> None:
        raise OSError("the epoch file cannot be written")

    rec.begin(broken)
    # When its new epoch cannot be written (the HAService fails)
    with pytest.raises(OSError):
        rec.joined(1)
    assert ha.state.reconciling
    # Then the restarted HAService finishes: a new epoch, the marker cleared, writes taken
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch))
    assert epochs == [1] and ha.cleared == 1
    assert not ha.state.reconciling and ha.state.accepting_writes()


def test_slaves_that_joined_while_it_reconciled_count_only_once_saved(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path)
    # Given a master back from a power loss waiting for slave 1, with slave 3 (not listed)
    # joined meanwhile
    in_sync_file.save(root, [1])
    power_lost(tmp_path)
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)
    rec.begin(lambda msg: None)
    ha.state.in_sync = frozenset({1, 3})

    def broken(root: str, nodes: Any) -> None:
        raise OSError(28, "No space left on device")

    # When slave 1 is back but the in-sync file cannot be written
    monkeypatch.setattr(in_sync_file, "save", broken)
    rec.joined(1)
    # Then it takes writes, but no slave counts for acks (the file names only slave 1)
    assert not ha.state.reconciling
    assert ha.state.in_sync == frozenset()
    assert in_sync_file.load(root) == {1}


def test_controller_mode_never_reconciles(tmp_path: pathlib.Path) -> None:
    # Given a store that stopped uncleanly on an earlier boot, with slave 1 listed
    root = str(tmp_path)
    in_sync_file.save(root, [1])
    power_lost(tmp_path)
    # When a controller-mode master starts on it
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    suspect_power_cut(state, root, sync_flush=False)
    rec = Reconciliation(FakeHA(root, state))  # type: ignore[arg-type]
    epochs: list[NewEpoch] = []
    rec.begin(epochs.append)
    rec.joined(1)
    rec.tick()
    # Then it neither reconciles nor starts an epoch of its own (its controller decides) and
    # leaves the power-loss check to its ControllerClient (not recorded here)
    assert not state.reconciling and state.power_cut is None and not epochs
    assert (tmp_path / boot.FILE).read_text() == "an-earlier-boot\n"


def test_a_master_writes_the_file_at_start_so_a_missing_one_means_an_older_version(
    tmp_path: pathlib.Path,
) -> None:
    # Given a classic master's store with no in-sync file, started cleanly
    rec, ha = reconciliation(tmp_path)
    rec.begin(lambda msg: None)
    # Then it writes one (empty): a later power loss finds it whatever happens next
    assert in_sync_file.exists(str(tmp_path)) and in_sync_file.load(str(tmp_path)) == set()
    assert not ha.state.reconciling


@pytest.mark.parametrize("back", [True, False], ids=["a-slave-back", "none-back"])
def test_after_an_upgrade_a_power_loss_waits_for_the_first_slave_back_for_a_while(
    tmp_path: pathlib.Path, back: bool
) -> None:
    root = str(tmp_path)
    # Given a SYNC_MASTER's store back from a power loss, last run by a version that kept no
    # in-sync file (which slaves its acks counted is unknown)
    power_lost(tmp_path)
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch))
    # Then it waits for whichever slave comes back first ...
    assert ha.state.reconciling and not epochs
    if back:
        # ... and reconciles from it (its tail fetched by the link before it joins)
        rec.joined(7)
    else:
        # ... for at most haReconcileWaitMillis
        assert rec._deadline is not None
        rec._deadline -= ha.reconcile_wait_s
        rec.tick()
    assert epochs == [1] and not ha.state.reconciling and ha.state.accepting_writes()


def test_an_unreadable_file_is_not_read_as_no_slave_to_wait_for(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path)
    # Given a SYNC_MASTER's store back from a power loss whose in-sync file is there but cannot
    # be read (an I/O error; here: a directory in its place)
    power_lost(tmp_path)
    (tmp_path / in_sync_file.FILE).mkdir()
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch))
    # Then it does not take writes at once as if no slave had been in sync (a slave holding
    # what it acknowledged would be cut back to its new epoch): it waits, as without the
    # file, for the first slave back
    assert ha.state.reconciling and not epochs
    rec.joined(4)
    assert epochs == [1] and not ha.state.reconciling


def test_a_file_that_becomes_unreadable_while_it_waits_keeps_it_waiting(
    tmp_path: pathlib.Path,
) -> None:
    root = str(tmp_path)
    # Given a SYNC_MASTER back from a power loss waiting for slave 1
    in_sync_file.save(root, [1])
    power_lost(tmp_path)
    rec, ha = reconciliation(tmp_path)
    suspect_power_cut(ha.state, root, sync_flush=False)
    epochs: list[int] = []
    rec.begin(lambda msg: epochs.append(msg.epoch))
    assert rec.waiting == {1}
    # When the file cannot be read at its next reload (an I/O error)
    (tmp_path / in_sync_file.FILE).unlink()
    (tmp_path / in_sync_file.FILE).mkdir()
    rec._loaded_at = float("-inf")
    rec.tick()
    # Then it still waits for slave 1 (it used to stop waiting for every slave: taken "off
    # the list")
    assert rec.waiting == {1} and ha.state.reconciling and not epochs
