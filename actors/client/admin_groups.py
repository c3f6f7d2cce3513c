"""The consumer-group half of ``Admin`` (a mixin; ``Admin`` supplies the transport): which
groups consume a topic, which topics a group consumes, copying a group's offsets.

Reads merge the answers of every master concerned (the topic's, or all of them); the copy asks
each master concerned and fails on the first refusal.
"""

from __future__ import annotations

from typing import Any

from actors.client.errors import ClientError
from runtime.remoting.bodies import (
    ConsumeMessageDirectlyResult,
    GroupList,
    TopicList,
    decode_body,
)
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.store.record import decode_offset_msg_id


class GroupAdmin:
    """Mixin of ``Admin``: needs ``masters()``, ``_route_masters(topic)`` and
    ``_broker(address, code, ext, what)``."""

    def masters(self, cluster: str | None = None) -> dict[str, str]:
        raise NotImplementedError

    def _route_masters(self, topic: str, route: Any = None) -> dict[str, str]:
        raise NotImplementedError

    def _broker(self, address: str, code: int, ext: dict[str, str], what: str) -> RemotingCommand:
        raise NotImplementedError

    def topic_consumers(self, topic: str) -> list[str]:
        """QUERY_TOPIC_CONSUME_BY_WHO (300) on the topic's masters: the groups online with a
        subscription to it or with committed offsets of it, sorted."""
        groups: set[str] = set()
        for address in self._route_masters(topic):
            response = self._broker(
                address, RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, {"topic": topic}, "who consumes"
            )
            groups.update(decode_body(GroupList, response.body).group_list)
        return sorted(groups)

    def consumer_topics(self, group: str) -> list[str]:
        """QUERY_TOPICS_BY_CONSUMER (343) on every master: the topics ``group`` committed
        offsets for, sorted."""
        topics: set[str] = set()
        for address in self.masters().values():
            response = self._broker(
                address, RequestCode.QUERY_TOPICS_BY_CONSUMER, {"group": group}, "group's topics"
            )
            topics.update(decode_body(TopicList, response.body).topic_list)
        return sorted(topics)

    def consume_message_directly(
        self, group: str, client_id: str, offset_msg_id: str
    ) -> ConsumeMessageDirectlyResult:
        """CONSUME_MESSAGE_DIRECTLY (309; ``mqadmin queryMsgById -g GROUP -d CLIENT_ID``): the
        broker that stored the message (named by its offset message id) hands it to that
        member of ``group``, whose listener consumes it once more; how it went. A refusal
        (member not online, unknown message) raises BrokerError."""
        try:
            where = decode_offset_msg_id(offset_msg_id)
        except ValueError as exc:
            raise ClientError(f"{offset_msg_id!r} is not an offset message id: {exc}") from None
        ext = {"consumerGroup": group, "clientId": client_id, "msgId": offset_msg_id}
        response = self._broker(
            f"{where.ip}:{where.port}",
            RequestCode.CONSUME_MESSAGE_DIRECTLY,
            ext,
            "consume message directly",
        )
        return decode_body(ConsumeMessageDirectlyResult, response.body)

    def clone_group_offset(
        self, src_group: str, dest_group: str, topic: str | None = None, *, offline: bool = False
    ) -> list[str]:
        """CLONE_GROUP_OFFSET (314; mqadmin cloneGroupOffset): ``dest_group`` gets
        ``src_group``'s committed offsets of ``topic`` (None: of every topic it has) on each
        master concerned. Unless ``offline``, a broker skips a topic the online source group
        does not subscribe to. Returns the masters asked."""
        addresses = list(self._route_masters(topic) if topic else self.masters().values())
        ext = {
            "srcGroup": src_group,
            "destGroup": dest_group,
            "topic": topic or "",
            "offline": "true" if offline else "false",
        }
        for address in addresses:
            self._broker(address, RequestCode.CLONE_GROUP_OFFSET, ext, "clone group offset")
        return addresses
