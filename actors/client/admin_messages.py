"""The message and topic-config half of ``Admin`` that mqadmin's message commands use (a mixin;
``Admin`` supplies the transport): reading a queue without consuming it, a broker's config, a
topic's perm.

Reads are raw PULL_MESSAGE requests (no long polling, no offset committed) to the master of the
queue's broker (its lowest-numbered slave when the route has no master), as a group of their
own, ``TOOLS_CONSUMER`` by default (RocketMQ's MixAll.TOOLS_CONSUMER_GROUP): nothing a consumer
group committed moves. ``update_topic_perm`` reads each broker's current config of the topic
(GET_ALL_TOPIC_CONFIG) and writes it back with the new perm (UPDATE_AND_CREATE_TOPIC), so the
queue counts, order flag and system flag stay what that broker has.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from actors.client.admin_port import AdminPort
from actors.client.errors import BrokerError, ClientError
from actors.client.message import MessageExt, MessageQueue, PullStatus
from actors.client.pull import PullResult, decode_pull_response, pull_header, subscription
from actors.client.remoting import make_request
from config.properties import PropertiesSyntaxError, parse_properties
from runtime.errors import ProtocolError
from runtime.remoting.bodies import TopicConfig, TopicConfigSerializeWrapper, decode_body
from runtime.remoting.codes import PermName, RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.headers import DEFAULT_TOPIC

TOOLS_CONSUMER_GROUP = "TOOLS_CONSUMER"
"""The group raw reads pull as (RocketMQ's MixAll.TOOLS_CONSUMER_GROUP); it commits nothing."""
PULL_BATCH = 32
_PULL_OK = frozenset(
    {
        ResponseCode.SUCCESS,
        ResponseCode.PULL_NOT_FOUND,
        ResponseCode.PULL_RETRY_IMMEDIATELY,
        ResponseCode.PULL_OFFSET_MOVED,
    }
)


class TopicPermChange(msgspec.Struct, frozen=True):
    """One broker of ``update_topic_perm``: its address, the topic's config there before (with
    the old perm) and the perm written (``changed`` False: it already had that perm)."""

    address: str
    config: TopicConfig
    new_perm: int

    @property
    def old_perm(self) -> int:
        return self.config.perm

    @property
    def changed(self) -> bool:
        return self.config.perm != self.new_perm


def perm_text(perm: int) -> str:
    """RocketMQ's PermName.perm2String: ``RW-`` for 6, ``R--`` for 4, ``-W-`` for 2, with
    ``X`` third for INHERIT."""
    return (
        ("R" if perm & PermName.READ else "-")
        + ("W" if perm & PermName.WRITE else "-")
        + ("X" if perm & PermName.INHERIT else "-")
    )


class MessageAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    # -- queues and their offsets -------------------------------------------------------------

    def fetch_queues(self, topic: str) -> list[MessageQueue]:
        """The topic's readable queues (RocketMQ's fetchSubscribeMessageQueues): each broker's
        read queues when its perm has READ, sorted."""
        route = self.topic_route(topic)
        return sorted(
            MessageQueue(topic=topic, broker_name=q.broker_name, queue_id=i)
            for q in route.queue_datas
            if q.perm & PermName.READ
            for i in range(q.read_queue_nums)
        )

    def queue_address(self, mq: MessageQueue) -> str:
        """Where reads of ``mq`` go: the master of its broker, else its lowest-numbered slave."""
        for data in self.topic_route(mq.topic).broker_datas:
            if data.broker_name == mq.broker_name and data.broker_addrs:
                return data.broker_addrs[min(data.broker_addrs)]
        raise ClientError(f"no broker {mq.broker_name!r} serves topic {mq.topic!r}")

    def min_offset(self, mq: MessageQueue, address: str | None = None) -> int:
        """GET_MIN_OFFSET (31): the queue's first offset still stored."""
        return self._offset(RequestCode.GET_MIN_OFFSET, mq, address)

    def max_offset(self, mq: MessageQueue, address: str | None = None) -> int:
        """GET_MAX_OFFSET (30): the offset the queue's next message gets."""
        return self._offset(RequestCode.GET_MAX_OFFSET, mq, address)

    def search_offset(self, mq: MessageQueue, timestamp_ms: int, address: str | None = None) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP (29): the first offset stored at or after the time (the
        queue's end when none is)."""
        return self._offset(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, mq, address, timestamp_ms)

    def _offset(
        self, code: int, mq: MessageQueue, address: str | None, timestamp_ms: int = 0
    ) -> int:
        ext = {"topic": mq.topic, "queueId": str(mq.queue_id)}
        if code == RequestCode.SEARCH_OFFSET_BY_TIMESTAMP:
            ext["timestamp"] = str(timestamp_ms)
        where = address or self.queue_address(mq)
        response = self._broker(where, code, ext, "queue offset")
        try:
            return int(response.ext_fields.get("offset", "0"))
        except ValueError:
            raise ClientError(f"{where} answered an offset that is not a number") from None

    # -- reading messages -----------------------------------------------------------------------

    def pull(
        self,
        mq: MessageQueue,
        offset: int,
        max_nums: int = PULL_BATCH,
        *,
        expression: str = "*",
        group: str = TOOLS_CONSUMER_GROUP,
        address: str | None = None,
    ) -> PullResult:
        """One PULL_MESSAGE of ``mq`` from ``offset`` (RocketMQ's DefaultMQPullConsumer.pull):
        up to ``max_nums`` messages whose tag ``expression`` matches, without long polling and
        without committing an offset. ``status`` NO_NEW_MSG at the queue's end, OFFSET_ILLEGAL
        outside it (``next_begin_offset`` says where to go)."""
        where = address or self.queue_address(mq)
        tag_filter = subscription(expression)
        ext = pull_header(
            group, mq, offset, max_nums=max_nums, expression=tag_filter.expression, suspend_ms=0
        )
        instance = self._running()

        def invoke() -> RemotingCommand:
            cmd = make_request(RequestCode.PULL_MESSAGE, ext)
            return instance.remoting.invoke_ok(where, cmd, self.timeout, "pull", _PULL_OK)

        response = self._call(invoke, "pull")
        try:
            found = decode_pull_response(response, mq, offset, tag_filter)
        except ProtocolError as exc:
            raise ClientError(f"{where} answered records that do not decode: {exc}") from None
        assert found is not None  # only the codes in _PULL_OK come back
        return found

    def iter_messages(
        self,
        mq: MessageQueue,
        begin: int,
        end: int,
        *,
        expression: str = "*",
        group: str = TOOLS_CONSUMER_GROUP,
    ) -> Iterator[MessageExt]:
        """The messages of ``mq`` at offsets ``begin`` <= offset < ``end`` whose tag matches,
        pulled 32 at a time as they are iterated (nothing is committed)."""
        address = self.queue_address(mq)
        offset = begin
        while offset < end:
            want = min(PULL_BATCH, end - offset)
            found = self.pull(mq, offset, want, expression=expression, group=group, address=address)
            for m in found.messages:
                if m.queue_offset < end:
                    yield m
            if found.status in (PullStatus.NO_NEW_MSG, PullStatus.OFFSET_ILLEGAL):
                return
            if found.next_begin_offset <= offset:
                raise ClientError(f"{address} does not move past offset {offset} of {mq}")
            offset = found.next_begin_offset

    def message_at(self, mq: MessageQueue, offset: int) -> MessageExt | None:
        """The message at ``offset`` of ``mq`` (mqadmin queryMsgByOffset), None when there is
        none (past the end, or no longer stored)."""
        found = self.pull(mq, offset, 1)
        for m in found.messages:
            if m.queue_offset == offset:
                return m
        return None

    # -- broker and topic config ------------------------------------------------------------------

    def broker_config(self, broker_addr: str) -> dict[str, str]:
        """GET_BROKER_CONFIG (26): the broker's settings, name -> value as its properties say
        (RocketMQ's names: ``brokerName``, ``brokerClusterName``, ``flushDiskType``, ...)."""
        response = self._broker(broker_addr, RequestCode.GET_BROKER_CONFIG, {}, "broker config")
        try:
            text = response.body.decode()
            return {e.key: e.value for e in parse_properties(text)}
        except (UnicodeDecodeError, PropertiesSyntaxError) as exc:
            raise ClientError(
                f"{broker_addr} answered a config that does not parse: {exc}"
            ) from None

    def update_broker_config(self, broker_addr: str, settings: dict[str, str]) -> None:
        """UPDATE_BROKER_CONFIG (25; mqadmin updateBrokerConfig): ``brokerPermission`` changes
        while the broker runs (until a restart); the broker refuses other keys (BrokerError
        naming the key)."""
        body = "".join(f"{k}={v}\n" for k, v in settings.items()).encode()
        self._broker(
            broker_addr, RequestCode.UPDATE_BROKER_CONFIG, {}, "update broker config", body
        )

    def topic_config(self, topic: str, broker_addr: str) -> TopicConfig:
        """GET_TOPIC_CONFIG (351): ``topic``'s config on one broker, attributes included
        (BrokerError TOPIC_NOT_EXIST when it has none)."""
        response = self._broker(
            broker_addr, RequestCode.GET_TOPIC_CONFIG, {"topic": topic}, "topic config"
        )
        return decode_body(TopicConfig, response.body)

    def topic_configs(self, broker_addr: str) -> dict[str, TopicConfig]:
        """GET_ALL_TOPIC_CONFIG (21): every topic's config on one broker."""
        response = self._broker(
            broker_addr, RequestCode.GET_ALL_TOPIC_CONFIG, {}, "all topic config"
        )
        return dict(decode_body(TopicConfigSerializeWrapper, response.body).topic_config_table)

    def update_topic_perm(
        self,
        topic: str,
        perm: int,
        *,
        cluster: str | None = None,
        broker_addr: str | None = None,
    ) -> list[TopicPermChange]:
        """mqadmin updateTopicPerm on one broker or every master of ``cluster``: each broker's
        config of ``topic`` goes back with ``perm`` (2 write only, 4 read only, 6 both); brokers
        that already have it are left alone, masters without the topic are skipped (ClientError
        when none has it). The brokers re-register at once, so new routes carry the perm."""
        if perm not in (PermName.WRITE, PermName.READ, PermName.READ | PermName.WRITE):
            raise ClientError(f"perm {perm} is not 2 (W), 4 (R) or 6 (RW)")
        changes: list[TopicPermChange] = []
        for address in self._targets(cluster, broker_addr):
            config = self.topic_configs(address).get(topic)
            if config is None:
                if broker_addr is not None:
                    raise BrokerError(
                        ResponseCode.TOPIC_NOT_EXIST,
                        f"topic[{topic}] not exist on broker {address}",
                        address,
                        "update topic perm",
                    )
                continue
            change = TopicPermChange(address, config, perm)
            if change.changed:
                self._write_topic_config(address, msgspec.structs.replace(config, perm=perm))
            changes.append(change)
        if not changes:
            raise ClientError(f"no master of {cluster or 'any cluster'} has topic {topic!r}")
        return changes

    def _write_topic_config(self, address: str, config: TopicConfig) -> None:
        ext = {
            "topic": config.topic_name,
            "defaultTopic": DEFAULT_TOPIC,
            "readQueueNums": str(config.read_queue_nums),
            "writeQueueNums": str(config.write_queue_nums),
            "perm": str(config.perm),
            "topicFilterType": config.topic_filter_type,
            "topicSysFlag": str(config.topic_sys_flag),
            "order": "true" if config.order else "false",
        }
        self._broker(address, RequestCode.UPDATE_AND_CREATE_TOPIC, ext, "update topic")
