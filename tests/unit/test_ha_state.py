"""HAState's in-sync rules: classic mode by lag alone; controller mode also by catching up
within ``not_catchup_s`` and, to join, by holding ``visible``."""

from __future__ import annotations

from runtime.ha.state import HAState, Role, SlaveLink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(*, controller: bool, sync: bool = False) -> tuple[HAState, Clock]:
    clock = Clock()
    s = HAState(
        node_id=0,
        role=Role.MASTER,
        sync=sync,
        controller_mode=controller,
        fallbehind_max=1000,
        not_catchup_s=15.0,
        clock=clock,
    )
    return s, clock


def test_classic_mode_counts_any_linked_slave_within_the_lag_limit() -> None:
    s, _clock = state(controller=False)
    s.visible = 900
    link = SlaveLink("urn", 10, now=0.0)  # behind what consumers saw, stale catch-up time
    assert s.counts_in_sync(1, link, end=1000)
    assert not s.counts_in_sync(1, link, end=1010)  # 1000 behind: over the limit
    link.connected = False
    assert not s.counts_in_sync(1, link, end=20)


def test_controller_mode_joins_only_at_visible_and_then_stays() -> None:
    s, clock = state(controller=True)
    s.visible = 500
    link = SlaveLink("urn", 499, now=clock.now)
    assert not s.counts_in_sync(1, link, end=600)
    link.acked = 500
    assert s.counts_in_sync(1, link, end=600)
    # once a member, it stays while it keeps catching up, even behind a later visible
    link.joined = True
    s.visible = 800
    assert s.counts_in_sync(1, link, end=900)


def test_a_slave_that_stops_catching_up_drops_out_after_not_catchup_s() -> None:
    s, clock = state(controller=True)
    link = SlaveLink("urn", 0, target=0, now=clock.now)
    s.slaves[1] = link
    s.in_sync = frozenset({1})
    # Given the log grows and the slave reports nothing more
    s.note_catch_up(end=100)  # it held the previous target (0): caught up now
    clock.now += 10
    s.note_catch_up(end=200)  # it did not reach 100
    assert s.counts_in_sync(1, link, end=200)
    clock.now += 6  # 16 s since it last caught up
    s.note_catch_up(end=300)
    assert not s.counts_in_sync(1, link, end=300)
    # When it reaches the previous check's target, Then it is caught up again
    link.acked = 300
    s.note_catch_up(end=300)
    assert s.counts_in_sync(1, link, end=300)


def test_async_shows_appends_at_once_only_with_nobody_to_wait_for() -> None:
    s, _ = state(controller=True)
    assert s.shows_appends_at_once()
    s.joining = frozenset({2})
    assert not s.shows_appends_at_once()
    s.joining = frozenset()
    s.isr_acknowledged = frozenset({2})  # the controller still believes 2 in sync
    assert not s.shows_appends_at_once()
    sync, _ = state(controller=True, sync=True)
    assert not sync.shows_appends_at_once()


def test_membership_belongs_to_the_link_not_the_node_id() -> None:
    s, clock = state(controller=True)
    s.visible = 500
    old = SlaveLink("old", 500, now=clock.now)
    old.joined = True
    s.in_sync = frozenset({1})
    # When node 1 links again (a replaced store) before its old link was seen to close
    new = SlaveLink("new", 0, now=clock.now)
    # Then the new link is not in sync until it holds visible, although node 1 still is
    assert s.counts_in_sync(1, old, end=600)
    assert not s.counts_in_sync(1, new, end=600)


def test_all_ack_needs_every_slave_the_controller_may_elect() -> None:
    # Given a controller-mode master (node 0) whose controller counts slaves 1 and 2 in sync,
    # while the master itself sees only 1 in sync now (2 just fell behind)
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    state.isr_acknowledged = frozenset({0, 1, 2})
    state.in_sync = frozenset({1})
    # Then under allAckInSyncStateSet both must hold a record (the controller may elect 2
    # until it hears the set shrank), while one ack counts only from a slave in both sets
    assert state.all_ack_set() == {1, 2}
    assert state.electable_acks() == {1}
    # And in classic mode the master's own in-sync set decides
    classic = HAState(node_id=0, role=Role.MASTER, sync=True)
    classic.in_sync = frozenset({1, 3})
    assert classic.all_ack_set() == {1, 3}


