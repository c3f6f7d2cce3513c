"""Topic names as the store sees them: what a legal name is, and the topics it reserves.

``topic_problem`` is RocketMQ's TopicValidator (at most 127 characters of ``[%|a-zA-Z0-9_-]``);
``reserved_problem`` refuses legal names a client may still not create or send to;
``send_forbidden`` the topics only the broker itself writes (RocketMQ's
``TopicValidator.isNotAllowedSendTopic``, and the timer topic); ``is_system_topic`` is
RocketMQ's ``TopicValidator.isSystemTopic`` (its gRPC proxy refuses every such topic).
``SCHEDULE_TOPIC`` holds delayed messages until their time (one queue per delay level);
``TOPIC_DELETED_MARKER`` is the topic of the store's deletion markers.
"""

from __future__ import annotations

import re
from functools import lru_cache

TOPIC_MAX_LENGTH = 127
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"
TIMER_TOPIC = "rmq_sys_wheel_timer"
"""Timer messages until their due time (RocketMQ 5's ``TimerMessageStore.TIMER_TOPIC``)."""
TOPIC_DELETED_MARKER = "rmq_sys_TOPIC_DELETED"
"""The topic of deletion markers (``runtime.store.fences``): never a client's topic (the
TopicConfig refuses to create it and the writer refuses client records for it)."""

NOT_ALLOWED_SEND_TOPICS = frozenset(
    {
        SCHEDULE_TOPIC,
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        "SELF_TEST_TOPIC",
        "OFFSET_MOVED_EVENT",
    }
)
"""RocketMQ's ``TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET``: topics no client may send to (the
broker answers NO_PERMISSION)."""
SEND_FORBIDDEN_TOPICS = NOT_ALLOWED_SEND_TOPICS | {TIMER_TOPIC}
"""Those, and the timer topic: RocketMQ 5 stores a client's message to it as a timer record
already parked, past the timer checks (``timerWheelEnable``, the 3-day limit); actormq refuses
it as the others."""
SYSTEM_TOPIC_PREFIX = "rmq_sys_"
SYSTEM_TOPICS = frozenset(
    {
        "TBW102",
        SCHEDULE_TOPIC,
        "BenchmarkTest",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRACE_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        "SELF_TEST_TOPIC",
        "OFFSET_MOVED_EVENT",
    }
)
"""RocketMQ's ``TopicValidator.SYSTEM_TOPIC_SET``; every ``rmq_sys_`` topic is one too."""

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


def send_forbidden(topic: str) -> str | None:
    """RocketMQ's remark refusing a client's send to ``topic`` (answered with NO_PERMISSION),
    or None when a client may send to it."""
    if topic in SEND_FORBIDDEN_TOPICS:
        return f"Sending message to topic[{topic}] is forbidden."
    return None


def is_system_topic(topic: str) -> bool:
    """RocketMQ's ``TopicValidator.isSystemTopic``."""
    return topic in SYSTEM_TOPICS or topic.startswith(SYSTEM_TOPIC_PREFIX)
