"""JSON bodies of the remoting protocol as msgspec Structs (camelCase on the wire).

Decoding tolerates unknown keys, whitespace and numbers sent as strings; anything malformed
raises ``ProtocolError(fatal=False)``. Encoding always emits valid JSON (map keys quoted, even
``brokerAddrs`` whose keys some fastjson versions leave bare).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, TypeVar

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.codes import ConsumeFromWhere, ConsumeType, MessageModel
from runtime.remoting.properties import tag_hash

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

SUB_ALL = "*"
"""The subscription expression that matches every tag."""


class Body(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """Base of every body: keyword-only, camelCase on the wire, immutable."""


# ------------------------------------------------------------------------------------ route


class BrokerData(Body, kw_only=True):
    """One broker group: brokerId (0 = master) -> "ip:port"."""

    broker_addrs: dict[Int64, str] = {}
    broker_name: str
    cluster: str = ""


class QueueData(Body, kw_only=True):
    broker_name: str
    perm: Int32 = 6
    read_queue_nums: Int32
    topic_sys_flag: Int32 = 0
    write_queue_nums: Int32


class TopicRouteData(Body, kw_only=True):
    """GET_ROUTEINFO_BY_TOPIC (105) response body."""

    broker_datas: list[BrokerData] = []
    filter_server_table: dict[str, list[str]] = {}
    queue_datas: list[QueueData] = []


class OrderTopicRouteData(TopicRouteData, kw_only=True):
    """A route with the topic's ``orderTopicConf`` (``brokerName:queueNums;...``, KV namespace
    ORDER_TOPIC_CONFIG): a name server with ``orderMessageEnable`` answers it for a topic that
    has one (the plain TopicRouteData otherwise, so no null goes out); clients decode either."""

    order_topic_conf: str | None = None


class ClusterInfo(Body, kw_only=True):
    """GET_BROKER_CLUSTER_INFO (106) response body."""

    broker_addr_table: dict[str, BrokerData] = {}
    cluster_addr_table: dict[str, list[str]] = {}


class ConsumeMessageDirectlyResult(Body, kw_only=True):
    """CONSUME_MESSAGE_DIRECTLY (309) response body: how a consumer's listener took a message
    (``consumeResult``: CR_SUCCESS, CR_LATER, CR_ROLLBACK, CR_COMMIT, CR_THROW_EXCEPTION,
    CR_RETURN_NULL)."""

    order: bool = False
    auto_commit: bool = True
    consume_result: str | None = None
    remark: str | None = None
    spent_time_mills: Int64 = 0


class GroupList(Body, kw_only=True):
    """QUERY_TOPIC_CONSUME_BY_WHO (300) response body: the groups that consume a topic."""

    group_list: list[str] = []


class TopicList(Body, kw_only=True):
    """GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) response body."""

    topic_list: list[str] = []
    broker_addr: str | None = None


# ------------------------------------------------------------------------------ topic config


class TopicConfig(Body, kw_only=True):
    topic_name: str
    read_queue_nums: Int32 = 16
    write_queue_nums: Int32 = 16
    perm: Int32 = 6
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: Int32 = 0
    order: bool = False
    attributes: dict[str, str] = {}
    """RocketMQ 5's topic attributes (``runtime.store.topic_attributes``)."""


class DataVersion(Body, kw_only=True):
    """RocketMQ's DataVersion; ``stateVersion`` is RocketMQ 5's (0 from RocketMQ 4's brokers)."""

    state_version: Int64 = 0
    timestamp: Int64 = 0
    counter: Int64 = 0


class TopicConfigSerializeWrapper(Body, kw_only=True):
    """GET_ALL_TOPIC_CONFIG (21) response body; also inside RegisterBrokerBody."""

    topic_config_table: dict[str, TopicConfig] = {}
    data_version: DataVersion = DataVersion()


class RegisterBrokerBody(Body, kw_only=True):
    """REGISTER_BROKER (103) request body (uncompressed JSON form)."""

    topic_config_serialize_wrapper: TopicConfigSerializeWrapper = TopicConfigSerializeWrapper()
    filter_server_list: list[str] = []


