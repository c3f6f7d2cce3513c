"""The consume-queue half of ``Admin`` (a mixin; ``Admin`` supplies the transport): a look at a
consume queue's entries (``mqadmin queryCq``), each member's offsets as the consumers report
them (``mqadmin getConsumerStatus``), how far behind a group is in time, the brokers'
cleanups (``cleanExpiredCQ``, ``cleanUnusedTopic``) and resuming a half message's check-backs
(``resumeCheckHalfMessage``).
"""

from __future__ import annotations

from actors.client.admin_port import AdminPort
from actors.client.errors import ClientError
from runtime.errors import AddressError
from runtime.remoting.admin_bodies import (
    QueryConsumeQueueResponseBody,
    QueryConsumeTimeSpanBody,
    QueueTimeSpan,
)
from runtime.remoting.bodies import MessageQueue, decode_body
from runtime.remoting.codes import RequestCode
from runtime.remoting.queue_maps import parse_fastjson
from runtime.store.msg_id import decode_offset_msg_id


class QueueAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    def query_consume_queue(
        self,
        topic: str,
        queue_id: int,
        index: int,
        count: int = 10,
        *,
        group: str | None = None,
        broker_addr: str | None = None,
    ) -> QueryConsumeQueueResponseBody:
        """QUERY_CONSUME_QUEUE (321; ``mqadmin queryCq``): up to ``count`` entries of the
        consume queue from ``index`` on ``broker_addr`` (default: the topic's first master),
        with ``group``'s subscription and which entries it selects."""
        address = broker_addr or _first(self._route_masters(topic), topic)
        ext = {"topic": topic, "queueId": str(queue_id), "index": str(index), "count": str(count)}
        if group:
            ext["consumerGroup"] = group
        response = self._broker(address, RequestCode.QUERY_CONSUME_QUEUE, ext, "consume queue")
        return decode_body(QueryConsumeQueueResponseBody, response.body)

    def consume_time_span(self, group: str, topic: str) -> list[QueueTimeSpan]:
        """QUERY_CONSUME_TIME_SPAN (303) on the topic's masters: per queue the store times of
        its first and last message and of the group's position, and how long the next
        unconsumed message has waited."""
        spans: list[QueueTimeSpan] = []
        for address in self._route_masters(topic):
            response = self._broker(
                address,
                RequestCode.QUERY_CONSUME_TIME_SPAN,
                {"topic": topic, "group": group},
                "consume time span",
            )
            spans.extend(decode_body(QueryConsumeTimeSpanBody, response.body).consume_time_span_set)
        return sorted(spans, key=lambda s: s.message_queue)

    def consumer_status(
        self, group: str, topic: str, client_id: str | None = None
    ) -> dict[str, dict[MessageQueue, int]]:
        """INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223; ``mqadmin getConsumerStatus``) on the
        topic's masters: client id -> the offset each member reports for each queue of the
        topic it holds (only ``client_id`` when given), merged over the masters."""
        ext = {"topic": topic, "group": group}
        if client_id:
            ext["clientAddr"] = client_id
        merged: dict[str, dict[MessageQueue, int]] = {}
        for address in self._route_masters(topic):
            response = self._broker(
                address,
                RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
                ext,
                "consumer status",
                timeout=self.timeout * 3,
            )
            for member, queues in _consumer_table(response.body).items():
                merged.setdefault(member, {}).update(queues)
        return merged

    def clean_expired_consume_queues(
        self, *, cluster: str | None = None, broker_addr: str | None = None
    ) -> list[str]:
        """CLEAN_EXPIRED_CONSUMEQUEUE (306; ``mqadmin cleanExpiredCQ``) on one broker or every
        master (of ``cluster``): the addresses asked."""
        return self._everywhere(RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE, cluster, broker_addr)

    def clean_unused_topics(
        self, *, cluster: str | None = None, broker_addr: str | None = None
    ) -> list[str]:
        """CLEAN_UNUSED_TOPIC (316; ``mqadmin cleanUnusedTopic``): each master deletes the
        topics it holds queues of but has no config for. The addresses asked."""
        return self._everywhere(RequestCode.CLEAN_UNUSED_TOPIC, cluster, broker_addr)

    def resume_check_half_message(self, offset_msg_id: str) -> None:
        """RESUME_CHECK_HALF_MESSAGE (323; ``mqadmin resumeCheckHalfMessage``) on the broker
        that stored the half message: its check-backs start over (BrokerError when it is not
        an open or discarded half message there)."""
        try:
            where = decode_offset_msg_id(offset_msg_id)
        except AddressError as exc:
            raise ClientError(f"{offset_msg_id!r} is not an offset message id: {exc}") from None
        self._broker(
            f"{where.ip}:{where.port}",
            RequestCode.RESUME_CHECK_HALF_MESSAGE,
            {"msgId": offset_msg_id},
            "resume check half message",
        )

    def _everywhere(self, code: int, cluster: str | None, broker_addr: str | None) -> list[str]:
        addresses = self._targets(cluster, broker_addr)
        for address in addresses:
            self._broker(address, code, {}, RequestCode(code).name, timeout=self.timeout * 10)
        return addresses


def _first(masters: dict[str, str], topic: str) -> str:
    if not masters:
        raise ClientError(f"no master broker serves {topic}")
    return next(iter(masters))


def _consumer_table(body: bytes) -> dict[str, dict[MessageQueue, int]]:
    """A GetConsumerStatusBody's ``consumerTable`` (queue objects as keys)."""
    try:
        doc = parse_fastjson(body)
        table = doc.get("consumerTable") or {}
        out: dict[str, dict[MessageQueue, int]] = {}
        for member, queues in table.items():
            pairs = queues if isinstance(queues, list) else list(queues.items())
            out[member] = {
                MessageQueue(
                    topic=mq["topic"], broker_name=mq["brokerName"], queue_id=int(mq["queueId"])
                ): int(offset)
                for mq, offset in pairs
            }
        return out
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError) as exc:
        raise ClientError(f"a consumer status that does not decode: {exc}") from None
