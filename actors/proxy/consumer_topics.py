"""The topics a consumer's telemetry Settings subscribe its group's ``PopGroup`` to, bounded.

A Settings may name any number of topics (one gRPC message of up to 8 MiB: ~100,000), and the
group's consumer pulls each it subscribes: its heartbeats list them, each rebalance looks
their routes up, and they stay for the group's life. So:

- a Settings naming more than ``MAX_GROUP_TOPICS`` topics is refused (BAD_REQUEST), as is one
  whose new topics would take its group past that many (its clients' subscriptions add up);
- a topic new to the group that does not exist (the name server says TOPIC_NOT_FOUND) is not
  subscribed: the Settings is answered as usual (RocketMQ's proxy refuses such a topic where
  the client uses it: its route, a receive), and a receive of it once it exists subscribes it
  (``actors.proxy.receiving``). The look-up costs one name-server call per new topic; when it
  fails otherwise (name servers unreachable) the topic is subscribed, as before. The new
  topics are looked up ``LOOKUPS_AT_ONCE`` at a time, all within ``LOOKUP_BUDGET_S`` (a topic
  not answered by then is subscribed, as when the name servers cannot be reached): the
  Settings is answered on the stream's reader within the client's wait for it (RocketMQ 5's
  clients wait ~3 s), where hundreds of new topics looked up one after another took longer.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any

from actors.client.errors import ClientError
from actors.client.pull import subscription
from actors.proxy.convert import filter_of, resource_name
from actors.proxy.lite import LiteError
from actors.proxy.proto import Code

MAX_GROUP_TOPICS = 1000
"""Topics one consumer group subscribes through one proxy's Settings at most."""
LOOKUPS_AT_ONCE = 16
"""Name-server look-ups of one Settings' new topics under way at once."""
LOOKUP_BUDGET_S = 2.0
"""The most one Settings' look-ups take in all (its client waits ~3 s for the answer)."""
Route = Callable[[str], Any]
CodeOf = Callable[[ClientError], int]


def subscribe_topics(
    pop: Any,
    entries: Iterable[Any],
    route: Route,
    code_of: CodeOf,
) -> None:
    """Subscribe ``pop`` as a consumer's Settings say (``entries``: its
    ``SubscriptionEntry``s); ``route`` looks a topic's route up (raising ClientError),
    ``code_of`` the ``Code`` of such an error. Raises LiteError (BAD_REQUEST,
    ILLEGAL_FILTER_EXPRESSION) and subscribes nothing when the Settings cannot be taken."""
    wanted: dict[str, tuple[str, str | None]] = {}
    for entry in entries:
        wanted[resource_name(entry.topic)] = filter_of(entry.expression)
        if len(wanted) > MAX_GROUP_TOPICS:
            text = f"more than {MAX_GROUP_TOPICS} topics subscribed"
            raise LiteError(Code.BAD_REQUEST, text)
    for tags, sql in set(wanted.values()):
        try:
            subscription(tags, sql)
        except ClientError as exc:  # (an expression that cannot be read)
            raise LiteError(Code.ILLEGAL_FILTER_EXPRESSION, str(exc)[:300]) from None
    unknown = [t for t in wanted if t not in pop.expressions]
    new = set(unknown) - _missing_topics(unknown, route, code_of)
    if len(pop.expressions) + len(new) > MAX_GROUP_TOPICS:
        text = (
            f"the group would subscribe more than {MAX_GROUP_TOPICS} topics "
            f"({len(pop.expressions)} already)"
        )
        raise LiteError(Code.BAD_REQUEST, text)
    for topic, (tags, sql) in wanted.items():
        if topic in pop.expressions or topic in new:
            pop.subscribe(topic, tags, sql)


def _missing_topics(topics: list[str], route: Route, code_of: CodeOf) -> set[str]:
    """Those of ``topics`` the name servers say do not exist, looked up ``LOOKUPS_AT_ONCE``
    at a time; one not answered within ``LOOKUP_BUDGET_S`` (of all the look-ups) counts as
    existing (its look-up goes on unwaited for, on its worker)."""
    if len(topics) <= 1:
        return {t for t in topics if _missing(t, route, code_of)}
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=min(LOOKUPS_AT_ONCE, len(topics)), thread_name_prefix="actormq-proxy-route"
    )
    try:
        asked = {pool.submit(_missing, t, route, code_of): t for t in topics}
        done, _ = concurrent.futures.wait(asked, timeout=LOOKUP_BUDGET_S)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {asked[future] for future in done if future.result()}


def _missing(topic: str, route: Route, code_of: CodeOf) -> bool:
    try:
        route(topic)
    except ClientError as exc:
        return code_of(exc) == Code.TOPIC_NOT_FOUND
    return False