class SubscriptionGroupConfig(Body, kw_only=True):
    """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) request body."""

    group_name: str
    consume_enable: bool = True
    consume_from_min_enable: bool = True
    consume_broadcast_enable: bool = True
    retry_queue_nums: Int32 = 1
    retry_max_times: Int32 = 16
    broker_id: Int64 = 0
    which_broker_when_consume_slowly: Int64 = 1
    notify_consumer_ids_changed_enable: bool = True
    consume_message_orderly: bool = False
    """RocketMQ 5's: the group consumes in order (its gRPC consumers through the proxy get
    one message of a message group at a time: docs/proxy.md)."""


class SubscriptionGroupWrapper(Body, kw_only=True):
    """GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201) response body; also the shape of the broker's
    ``config/subscriptionGroup.json`` (RocketMQ's file name and shape)."""

    subscription_group_table: dict[str, SubscriptionGroupConfig] = {}
    data_version: DataVersion = DataVersion()


# -------------------------------------------------------------------------------- heartbeat


def _enum_name(value: str | int, cls: type[enum.IntEnum], aliases: dict[str, str]) -> str:
    """A heartbeat enum as its name; accepts the ordinal (C++), the name (ali-ons, Java)."""
    if isinstance(value, bool):
        raise ValueError(f"{cls.__name__}: boolean {value!r}")
    if isinstance(value, int):
        try:
            return cls(value).name
        except ValueError:
            raise ValueError(f"unknown {cls.__name__} ordinal {value}") from None
    text = value.strip().upper()
    if text.isdigit():
        return _enum_name(int(text), cls, aliases)
    if text in cls.__members__:
        return text
    if text in aliases:
        return aliases[text]
    raise ValueError(f"unknown {cls.__name__} {value!r}")


_CONSUME_TYPE_ALIASES = {
    "PULL": "CONSUME_ACTIVELY",
    "PUSH": "CONSUME_PASSIVELY",
    "POP": "CONSUME_POP",
}


def tags_of(sub_string: str | None) -> list[str]:
    """Tags of a TAG expression: "a || b" -> ["a", "b"]; "*" or "" -> [] (every tag)."""
    if not sub_string or sub_string.strip() == SUB_ALL:
        return []
    tags: list[str] = []
    for part in sub_string.split("||"):
        tag = part.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


class SubscriptionData(Body, kw_only=True):
    """One subscription. ``tags_set`` / ``code_set`` are derived from ``sub_string`` when the
    client leaves them out (TAG expressions only)."""

    topic: str
    sub_string: str = SUB_ALL
    tags_set: list[str] | None = None
    code_set: list[Int32] | None = None
    sub_version: Int64 = 0
    expression_type: str = "TAG"
    class_filter_mode: bool = False

    def __post_init__(self) -> None:
        if self.expression_type.upper() != "TAG":
            return
        if self.tags_set is None:
            msgspec.structs.force_setattr(self, "tags_set", tags_of(self.sub_string))
        if self.code_set is None:
            codes = [tag_hash(tag) for tag in self.tags_set or ()]
            msgspec.structs.force_setattr(self, "code_set", codes)


class ProducerData(Body, kw_only=True):
    group_name: str


class ConsumerData(Body, kw_only=True):
    """One consumer group of a client. The enums are normalised to their names whatever the
    client sent (ordinal int, digit string or name)."""

    group_name: str
    consume_type: str | int = ConsumeType.CONSUME_PASSIVELY.name
    message_model: str | int = MessageModel.CLUSTERING.name
    consume_from_where: str | int = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET.name
    subscription_data_set: list[SubscriptionData] = []
    unit_mode: bool = False

    def __post_init__(self) -> None:
        set_ = msgspec.structs.force_setattr
        set_(
            self, "consume_type", _enum_name(self.consume_type, ConsumeType, _CONSUME_TYPE_ALIASES)
        )
        set_(self, "message_model", _enum_name(self.message_model, MessageModel, {}))
        set_(self, "consume_from_where", _enum_name(self.consume_from_where, ConsumeFromWhere, {}))


