"""How many queues one topic may have: the broker's ``maxTopicQueueNums`` (1024 by default).

RocketMQ sets no limit. Here a topic made with 2^31 queues (UPDATE_AND_CREATE_TOPIC took any
positive Int32) once made one GET_TOPIC_STATS_INFO walk every queue, keeping the broker busy
for hours. Every path that sizes a topic keeps to the limit: UPDATE_AND_CREATE_TOPIC and a
group's ``retryQueueNums`` (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP) beyond it are refused with
INVALID_PARAMETER; a topic auto-created on send (the producer's ``defaultTopicQueueNums``, the
default topic's queues) and a group's retry topic (its first heartbeat or send-back) are cut
to it.
"""

from __future__ import annotations


def queue_nums_problem(read_queue_nums: int, write_queue_nums: int, limit: int) -> str | None:
    """Why a topic may not have these queue counts, or None."""
    if read_queue_nums <= 0 or write_queue_nums <= 0:
        return "readQueueNums and writeQueueNums must be > 0"
    if read_queue_nums > limit or write_queue_nums > limit:
        return (
            f"readQueueNums ({read_queue_nums}) and writeQueueNums ({write_queue_nums}) must be "
            f"at most {limit} (the broker's maxTopicQueueNums)"
        )
    return None


def capped(queue_nums: int, limit: int) -> int:
    """``queue_nums`` brought into 1..limit (a topic the broker creates by itself)."""
    return max(1, min(queue_nums, limit))