def test_all_ack_also_waits_for_a_slave_the_controller_is_about_to_count() -> None:
    # Given a controller-mode master whose slave 2 just joined its in-sync set (it held
    # visible) but whose controller has not heard of it yet (isr_acknowledged: only 1)
    state = HAState(node_id=0, role=Role.MASTER, sync=True, controller_mode=True)
    state.isr_acknowledged = frozenset({1})
    state.in_sync = frozenset({1, 2})
    # Then under allAckInSyncStateSet slave 2 must hold a record too: the heartbeat carrying
    # {1, 2} makes 2 electable, and a PUT_OK given on 1's ack alone meanwhile may be missing
    # on it (RocketMQ 5 waits for the union of its local and the controller's set while the
    # change is being synchronized)
    assert state.all_ack_set() == {1, 2}
    # And when 2 left the master's set again while a heartbeat naming it may still be taken
    # by the controller, 2 is still waited for until a reply says what the controller holds
    state.isr_reported = frozenset({1, 2})
    state.in_sync = frozenset({1})
    assert state.all_ack_set() == {1, 2}
    assert state.confirm_set() == {1, 2}
    state.isr_reported = frozenset()
    assert state.all_ack_set() == {1}


def test_classic_all_ack_stops_waiting_for_a_slave_that_stopped_catching_up() -> None:
    # Given a classic-mode SYNC_MASTER with two linked slaves within the lag limit: 1 keeps
    # up, 3 keeps its link and reports but falls further behind (a slow disk)
    s, clock = state(controller=False, sync=True)
    fast = SlaveLink("a", 0, target=0, now=clock.now)
    slow = SlaveLink("b", 0, target=0, now=clock.now)
    s.slaves = {1: fast, 3: slow}
    s.in_sync = frozenset({1, 3})
    assert s.all_ack_set() == {1, 3}
    for end in range(100, 1000, 100):
        clock.now += 2.0
        fast.acked = end - 100  # held the previous tick's end
        slow.acked += 1
        s.note_catch_up(end)
    # Then once 3 has not caught up for haMaxTimeSlaveNotCatchup (as controller mode drops
    # it from the in-sync set) PUT_OKs stop waiting for it, instead of every send getting
    # FLUSH_SLAVE_TIMEOUT until it is haSlaveFallbehindMax (256 MiB) behind; consumers still
    # wait for it (it is still in sync for the confirm set)
    assert s.counts_in_sync(3, slow, end=900)
    assert s.all_ack_set() == {1}
    assert s.confirm_set() == {1, 3}


def test_classic_all_ack_does_not_wait_for_a_slave_that_relinked_far_behind() -> None:
    # Given a classic-mode SYNC_MASTER whose slave 1 keeps up, and whose slave 3 links again
    # (a restart) far behind the master's end (its HELLO at 0, the log at 900)
    s, clock = state(controller=False, sync=True)
    fast = SlaveLink("a", 900, target=900, now=clock.now)
    back = SlaveLink("b", 0, target=900, now=clock.now)
    s.slaves = {1: fast, 3: back}
    s.in_sync = frozenset({1, 3})  # (classic mode: within the lag limit)
    # Then PUT_OKs do not wait for 3 until it has caught up: its link beginning is no catch-up
    # (every send got FLUSH_SLAVE_TIMEOUT for haMaxTimeSlaveNotCatchup after a slave restart)
    assert s.all_ack_set() == {1}
    clock.now += 0.05
    back.acked = 500
    s.note_catch_up(end=950)  # still short of the previous check's end (900)
    assert s.all_ack_set() == {1}
    # When it holds what the master had written at the previous check, Then it counts again
    clock.now += 0.05
    back.acked = fast.acked = 950
    s.note_catch_up(end=1000)
    assert s.all_ack_set() == {1, 3}
