"""A hostile peer cannot stop actormq from serving the real clients.

While a hostile client (``hostile.py``) sends garbage, absurd lengths, broken headers and wrong
fields to the name server and the broker, round after round, and holds idle and half-sent
connections open, ali-ons and the C++ client produce and consume as usual.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.interop import admin
from tests.interop.hostile import CASES, HostileClient, wait_rounds
from tests.interop.scenarios import (
    Driver,
    assert_intact,
    first_key,
    messages,
    running_cluster,
    wait_for_keys,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

ERROR_REPLY = re.compile(r"reply code ([1-9]\d*) \(same opaque, with remark\)")


def test_real_clients_are_served_while_a_hostile_client_attacks(
    ons: Driver, cpp: Driver, tmp_path: pathlib.Path
) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        broker = cluster.masters["broker-a"]
        # Given a hostile client hammering the name server and the broker
        hostile = HostileClient([cluster.namesrv, broker], max_rounds=500)
        hostile.start()
        try:
            wait_rounds(hostile, 1, timeout=60)
            # When ali-ons and the C++ client produce to one topic, and a consumer of each
            # client (two groups) consumes it, all while the attack goes on
            topic = "InteropUnderAttack"
            ons.prepare_topic(cluster, topic)
            sent = ons.produce(cluster, topic, 20, ["TagA", "TagB"], "onsatk")
            sent += cpp.produce(cluster, topic, 20, ["TagA", "TagB"], "cppatk")
            admin.wait_route(cluster.namesrv, topic, cluster.masters)
            keys = {first_key(e) for e in sent}
            with (
                ons.consumer(cluster, topic, "interop_attack_ons", "*", "ons-consumer") as c1,
                cpp.consumer(cluster, topic, "interop_attack_cpp", "*", "cpp-consumer") as c2,
            ):
                # Then each group receives all 40 messages intact
                wait_for_keys(ons, [c1], keys, 60, "all messages on the ali-ons consumer")
                wait_for_keys(cpp, [c2], keys, 60, "all messages on the C++ consumer")
                for consumer in (c1, c2):
                    received = [m for m in messages(consumer) if first_key(m) in keys]
                    assert_intact(sent, received)
            wait_rounds(hostile, hostile.report.rounds + 1, timeout=60)
        finally:
            report = hostile.stop()

        # And every readable bad request got an error reply naming its reason, and every
        # unframeable stream was closed
        outcomes = {name: dict(counts) for name, counts in report.outcomes.items()}
        assert report.rounds >= 2, outcomes
        for case in CASES:
            seen = outcomes[case.name]
            if case.readable:
                assert all(ERROR_REPLY.fullmatch(o) for o in seen), (case.name, seen)
            elif case.name in ("header not json", "header a json list"):
                # Known: a frame whose header cannot be parsed at all gets no reply (its opaque
                # is unknown) and the connection stays open (Java closes it); see
                # docs/interop.md. Either is fine here, only not a success.
                assert not any(o.startswith("reply code 0") for o in seen), (case.name, seen)
            else:
                assert set(seen) <= {"closed", "reply code 1 (other opaque, with remark)"}, (
                    case.name,
                    seen,
                )
        # And the broker still answers afterwards
        assert admin.route(cluster.namesrv, topic)
