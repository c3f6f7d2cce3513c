"""actors/proxy/lite_expiry.py: which lite topics an expiry check deletes, over a fake Admin."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from actors.client.errors import ClientError
from actors.proxy.lite import LiteTopics, TopicTypes, lmq_name
from actors.proxy.lite_expiry import LiteExpiry

MINUTE_MS = 60_000
NOW = 1_000_000_000_000


class FakeAdmin:
    def __init__(self) -> None:
        self.topics: dict[str, int] = {}
        """Topic -> its last store time (ms; 0: no message yet)."""
        self.attributes: dict[str, dict[str, str]] = {}
        self.deleted: list[str] = []
        self.down = False

    def topic_list(self) -> list[str]:
        if self.down:
            raise ClientError("name server unreachable")
        return sorted(self.topics)

    def topic_stats(self, topic: str) -> list[Any]:
        return [SimpleNamespace(last_update_ms=self.topics[topic])]

    def delete_topic(self, topic: str) -> list[str]:
        self.deleted.append(topic)
        del self.topics[topic]
        return ["broker"]

    def masters(self) -> dict[str, str]:
        return {"broker-a": "addr"}

    def topic_config(self, topic: str, address: str) -> Any:
        return SimpleNamespace(attributes=self.attributes.get(topic, {}))


def _expiry(admin: FakeAdmin, in_use: set[str] | None = None) -> tuple[LiteExpiry, LiteTopics]:
    lites = LiteTopics(admin)  # type: ignore[arg-type]
    types = TopicTypes(admin)  # type: ignore[arg-type]
    used = in_use or set()
    return LiteExpiry(admin, types, lites, used.__contains__, now_ms=lambda: NOW), lites  # type: ignore[arg-type]


def test_idle_lite_topics_past_their_parents_expiration_are_deleted() -> None:
    admin = FakeAdmin()
    admin.attributes["Chats"] = {"message.type": "LITE", "lite.topic.expiration": "10"}
    admin.attributes["Forever"] = {"message.type": "LITE"}
    old, fresh = lmq_name("Chats", "old"), lmq_name("Chats", "fresh")
    kept = lmq_name("Forever", "old")
    admin.topics = {
        old: NOW - 11 * MINUTE_MS,
        fresh: NOW - 9 * MINUTE_MS,
        kept: NOW - 10_000 * MINUTE_MS,
        "Chats": NOW - 11 * MINUTE_MS,  # the parent itself is never deleted
    }
    expiry, _ = _expiry(admin)
    assert expiry.run() == [old]
    assert admin.deleted == [old]


def test_a_subscribed_lite_topic_is_kept_however_idle() -> None:
    admin = FakeAdmin()
    admin.attributes["Chats"] = {"lite.topic.expiration": "1"}
    name = lmq_name("Chats", "s1")
    admin.topics = {name: NOW - 60 * MINUTE_MS}
    expiry, _ = _expiry(admin, in_use={name})
    assert expiry.run() == []


def test_a_lite_topic_without_messages_ages_from_when_this_proxy_made_it() -> None:
    admin = FakeAdmin()
    admin.attributes["Chats"] = {"lite.topic.expiration": "5"}
    mine, unknown = lmq_name("Chats", "mine"), lmq_name("Chats", "other")
    admin.topics = {mine: 0, unknown: 0}
    expiry, lites = _expiry(admin)
    lites.made_at[mine] = NOW - 6 * MINUTE_MS
    assert expiry.run() == [mine]  # the other proxy's (or a restart's) is kept
    assert mine not in lites.made_at


def test_an_unreachable_cluster_ends_the_check_quietly() -> None:
    admin = FakeAdmin()
    admin.down = True
    expiry, _ = _expiry(admin)
    assert expiry.run() == []
