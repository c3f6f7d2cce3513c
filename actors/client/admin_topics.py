"""The topic half of ``Admin`` (a mixin; ``Admin`` supplies the transport): creating or
updating a topic on brokers (``mqadmin updateTopic``), deleting it from brokers and name
servers (``mqadmin deleteTopic``), and its queues' offsets (``mqadmin topicStatus``).
"""

from __future__ import annotations

import msgspec

from actors.client.admin_port import AdminPort
from actors.client.errors import BrokerError
from runtime.remoting.bodies import MessageQueue
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.headers import DEFAULT_TOPIC
from runtime.remoting.queue_maps import TopicOffset, decode_queue_map

PERM_READ_WRITE = 6


class QueueOffsets(msgspec.Struct, frozen=True):
    """One queue of ``topic_stats``: offsets and the store time (ms) of its last message."""

    queue: MessageQueue
    min_offset: int
    max_offset: int
    last_update_ms: int


class TopicAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    def create_topic(
        self,
        topic: str,
        *,
        cluster: str | None = None,
        broker_addr: str | None = None,
        queues: int = 8,
        read_queues: int | None = None,
        perm: int = PERM_READ_WRITE,
        order: bool = False,
        attributes: str | None = None,
    ) -> list[str]:
        """UPDATE_AND_CREATE_TOPIC on one broker (``broker_addr``) or on every master of
        ``cluster`` (all clusters when neither is given): ``queues`` write queues and as many
        read queues unless ``read_queues`` says otherwise; ``attributes`` changes RocketMQ 5's
        topic attributes (``"+message.type=LITE"``; ``runtime.store.topic_attributes``).
        Creates or updates; returns the addresses that applied it. The brokers re-register
        with the name servers at once."""
        addresses = self._targets(cluster, broker_addr)
        ext = {
            "topic": topic,
            "defaultTopic": DEFAULT_TOPIC,
            "readQueueNums": str(queues if read_queues is None else read_queues),
            "writeQueueNums": str(queues),
            "perm": str(perm),
            "topicFilterType": "SINGLE_TAG",
            "topicSysFlag": "0",
            "order": "true" if order else "false",
        }
        if attributes:
            ext["attributes"] = attributes
        for address in addresses:
            self._broker(address, RequestCode.UPDATE_AND_CREATE_TOPIC, ext, "create topic")
        return addresses

    def delete_topic(self, topic: str, *, cluster: str | None = None) -> list[str]:
        """mqadmin deleteTopic: ``delete_topic_in_brokers`` then ``delete_topic_in_namesrv``.
        Returns the broker addresses that deleted it; a refusal raises ``BrokerError``."""
        addresses = self.delete_topic_in_brokers(topic, cluster=cluster)
        self.delete_topic_in_namesrv(topic, cluster=cluster)
        return addresses

    def delete_topic_in_brokers(self, topic: str, *, cluster: str | None = None) -> list[str]:
        """DELETE_TOPIC_IN_BROKER (215) on every master of ``cluster`` (without one: every
        master the topic's route lists, or every master when the name servers do not know the
        topic): each drops the topic's config, queues and the groups' offsets of it. Returns
        the addresses that deleted it."""
        if cluster is not None:
            addresses = self._targets(cluster, None)
        else:
            try:
                addresses = list(self._route_masters(topic))
            except BrokerError as exc:
                if exc.code != ResponseCode.TOPIC_NOT_EXIST:
                    raise
                addresses = []
            addresses = addresses or self._targets(None, None)
        for address in addresses:
            self._broker(
                address, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": topic}, "delete topic"
            )
        return addresses

    def delete_topic_in_namesrv(self, topic: str, *, cluster: str | None = None) -> list[str]:
        """DELETE_TOPIC_IN_NAMESRV (216) on every configured name server: the topic's route
        goes (with ``cluster``: only that cluster's brokers' queues). A broker that still has
        the topic registers it again within ``registerNameServerPeriod`` (30 s). Returns the
        name servers asked."""
        ext = {"topic": topic}
        if cluster is not None:
            ext["clusterName"] = cluster
        for address in self.config.namesrv:
            self._broker(address, RequestCode.DELETE_TOPIC_IN_NAMESRV, ext, "delete topic route")
        return list(self.config.namesrv)

    def topic_stats(self, topic: str) -> list[QueueOffsets]:
        """GET_TOPIC_STATS_INFO from every master serving ``topic``, sorted by queue."""
        rows: list[QueueOffsets] = []
        for address in self._route_masters(topic):
            response = self._broker(
                address, RequestCode.GET_TOPIC_STATS_INFO, {"topic": topic}, "topic stats"
            )
            pairs, _ = decode_queue_map(response.body, "offsetTable", TopicOffset)
            rows.extend(
                QueueOffsets(mq, t.min_offset, t.max_offset, t.last_update_timestamp)
                for mq, t in pairs
            )
        return sorted(rows, key=lambda r: r.queue)
