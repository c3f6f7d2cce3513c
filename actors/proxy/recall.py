"""RecallMessage: RocketMQ 5's recall of a delayed message before it is due.

A delayed message's SendMessage answer carries a *recall handle*: the proxy's own encoding of
where the message waits (topic, broker, queue), its id and its due time, opaque to the client.
RecallMessage with it stores a recall marker on that queue (``actors.client.recall``): the
broker's timer then delivers neither. A message due within ``RECALL_MARGIN_MS`` (or past)
cannot be recalled any more: PRECONDITION_FAILED, as RocketMQ refuses a recall of a message
already delivered.
"""

from __future__ import annotations

import time
from typing import Any

from actors.client.errors import ClientError
from actors.client.message import MessageQueue
from actors.client.recall import recall_timer
from actors.proxy.convert import decode_handle, resource_name
from actors.proxy.proto import Code, M
from actors.proxy.service import ProxyService, error_code, status

RECALL_MARGIN_MS = 500
"""A recall must reach the broker this long before the message is due."""


def recall_message(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.RecallMessageResponse()
    handle = decode_handle(request.recall_handle)
    if handle is None or handle.topic != resource_name(request.topic):
        return status(response, Code.BAD_REQUEST, "not a recall handle of this topic")
    response.message_id = handle.msg_id
    if handle.due_ms - int(time.time() * 1000) < RECALL_MARGIN_MS:
        return status(response, Code.PRECONDITION_FAILED, "the message is due: delivered")
    queue = MessageQueue(topic=handle.topic, broker_name=handle.broker, queue_id=handle.queue_id)
    try:
        recall_timer(service.producer, queue, handle.msg_id, handle.due_ms)
    except ClientError as exc:
        return status(response, error_code(exc), str(exc))
    return status(response, Code.OK)
