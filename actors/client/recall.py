"""Recalling a timer message before it is due (RocketMQ 5's ``recallMessage``).

``recall_timer(producer, queue, msg_id, deliver_at_ms)`` sends a *recall marker* to the queue
the timer message was stored in: a timer message due at the same time carrying
``TIMER_DEL_UNIQKEY=<msg_id>``. The broker's timer (``actors.broker.timer_scheduler``) then
puts back neither: the message never reaches consumers. The marker is stored like any timer
message (so it survives a restart, and a promoted slave honours it); it must reach the broker
before the message is due: one arriving later is refused (MESSAGE_ILLEGAL), the message having
been delivered.
"""

from __future__ import annotations

from actors.client.errors import MessageInvalidError
from actors.client.message import Message, MessageQueue, SendResult
from actors.client.producer import Producer, _with_property
from actors.client.selectors import Selection
from runtime.remoting import properties as P

MARKER_BODY = b"recall"


def recall_timer(
    producer: Producer,
    queue: MessageQueue,
    msg_id: str,
    deliver_at_ms: int,
    *,
    timeout: float | None = None,
) -> SendResult:
    """Store the recall marker of timer message ``msg_id`` (its UNIQ_KEY), sent to ``queue``
    for ``deliver_at_ms``; the marker's SendResult. ClientError when it was not stored."""
    if not msg_id:
        raise MessageInvalidError("msg_id", "is empty")
    marker = Message(queue.topic, MARKER_BODY, deliver_at_ms=deliver_at_ms)
    out = _with_property(producer._prepare(marker, None), P.TIMER_DEL_UNIQKEY, msg_id)
    return producer._send_outgoing(out, Selection(queue=queue), timeout)
