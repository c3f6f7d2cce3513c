"""The consumer-group half of ``Admin`` (a mixin; ``Admin`` supplies the transport): which
groups consume a topic, which topics a group consumes, copying a group's offsets.

Reads merge the answers of every master concerned (the topic's, or all of them); the copy asks
each master concerned and fails on the first refusal.
"""

from __future__ import annotations

from typing import Any

from runtime.remoting.bodies import GroupList, TopicList, decode_body
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand


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
