"""Offset commits name a group, topic and queue that can exist, as RocketMQ 5 checks them:
UPDATE_CONSUMER_OFFSET (15), a pull's commit flag (11), CLONE_GROUP_OFFSET (314)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.actors.broker_support import lone_broker, no_errors_logged
from tests.actors.test_broker_topic_limits import create_topic
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(30)


def commit(client: WireClient, group: str, topic: str, queue_id: int, offset: int = 5) -> Any:
    ext = {"consumerGroup": group, "topic": topic, "queueId": queue_id, "commitOffset": offset}
    return client.call(RequestCode.UPDATE_CONSUMER_OFFSET, ext)


def topics_of(client: WireClient, group: str) -> list[str]:
    got = client.call(RequestCode.QUERY_TOPICS_BY_CONSUMER, {"group": group})
    return list(json.loads(got.body)["topicList"])


def test_offsets_of_unknown_topics_groups_and_queues_are_refused(tmp_path: pathlib.Path) -> None:
    with lone_broker(tmp_path / "b") as client, no_errors_logged() as errors:
        # Given a topic T of 4 queues
        assert create_topic(client, "T", 4).code == ResponseCode.SUCCESS
        # When a group commits an offset of a topic the broker does not have
        got = commit(client, "g", "NoSuchTopic", 0)
        # Then it is refused, as RocketMQ 5 answers, and nothing is kept
        assert (got.code, got.remark) == (
            ResponseCode.TOPIC_NOT_EXIST,
            "Topic NoSuchTopic not exist!",
        )
        assert commit(client, "g", "bad topic!", 0).code == ResponseCode.TOPIC_NOT_EXIST
        # And a group of an illegal name does not exist
        for group in ["", "bad group!", "g" * 256]:
            got = commit(client, group, "T", 0)
            assert got.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, group
        # And a queue id outside the topic's read queues is refused
        for queue_id in [-5, 4, 2**31 - 1]:
            got = commit(client, "g", "T", queue_id)
            assert got.code == ResponseCode.INVALID_PARAMETER, queue_id
            assert "is illegal" in got.remark
        assert topics_of(client, "g") == []
        # And a pull with an illegal group (its commit flag set) is refused before committing
        pull = {
            "consumerGroup": "bad group!",
            "topic": "T",
            "queueId": 0,
            "queueOffset": 0,
            "maxMsgNums": 1,
            "sysFlag": 1 | 4,
            "commitOffset": 7,
            "suspendTimeoutMillis": 0,
            "subscription": "*",
            "subVersion": 0,
        }
        got = client.call(RequestCode.PULL_MESSAGE, pull)
        assert got.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
        # When a legal group commits for queue 3 of T, Then it is kept
        assert commit(client, "g", "T", 3).code == ResponseCode.SUCCESS
        assert topics_of(client, "g") == ["T"]
        # And cloning it to an illegal group is refused
        clone = {"srcGroup": "g", "destGroup": "bad group!", "topic": "T", "offline": True}
        got = client.call(RequestCode.CLONE_GROUP_OFFSET, clone)
        assert got.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
        assert topics_of(client, "bad group!") == []
        assert errors == []
