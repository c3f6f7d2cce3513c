"""A benchmark's topic on every master of the cluster, as ``mqadmin updateTopic -c`` leaves it.

A producer's first send auto-creates a topic on one broker group only. Against a cluster of
several groups the latency benchmark then loses messages: its consumer (ConsumeFrom.LAST)
starts a group's queues at their end when it learns of them, after messages went there.
``on_every_master`` creates the topic (UPDATE_AND_CREATE_TOPIC) on each master whose group the
route does not list yet, with as many queues as the groups that have it (else ``queues``), and
waits until the name server's route lists every group. A group that already has the topic is
left as it is, so a single-group cluster sees no request at all once the topic exists.
"""

from __future__ import annotations

import time

from actors.client import Admin, BrokerError
from runtime.remoting.bodies import TopicRouteData
from runtime.remoting.codes import ResponseCode

DEFAULT_QUEUES = 4
"""Queues per group of a topic nobody created yet: what a producer's first send creates."""


def on_every_master(
    namesrv: str,
    topic: str,
    *,
    queues: int = DEFAULT_QUEUES,
    timeout: float = 15.0,
    tls: bool = False,
) -> list[str]:
    """Create ``topic`` on every master that lacks it; wait until the route lists every group.
    Returns the broker names it created the topic on. Raises TimeoutError after ``timeout`` s."""
    with Admin(namesrv=namesrv, tls=tls) as admin:
        masters = admin.masters()
        route = _route(admin, topic)
        present = _groups(route)
        missing = {name: address for name, address in masters.items() if name not in present}
        if route is not None and route.queue_datas:
            queues = max(q.write_queue_nums for q in route.queue_datas)
        for address in missing.values():
            admin.create_topic(topic, broker_addr=address, queues=queues)
        deadline = time.monotonic() + timeout
        while not set(masters) <= present:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"topic {topic}: the route lists {sorted(present)}, not {sorted(masters)}"
                )
            time.sleep(0.1)
            present = _groups(_route(admin, topic))
        return sorted(missing)


def _route(admin: Admin, topic: str) -> TopicRouteData | None:
    try:
        return admin.topic_route(topic)
    except BrokerError as exc:
        if exc.code == ResponseCode.TOPIC_NOT_EXIST:
            return None
        raise


def _groups(route: TopicRouteData | None) -> set[str]:
    """The broker groups the route lists with queues."""
    return set() if route is None else {q.broker_name for q in route.queue_datas}
