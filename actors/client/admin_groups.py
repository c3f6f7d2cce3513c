"""The consumer-group half of ``Admin`` (a mixin; ``Admin`` supplies the transport): groups'
configs (updateSubGroup), progress (consume stats), connections and running info of producers
and consumers, offset resets, which groups consume a topic, which topics a group consumes,
copying a group's offsets, having a member consume a message directly.

Reads merge the answers of every master concerned (the topic's, or all of them); the copy asks
each master concerned and fails on the first refusal.
"""

from __future__ import annotations

import msgspec

from actors.client.admin_port import AdminPort
from actors.client.errors import BrokerError, ClientError
from actors.client.instance import ClientInstance
from actors.client.offsets import query_remote_offset, queue_offset
from runtime.errors import AddressError, ProtocolError
from runtime.remoting.bodies import (
    Connection,
    ConsumeMessageDirectlyResult,
    ConsumerConnection,
    GroupList,
    MessageQueue,
    ProducerConnection,
    SubscriptionGroupConfig,
    TopicList,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, RequestCode, ResponseCode
from runtime.remoting.queue_maps import (
    OffsetWrapper,
    decode_consume_stats_list,
    decode_queue_map,
)
from runtime.remoting.running_info import ConsumerRunningInfo, decode_running_info
from runtime.store.msg_id import decode_offset_msg_id


class QueueProgress(msgspec.Struct, frozen=True):
    """One queue of ``consume_stats``: the broker's end, the group's committed offset, the store
    time (ms) of the last message the group consumed (0: none) and the lag (``diff``)."""

    queue: MessageQueue
    broker_offset: int
    consumer_offset: int
    last_consumed_ms: int

    @property
    def diff(self) -> int:
        return max(self.broker_offset - self.consumer_offset, 0)


class BrokerConsumeStats(msgspec.Struct, frozen=True):
    """``broker_consume_stats``: every group one broker keeps offsets or a config for, with
    its queues there (``[]``: a config and no committed offset), and the broker's total lag."""

    broker_addr: str
    total_diff: int
    groups: dict[str, list[QueueProgress]]


class OffsetReset(msgspec.Struct, frozen=True):
    """One queue of ``reset_offset``: the group's committed offset before (-1: none), the new
    one, and whether the group's running consumers were told it (else it was committed)."""

    queue: MessageQueue
    old_offset: int
    new_offset: int
    online: bool = False


class GroupAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

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
        except AddressError as exc:
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

    def update_subscription_group(
        self,
        config: SubscriptionGroupConfig,
        *,
        cluster: str | None = None,
        broker_addr: str | None = None,
    ) -> list[str]:
        """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (mqadmin updateSubGroup) on one broker or every
        master of ``cluster`` (all clusters when neither is given): retry times, consume enable,
        broadcast enable, ... of one consumer group. Returns the addresses that applied it."""
        body = encode_body(config)
        done = []
        for address in self._targets(cluster, broker_addr):
            self._broker(
                address,
                RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                {},
                "update subscription group",
                body,
            )
            done.append(address)
        return done

    def subscription_group(self, group: str, broker_addr: str) -> SubscriptionGroupConfig:
        """GET_SUBSCRIPTIONGROUP_CONFIG: one broker's config of ``group`` (BrokerError 26
        SUBSCRIPTION_GROUP_NOT_EXIST when it has none)."""
        response = self._broker(
            broker_addr,
            RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG,
            {"group": group},
            "subscription group",
        )
        return decode_body(SubscriptionGroupConfig, response.body)

    def delete_subscription_group(
        self,
        group: str,
        *,
        cluster: str | None = None,
        broker_addr: str | None = None,
        clean_offset: bool = False,
    ) -> list[str]:
        """DELETE_SUBSCRIPTIONGROUP (mqadmin deleteSubGroup): the group's config goes; its
        consumer offsets too with ``clean_offset`` (RocketMQ 5's ``-r true``), else they stay
        (RocketMQ 4). With ``cluster``, as RocketMQ's command, the group's ``%RETRY%`` and
        ``%DLQ%`` topics are deleted from that cluster's brokers and the name servers too
        (one that does not exist is skipped). Returns the addresses that applied it."""
        done = []
        ext = {"groupName": group, "cleanOffset": "true" if clean_offset else "false"}
        for address in self._targets(cluster, broker_addr):
            self._broker(
                address, RequestCode.DELETE_SUBSCRIPTIONGROUP, ext, "delete subscription group"
            )
            done.append(address)
        if cluster is not None:
            for topic in (RETRY_PREFIX + group, DLQ_PREFIX + group):
                self.delete_topic_in_brokers(topic, cluster=cluster)
                self.delete_topic_in_namesrv(topic, cluster=cluster)
        return done

    def consume_stats(self, group: str, topic: str | None = None) -> list[QueueProgress]:
        """GET_CONSUME_STATS of ``group`` (one topic, or every topic it committed offsets for)
        from the masters concerned, sorted by queue."""
        if topic is not None:
            addresses = list(self._route_masters(topic))
        else:
            addresses = list(self.masters().values())
        ext = {"consumerGroup": group, "topic": topic or ""}
        rows: list[QueueProgress] = []
        for address in addresses:
            response = self._broker(address, RequestCode.GET_CONSUME_STATS, ext, "consume stats")
            pairs, _ = decode_queue_map(response.body, "offsetTable", OffsetWrapper)
            rows.extend(
                QueueProgress(mq, w.broker_offset, w.consumer_offset, w.last_timestamp)
                for mq, w in pairs
            )
        return sorted(rows, key=lambda r: r.queue)

    def broker_consume_stats(
        self, broker_addr: str, *, order_only: bool = False, timeout: float | None = None
    ) -> BrokerConsumeStats:
        """GET_BROKER_CONSUME_STATS (317) of one broker, as ``mqadmin brokerConsumeStats``:
        each group's progress on every topic it committed offsets for there (with
        ``order_only``, only orderly topics'). ``timeout``: seconds (the Admin's without)."""
        response = self._broker(
            broker_addr,
            RequestCode.GET_BROKER_CONSUME_STATS,
            {"isOrder": "true" if order_only else "false"},
            "broker consume stats",
            timeout=timeout,
        )
        address, total_diff, groups = decode_consume_stats_list(response.body)
        return BrokerConsumeStats(
            broker_addr=address or broker_addr,
            total_diff=total_diff,
            groups={
                group: [
                    QueueProgress(mq, w.broker_offset, w.consumer_offset, w.last_timestamp)
                    for mq, w in pairs
                ]
                for group, pairs in groups
            },
        )

    def producer_connections(self, group: str, topic: str | None = None) -> list[Connection]:
        """GET_PRODUCER_CONNECTION_LIST from the topic's masters (every master without
        ``topic``), merged: the group's producers that heartbeat a broker; [] when none."""
        addresses = list(self._route_masters(topic) if topic else self.masters().values())
        members: dict[str, Connection] = {}
        for address in addresses:
            try:
                response = self._broker(
                    address,
                    RequestCode.GET_PRODUCER_CONNECTION_LIST,
                    {"producerGroup": group},
                    "producer connections",
                )
            except BrokerError as exc:
                if exc.code == ResponseCode.SYSTEM_ERROR and "not exist" in (exc.remark or ""):
                    continue
                raise
            found = decode_body(ProducerConnection, response.body)
            members.update((c.client_id, c) for c in found.connection_set)
        return [members[cid] for cid in sorted(members)]

    def consumer_connections(self, group: str) -> ConsumerConnection:
        """GET_CONSUMER_CONNECTION_LIST from every master, merged: the group's online members
        (client id, address, language, version) and its subscriptions. ``BrokerError`` 206
        CONSUMER_NOT_ONLINE when no broker knows a member."""
        merged: ConsumerConnection | None = None
        members: dict[str, Connection] = {}
        refusal: BrokerError | None = None
        for address in self.masters().values():
            try:
                response = self._broker(
                    address,
                    RequestCode.GET_CONSUMER_CONNECTION_LIST,
                    {"consumerGroup": group},
                    "consumer connections",
                )
            except BrokerError as exc:
                if exc.code != ResponseCode.CONSUMER_NOT_ONLINE:
                    raise
                refusal = exc
                continue
            found = decode_body(ConsumerConnection, response.body)
            merged = merged or found
            members.update((c.client_id, c) for c in found.connection_set)
        if merged is None:
            if refusal is None:
                raise ClientError("no master broker in any cluster")
            raise refusal
        return msgspec.structs.replace(
            merged, connection_set=[members[cid] for cid in sorted(members)]
        )

    def consumer_running_info(
        self, group: str, client_id: str, *, jstack: bool = False
    ) -> ConsumerRunningInfo:
        """GET_CONSUMER_RUNNING_INFO (mqadmin consumerStatus -i): the broker relays the request
        to the consumer ``client_id`` of ``group``, which describes itself: settings and
        ``PROP_*`` properties, subscriptions, one ``ProcessQueueInfo`` per queue it holds
        (commit offset, cached messages, lock, last pull and consume time), with ``jstack`` its
        threads' stacks. Asks the masters of ``%RETRY%<group>`` in turn (as mqadmin, which asks
        the first), waiting ``3 * timeout`` for each; ``BrokerError`` SYSTEM_ERROR "The Consumer
        <clientId> not online" when none knows the client."""
        ext = {
            "consumerGroup": group,
            "clientId": client_id,
            "jstackEnable": "true" if jstack else "false",
        }
        refusal: BrokerError | None = None
        for address in self._route_masters(f"{RETRY_PREFIX}{group}"):
            try:
                response = self._broker(
                    address,
                    RequestCode.GET_CONSUMER_RUNNING_INFO,
                    ext,
                    "consumer running info",
                    timeout=self.timeout * 3,
                )
            except BrokerError as exc:
                if exc.code != ResponseCode.SYSTEM_ERROR or "not online" not in (exc.remark or ""):
                    raise
                refusal = exc
                continue
            try:
                return decode_running_info(response.body)
            except ProtocolError as exc:
                raise ClientError(
                    f"{address} relayed a running info that does not decode: {exc}"
                ) from None
        if refusal is None:
            raise ClientError(f"no master broker serves {RETRY_PREFIX}{group}")
        raise refusal

    def reset_offset(
        self, group: str, topic: str, timestamp_ms: int, *, force: bool = True
    ) -> list[OffsetReset]:
        """Move ``group``'s offset of every queue of ``topic`` to the first message stored at
        or after ``timestamp_ms`` (-1: the end of each queue): replay from a time, or skip
        ahead; without ``force`` offsets only move back (RocketMQ's isForce). Per broker, as
        mqadmin does: INVOKE_BROKER_TO_RESET_OFFSET, where the broker tells the group's running
        consumers (RESET_CONSUMER_CLIENT_OFFSET) and they continue there (``online``); when
        none is online this commits the offsets itself. Returns each queue's old (-1: none)
        and new offset."""
        instance = self._running()
        route = self.topic_route(topic)
        queues = {q.broker_name: q.read_queue_nums for q in route.queue_datas}
        rows: list[OffsetReset] = []
        for address, broker in self._route_masters(topic, route).items():
            mqs = [
                MessageQueue(topic=topic, broker_name=broker, queue_id=qid)
                for qid in range(queues.get(broker, 0))
            ]
            old = {
                mq.queue_id: self._call(
                    lambda mq=mq: query_remote_offset(instance, group, mq, self.timeout),
                    "offset query",
                )
                for mq in mqs
            }
            ext = {
                "topic": topic,
                "group": group,
                "timestamp": str(timestamp_ms),
                "isForce": "true" if force else "false",
            }
            try:
                response = self._broker(
                    address, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, ext, "reset offset"
                )
            except BrokerError as exc:
                if exc.code != ResponseCode.CONSUMER_NOT_ONLINE:
                    raise
            else:
                pairs, _ = decode_queue_map(response.body, "offsetTable", int)
                rows.extend(
                    OffsetReset(mq, old.get(mq.queue_id, -1), new, True) for mq, new in pairs
                )
                continue
            for mq in mqs:  # nobody online: commit the offsets here
                new = self._offset_at(instance, mq, timestamp_ms)
                if not force and 0 <= old[mq.queue_id] <= new:
                    new = old[mq.queue_id]
                commit = {"consumerGroup": group, "topic": topic, "queueId": str(mq.queue_id)}
                commit["commitOffset"] = str(new)
                self._broker(address, RequestCode.UPDATE_CONSUMER_OFFSET, commit, "update offset")
                rows.append(OffsetReset(mq, old[mq.queue_id], new))
        return rows

    def committed_offset(self, group: str, mq: MessageQueue) -> int:
        """QUERY_CONSUMER_OFFSET: ``group``'s committed offset of ``mq`` (-1: none yet)."""
        instance = self._running()
        return self._call(
            lambda: query_remote_offset(instance, group, mq, self.timeout), "offset query"
        )

    def commit_offset(self, group: str, mq: MessageQueue, offset: int) -> None:
        """UPDATE_CONSUMER_OFFSET on ``mq``'s master: ``group`` continues ``mq`` at ``offset``
        (a running member of the group overwrites it with its own progress)."""
        masters = self._route_masters(mq.topic)  # address -> broker name
        address = next((a for a, name in masters.items() if name == mq.broker_name), None)
        if address is None:
            raise ClientError(f"no master serves {mq}")
        ext = {"consumerGroup": group, "topic": mq.topic, "queueId": str(mq.queue_id)}
        ext["commitOffset"] = str(offset)
        self._broker(address, RequestCode.UPDATE_CONSUMER_OFFSET, ext, "update offset")

    def _offset_at(self, instance: ClientInstance, mq: MessageQueue, timestamp_ms: int) -> int:
        """The queue's first offset stored at or after the time (-1: its end)."""
        if timestamp_ms == -1:
            code, timestamp = RequestCode.GET_MAX_OFFSET, 0
        else:
            code, timestamp = RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, timestamp_ms
        found = self._call(
            lambda: queue_offset(instance, code, mq, self.timeout, timestamp), "offset lookup"
        )
        return max(found, 0)
