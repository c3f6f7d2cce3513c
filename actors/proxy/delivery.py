"""Delivery: one message a RocketMQ 5 consumer received through the proxy and has not acked
(``actors.proxy.pop``); ``message_group``: what a FIFO group hands out one batch at a time."""

from __future__ import annotations

from actors.client.message import MessageExt
from actors.proxy.lite import LMQ_PREFIX
from runtime.remoting import properties as P
from runtime.store.topic_names import split_lmq

MAX_RENEW_S = 3 * 3600.0
"""How long an auto-renewed delivery stays invisible at most (then it is handed out again)."""


def message_group(msg: MessageExt, topic: str) -> tuple[str, str] | None:
    """(topic, message group) of a message a FIFO group hands out one batch at a time: its
    sharding key, or a lite topic's (its queue topic is one message group); None: not held."""
    if topic.startswith(LMQ_PREFIX):
        return topic, ""
    key = msg.all_properties.get(P.SHARDING_KEY)
    return (topic, key) if key else None


def of_topic(msg: MessageExt, topic: str) -> bool:
    """Whether ``msg`` is of ``topic``: its own, or a lite topic's queue of ``topic`` (a call
    naming a delivery's handle must name its topic: a handle of one topic cannot ack, nack or
    dead-letter a message of another)."""
    if msg.topic == topic:
        return True
    lite = split_lmq(msg.topic)
    return lite is not None and lite[0] == topic


class Delivery:
    """One message handed to a gRPC consumer and not acked yet."""

    __slots__ = (
        "attempt",
        "deadline",
        "generation",
        "handle",
        "holder",
        "invisible_s",
        "msg",
        "since",
        "topic",
    )

    def __init__(
        self,
        msg: MessageExt,
        topic: str,
        handle: str,
        attempt: int,
        since: float,
        invisible_s: float,
        holder: str | None = None,
    ) -> None:
        self.msg = msg
        self.topic = topic
        self.handle = handle
        self.attempt = attempt
        self.since = since
        """When it was handed out (``clock`` time)."""
        self.invisible_s = invisible_s
        self.deadline = since + invisible_s
        """When it is visible again (moved on by renewals, a failed dead-letter send)."""
        self.generation = 0
        """The topic's subscription it came from (``PopGroup._generation``)."""
        self.holder = holder
        """The client id of a receive with ``auto_renew`` (a push consumer): renewed while
        that client is alive, up to ``MAX_RENEW_S``; None: never renewed."""
