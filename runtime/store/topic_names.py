"""Topic names as the store sees them: what a legal name is, and the topics it reserves.

``topic_problem`` is RocketMQ's TopicValidator (at most 127 characters of ``[%|a-zA-Z0-9_-]``);
``reserved_problem`` refuses legal names a client may still not create or send to.
``SCHEDULE_TOPIC`` holds delayed messages until their time (one queue per delay level);
``TOPIC_DELETED_MARKER`` is the topic of the store's deletion markers.
"""

from __future__ import annotations

import re
from functools import lru_cache

TOPIC_MAX_LENGTH = 127
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"
TOPIC_DELETED_MARKER = "rmq_sys_TOPIC_DELETED"
"""The topic of deletion markers (``runtime.store.fences``): never a client's topic (the
TopicConfig refuses to create it and the writer refuses client records for it)."""

_TOPIC_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")
LMQ_PREFIX = "%LMQ%"
"""RocketMQ's light message queues: their names may also hold ``$`` (a lite topic's queue is
``%LMQ%$<parent>$<lite topic>``, made by actormq's gRPC proxy)."""
_LMQ_RE = re.compile(r"^%LMQ%[%|$a-zA-Z0-9_-]+$")
LITE_QUEUE_PREFIX = LMQ_PREFIX + "$"
"""A lite topic's queue topic: ``%LMQ%$<parent>$<lite topic>``."""


def split_lmq(topic: str) -> tuple[str, str] | None:
    """(parent, lite topic) of a lite topic's queue topic; None for any other topic."""
    if not topic.startswith(LITE_QUEUE_PREFIX):
        return None
    parent, sep, lite = topic[len(LITE_QUEUE_PREFIX) :].rpartition("$")
    return (parent, lite) if sep and parent and lite else None


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` is not a legal topic name (RocketMQ's TopicValidator), or None."""
    if not topic:
        return "topic is empty"
    if len(topic) > TOPIC_MAX_LENGTH:
        return f"topic is longer than {TOPIC_MAX_LENGTH} characters"
    if not _TOPIC_RE.match(topic) and not _LMQ_RE.match(topic):
        return f"topic {topic!r} contains characters other than [%|a-zA-Z0-9_-]"
    return None


@lru_cache(maxsize=1024)
def reserved_problem(topic: str) -> str | None:
    """Why a client may not create or send to ``topic`` although its name is legal, or None."""
    if topic == TOPIC_DELETED_MARKER:
        return f"topic {topic} is reserved for the store's deletion markers"
    return None
