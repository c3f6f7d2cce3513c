"""The ``SendResult`` of a stored send, read from the broker's answer (RocketMQ's
``MQClientAPIImpl.processSendResponse``): the answer's extFields give the offset message id
(``msgId``), the queue and queue offset, the transaction id, and the broker's region and trace
switch (``MSG_REGION``: empty or absent reads as ``DefaultRegion``; ``TRACE_ON``: only the
text ``false`` turns it off). Also what an answer's code means: its ``SendStatus``
(``STATUS_BY_CODE``) or a retry (``RETRY_CODES``)."""

from __future__ import annotations

from collections.abc import Mapping

from actors.client.message import DEFAULT_REGION, MessageQueue, SendResult, SendStatus
from runtime.remoting import properties as P
from runtime.remoting.codes import ResponseCode

STATUS_BY_CODE = {
    ResponseCode.SUCCESS: SendStatus.SEND_OK,
    ResponseCode.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}
"""What a stored send's answer code means for its ``SendResult``."""
RETRY_CODES = frozenset(
    {
        ResponseCode.TOPIC_NOT_EXIST,
        ResponseCode.SERVICE_NOT_AVAILABLE,
        ResponseCode.SYSTEM_ERROR,
        ResponseCode.SYSTEM_BUSY,
        ResponseCode.NO_PERMISSION,
        ResponseCode.NO_BUYER_ID,
        ResponseCode.NOT_IN_CURRENT_UNIT,
    }
)
"""Answer codes a send is retried on (another broker when there is one), as RocketMQ's."""


def send_result(
    status: SendStatus, msg_id: str, mq: MessageQueue, ext: Mapping[str, str]
) -> SendResult:
    """``msg_id`` is the client's UNIQ_KEY; ``mq`` the queue the send went to (the answer's
    ``queueId`` wins when it names another one)."""
    try:
        queue_id = int(ext.get("queueId", mq.queue_id))
        queue_offset = int(ext.get("queueOffset", -1))
    except ValueError:
        queue_id, queue_offset = mq.queue_id, -1
    if queue_id != mq.queue_id:
        mq = MessageQueue(topic=mq.topic, broker_name=mq.broker_name, queue_id=queue_id)
    return SendResult(
        status=status,
        msg_id=msg_id,
        offset_msg_id=ext.get("msgId", ""),
        queue=mq,
        queue_offset=queue_offset,
        transaction_id=ext.get("transactionId"),
        region_id=ext.get(P.MSG_REGION) or DEFAULT_REGION,
        trace_on=ext.get(P.TRACE_ON) != "false",
    )
