"""The inventory half of ``Admin`` (a mixin; ``Admin`` supplies the transport): what a cluster
holds, as mqadmin's exportMetadata, exportConfigs, getConsumerConfig, allocateMQ and producer
read it.

- ``user_topic_configs`` / ``user_subscription_groups``: one broker's topics (GET_ALL_TOPIC_CONFIG,
  21) and groups (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, 201) without the system ones, as RocketMQ's
  ``getUserTopicConfig`` / ``getUserSubscriptionGroup`` leave them out: topics the broker names
  as its own (GET_SYSTEM_TOPIC_LIST_FROM_BROKER, 305) or TopicValidator's system topics
  (``rmq_sys_*`` too), ``%RETRY%`` / ``%DLQ%`` topics unless asked for; groups ``CID_RMQ_SYS_*``
  and MixAll's predefined ones (``SYSTEM_GROUPS``).
- ``export_metadata``: those of every master of a cluster, merged as exportMetadata merges them:
  a topic on several masters once, its queue counts summed; a group once, its retry queue
  counts summed (the other fields: the last master's, masters in address order).
- ``export_configs``: exportConfigs' view of a cluster: each master's settings of
  ``EXPORTED_BROKER_KEYS`` by broker name, and how many name servers, masters and slaves.
- ``consumer_configs``: a group's config on each broker group that has it (getConsumerConfig:
  the master's, else a slave's).
- ``allocate_mq``: the queues each client id would consume under the average strategy (AVG).
- ``producer_table``: one broker's producers by group (GET_ALL_PRODUCER_INFO, 328).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from actors.client.admin_port import AdminPort
from actors.client.allocate import allocate_averagely
from actors.client.errors import ClientError
from actors.client.namespace import SYSTEM_TOPIC_PREFIX, SYSTEM_TOPICS, is_sys_consumer_group
from runtime.remoting.bodies import (
    MessageQueue,
    SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicList,
    decode_body,
)
from runtime.remoting.codes import DLQ_PREFIX, RETRY_PREFIX, RequestCode
from runtime.remoting.producer_bodies import ProducerInfo, decode_producer_table

SYSTEM_GROUPS = frozenset(
    {
        "DEFAULT_CONSUMER",
        "DEFAULT_PRODUCER",
        "TOOLS_CONSUMER",
        "SCHEDULE_CONSUMER",
        "FILTERSRV_CONSUMER",
        "__MONITOR_CONSUMER",
        "CLIENT_INNER_PRODUCER",
        "SELF_TEST_P_GROUP",
        "SELF_TEST_C_GROUP",
        "CID_ONS-HTTP-PROXY",
        "CID_ONSAPI_PERMISSION",
        "CID_ONSAPI_OWNER",
        "CID_ONSAPI_PULL",
        "CID_RMQ_SYS_TRANS",
    }
)
"""RocketMQ 5's DefaultMQAdminExtImpl.SYSTEM_GROUP_SET: groups exportMetadata leaves out."""

EXPORTED_BROKER_KEYS = (
    "brokerClusterName",
    "brokerId",
    "brokerName",
    "brokerRole",
    "fileReservedTime",
    "filterServerNums",
    "flushDiskType",
    "maxMessageSize",
    "messageDelayLevel",
    "msgTraceTopicName",
    "slaveReadEnable",
    "traceOn",
    "traceTopicEnable",
    "useTLS",
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
)
"""The broker settings exportConfigs keeps (a key the broker does not have is left out)."""


class ClusterMetadata(msgspec.Struct, frozen=True):
    """``export_metadata``'s answer: merged topic and group configs, and when they were read
    (ms since the epoch). A table not asked for is empty."""

    topics: dict[str, TopicConfig]
    groups: dict[str, SubscriptionGroupConfig]
    export_ms: int


class ClusterConfigs(msgspec.Struct, frozen=True):
    """``export_configs``'s answer: broker name -> its master's ``EXPORTED_BROKER_KEYS``, and
    the cluster's scale."""

    broker_configs: dict[str, dict[str, str]]
    namesrv_size: int
    master_broker_size: int
    slave_broker_size: int


class GroupConfigOnBroker(msgspec.Struct, frozen=True):
    """One row of ``consumer_configs``: where the config is and the config."""

    cluster: str
    broker_name: str
    config: SubscriptionGroupConfig


def is_system_group(group: str) -> bool:
    """RocketMQ's ``MixAll.isSysConsumerGroup`` or one of ``SYSTEM_GROUPS``."""
    return is_sys_consumer_group(group) or group in SYSTEM_GROUPS


class ExportAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    # -- one broker ---------------------------------------------------------------------------

    def user_topic_configs(
        self, broker_addr: str, *, special_topics: bool = False
    ) -> TopicConfigSerializeWrapper:
        """GET_ALL_TOPIC_CONFIG (21) of one broker without its system topics, and without
        retry and dead-letter topics unless ``special_topics`` (exportMetadata's -s)."""
        response = self._broker(broker_addr, RequestCode.GET_ALL_TOPIC_CONFIG, {}, "topic configs")
        wrapper = decode_body(TopicConfigSerializeWrapper, response.body)
        response = self._broker(
            broker_addr, RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER, {}, "system topics"
        )
        own = set(decode_body(TopicList, response.body).topic_list)
        kept = {
            name: config
            for name, config in wrapper.topic_config_table.items()
            if name not in own
            and name not in SYSTEM_TOPICS
            and not name.startswith(SYSTEM_TOPIC_PREFIX)
            and (special_topics or not name.startswith((RETRY_PREFIX, DLQ_PREFIX)))
        }
        return msgspec.structs.replace(wrapper, topic_config_table=kept)

    def user_subscription_groups(self, broker_addr: str) -> SubscriptionGroupWrapper:
        """GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201) of one broker without the system groups."""
        wrapper = self._all_subscription_groups(broker_addr)
        kept = {
            name: config
            for name, config in wrapper.subscription_group_table.items()
            if not is_system_group(name)
        }
        return msgspec.structs.replace(wrapper, subscription_group_table=kept)

    def producer_table(self, broker_addr: str) -> dict[str, list[ProducerInfo]]:
        """GET_ALL_PRODUCER_INFO (328): producer group -> the producers whose heartbeats this
        broker has (client id, remote address, language, version, last heartbeat ms)."""
        response = self._broker(
            broker_addr, RequestCode.GET_ALL_PRODUCER_INFO, {}, "producer table"
        )
        return decode_producer_table(response.body)

    # -- a cluster ------------------------------------------------------------------------------

    def export_metadata(
        self,
        cluster: str,
        *,
        topics: bool = True,
        groups: bool = True,
        special_topics: bool = False,
    ) -> ClusterMetadata:
        """The user topics and groups of every master of ``cluster``, merged (module
        docstring); ``topics`` / ``groups`` False: that table is not read."""
        merged_topics: dict[str, TopicConfig] = {}
        merged_groups: dict[str, SubscriptionGroupConfig] = {}
        for address in sorted(self._cluster_masters(cluster)):
            if topics:
                table = self.user_topic_configs(address, special_topics=special_topics)
                for name, config in table.topic_config_table.items():
                    seen = merged_topics.get(name)
                    if seen is not None:
                        config = msgspec.structs.replace(
                            config,
                            read_queue_nums=seen.read_queue_nums + config.read_queue_nums,
                            write_queue_nums=seen.write_queue_nums + config.write_queue_nums,
                        )
                    merged_topics[name] = config
            if groups:
                wrapper = self.user_subscription_groups(address)
                for name, group in wrapper.subscription_group_table.items():
                    had = merged_groups.get(name)
                    if had is not None:
                        group = msgspec.structs.replace(
                            group, retry_queue_nums=had.retry_queue_nums + group.retry_queue_nums
                        )
                    merged_groups[name] = group
        return ClusterMetadata(merged_topics, merged_groups, int(time.time() * 1000))

    def export_configs(self, cluster: str) -> ClusterConfigs:
        """Each master's ``EXPORTED_BROKER_KEYS`` (by its ``brokerName``), and the number of
        name servers configured, masters and slaves of ``cluster``."""
        brokers = self.brokers(cluster)
        masters = sorted(b.address for b in brokers if b.broker_id == 0)
        if not masters:
            raise ClientError(f"no master broker in {cluster}")
        master_names = {b.name for b in brokers if b.broker_id == 0}
        slaves = [b for b in brokers if b.broker_id != 0 and b.name in master_names]
        configs: dict[str, dict[str, str]] = {}
        for address in masters:
            settings = self.broker_config(address)
            kept = {k: settings[k] for k in EXPORTED_BROKER_KEYS if k in settings}
            configs[settings.get("brokerName", address)] = kept
        return ClusterConfigs(configs, len(self.config.namesrv), len(masters), len(slaves))

    def consumer_configs(self, group: str) -> list[GroupConfigOnBroker]:
        """``group``'s config on every broker group that has one (GET_ALL_SUBSCRIPTIONGROUP_CONFIG
        of its master, of its lowest-numbered slave when it has no master), by cluster and
        broker name; [] when none has it."""
        chosen: dict[str, tuple[str, str]] = {}
        for b in self.brokers():
            if b.name not in chosen:  # brokers() lists a group's ids in order: 0 first
                chosen[b.name] = (b.cluster, b.address)
        found = []
        for name, (cluster, address) in sorted(chosen.items()):
            config = self._all_subscription_groups(address).subscription_group_table.get(group)
            if config is not None:
                found.append(GroupConfigOnBroker(cluster, name, config))
        return found

    def allocate_mq(self, topic: str, client_ids: Sequence[str]) -> dict[str, list[MessageQueue]]:
        """Client id -> the queues of ``topic`` it would consume if ``client_ids`` were its
        group's members, under AllocateMessageQueueAveragely (queues and ids sorted first, as a
        rebalance sorts them)."""
        queues = self.fetch_queues(topic)
        ids = list(dict.fromkeys(client_ids))
        return {cid: allocate_averagely(cid, queues, ids) for cid in ids}

    # -- requests -------------------------------------------------------------------------------

    def _all_subscription_groups(self, broker_addr: str) -> SubscriptionGroupWrapper:
        response = self._broker(
            broker_addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, {}, "subscription groups"
        )
        return decode_body(SubscriptionGroupWrapper, response.body)

    def _cluster_masters(self, cluster: str) -> list[str]:
        addresses = list(self.masters(cluster).values())
        if not addresses:
            raise ClientError(f"no master broker in {cluster}")
        return addresses