class CheckClientRequestBody(Body, kw_only=True):
    """CHECK_CLIENT_CONFIG (46) request body: can the broker serve this subscription?"""

    client_id: str = ""
    group: str = ""
    subscription_data: SubscriptionData | None = None


class HeartbeatData(Body, kw_only=True):
    """HEART_BEAT (34) request body."""

    client_id: str = msgspec.field(name="clientID")
    producer_data_set: list[ProducerData] = []
    consumer_data_set: list[ConsumerData] = []


class BrokerStatsItem(Body, kw_only=True):
    """One window of a broker statistic: the count in it, per second, per call."""

    sum: int = 0
    tps: float = 0.0
    avgpt: float = 0.0


class BrokerStatsData(Body, kw_only=True):
    """VIEW_BROKER_STATS_DATA (315) response body (RocketMQ's BrokerStatsData): the last
    minute, hour and day of one statistic."""

    stats_minute: BrokerStatsItem = BrokerStatsItem()
    stats_hour: BrokerStatsItem = BrokerStatsItem()
    stats_day: BrokerStatsItem = BrokerStatsItem()


class KVTable(Body, kw_only=True):
    """GET_BROKER_RUNTIME_INFO (28) and GET_KVLIST_BY_NAMESPACE (219) response body: name ->
    value, all strings."""

    table: dict[str, str] = {}


class Connection(Body, kw_only=True):
    """One client connection of a group (inside ConsumerConnection)."""

    client_id: str
    client_addr: str = ""
    language: str = ""
    version: Int32 = 0


class ConsumerConnection(Body, kw_only=True):
    """GET_CONSUMER_CONNECTION_LIST (203) response body: a group's members and subscriptions."""

    connection_set: list[Connection] = []
    subscription_table: dict[str, SubscriptionData] = {}
    consume_type: str = ""
    message_model: str = ""
    consume_from_where: str = ""


class ProducerConnection(Body, kw_only=True):
    """GET_PRODUCER_CONNECTION_LIST (204) response body."""

    connection_set: list[Connection] = []


class ConsumerListBody(Body, kw_only=True):
    """GET_CONSUMER_LIST_BY_GROUP (38) response body."""

    consumer_id_list: list[str] = []


# ------------------------------------------------------------------------------- queue locks


class MessageQueue(Body, kw_only=True, order=True):
    """A queue; ordered by (topic, brokerName, queueId) like RocketMQ's MessageQueue."""

    topic: str
    broker_name: str
    queue_id: Int32


class LockBatchRequestBody(Body, kw_only=True):
    """LOCK_BATCH_MQ (41) request body."""

    consumer_group: str
    client_id: str
    mq_set: list[MessageQueue] = []
    only_this_broker: bool = False


class UnlockBatchRequestBody(Body, kw_only=True):
    """UNLOCK_BATCH_MQ (42) request body."""

    consumer_group: str
    client_id: str
    mq_set: list[MessageQueue] = []
    only_this_broker: bool = False


class LockBatchResponseBody(Body, kw_only=True):
    """LOCK_BATCH_MQ (41) response body: the queues now locked by the client."""

    lock_ok_mq_set: list[MessageQueue] = msgspec.field(default_factory=list, name="lockOKMQSet")


# ------------------------------------------------------------------------------ en/decoding

B = TypeVar("B", bound=Body)

_decoders: dict[type, msgspec.json.Decoder[Any]] = {}
_ENCODER = msgspec.json.Encoder()


def decode_body(cls: type[B], data: bytes, *, opaque: int | None = None) -> B:
    """Decode a JSON body into ``cls``; any problem -> ProtocolError(fatal=False, opaque)."""
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls, strict=False)
    if not data:
        raise ProtocolError(f"bad {cls.__name__} body: empty", fatal=False, opaque=opaque)
    try:
        return decoder.decode(data)
    except Exception as exc:  # msgspec errors, RecursionError on deep nesting, MemoryError
        raise ProtocolError(f"bad {cls.__name__} body: {exc}", fatal=False, opaque=opaque) from None


def encode_body(body: Body) -> bytes:
    """The JSON bytes of ``body`` (valid JSON: map keys always quoted)."""
    return _ENCODER.encode(body)
