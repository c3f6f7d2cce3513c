"""Typed request and response headers, carried in a command's ``extFields``.

Python attributes are snake_case, wire names camelCase (RocketMQ's Java field names). Decoding
and encoding (coercing what real clients send, errors naming the field, the short names of
SEND_MESSAGE_V2) are ``runtime.remoting.header_codec``.

Required fields: those that identify what the request is about (group, topic, queue, offset...).
Fields RocketMQ marks not-null but that have an obvious neutral value get a default instead
(sysFlag 0, flag 0, bornTimestamp 0, defaultTopic TBW102, ...), to stay lenient with clients.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from runtime.remoting.codes import RequestCode

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

DEFAULT_TOPIC = "TBW102"
"""The topic producers name in ``defaultTopic`` so a broker may auto-create theirs."""


class Header(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """Base of every header: keyword-only, camelCase on the wire, immutable."""


# --------------------------------------------------------------------------------- requests


class SendMessageRequestHeader(Header, kw_only=True):
    """SEND_MESSAGE (10) long names; SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320) send the
    same fields under the short names a..n: use ``header_codec.decode_send_header``."""

    producer_group: str
    topic: str
    default_topic: str = DEFAULT_TOPIC
    default_topic_queue_nums: Int32 = 4
    queue_id: Int32
    sys_flag: Int32 = 0
    born_timestamp: Int64 = 0
    flag: Int32 = 0
    properties: str = ""
    reconsume_times: Int32 = 0
    unit_mode: bool = False
    batch: bool = False
    max_reconsume_times: Int32 | None = None
    broker_name: str | None = None


class PullMessageRequestHeader(Header, kw_only=True):
    """PULL_MESSAGE (11)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    queue_offset: Int64
    max_msg_nums: Int32 = 32
    sys_flag: Int32 = 0
    commit_offset: Int64 = 0
    suspend_timeout_millis: Int64 = 0
    subscription: str | None = None
    sub_version: Int64 = 0
    expression_type: str | None = None
    max_msg_bytes: Int32 | None = None


class QueryConsumerOffsetRequestHeader(Header, kw_only=True):
    """QUERY_CONSUMER_OFFSET (14)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    set_zero_if_not_found: bool | None = None


class UpdateConsumerOffsetRequestHeader(Header, kw_only=True):
    """UPDATE_CONSUMER_OFFSET (15)."""

    consumer_group: str
    topic: str
    queue_id: Int32
    commit_offset: Int64


class GetMaxOffsetRequestHeader(Header, kw_only=True):
    """GET_MAX_OFFSET (30)."""

    topic: str
    queue_id: Int32
    committed: bool = True


class GetMinOffsetRequestHeader(Header, kw_only=True):
    """GET_MIN_OFFSET (31)."""

    topic: str
    queue_id: Int32


class SearchOffsetRequestHeader(Header, kw_only=True):
    """SEARCH_OFFSET_BY_TIMESTAMP (29)."""

    topic: str
    queue_id: Int32
    timestamp: Int64
    boundary_type: str | None = None


class GetEarliestMsgStoretimeRequestHeader(Header, kw_only=True):
    """GET_EARLIEST_MSG_STORETIME (32)."""

    topic: str
    queue_id: Int32


class ViewMessageRequestHeader(Header, kw_only=True):
    """VIEW_MESSAGE_BY_ID (33): ``offset`` is the commit-log offset from the offset message id."""

    offset: Int64
    topic: str | None = None


class QueryMessageRequestHeader(Header, kw_only=True):
    """QUERY_MESSAGE (12)."""

    topic: str
    key: str
    max_num: Int32
    begin_timestamp: Int64
    end_timestamp: Int64


class GetConsumerListByGroupRequestHeader(Header, kw_only=True):
    """GET_CONSUMER_LIST_BY_GROUP (38)."""

    consumer_group: str


class GetTopicStatsInfoRequestHeader(Header, kw_only=True):
    """GET_TOPIC_STATS_INFO (202)."""

    topic: str


class GetConsumeStatsRequestHeader(Header, kw_only=True):
    """GET_CONSUME_STATS (208): every topic the group committed offsets for when ``topic`` is
    empty."""

    consumer_group: str
    topic: str = ""


class UnregisterClientRequestHeader(Header, kw_only=True):
    """UNREGISTER_CLIENT (35)."""

    client_id: str = msgspec.field(name="clientID")
    producer_group: str | None = None
    consumer_group: str | None = None


class ConsumerSendMsgBackRequestHeader(Header, kw_only=True):
    """CONSUMER_SEND_MSG_BACK (36)."""

    offset: Int64
    group: str
    delay_level: Int32 = 0
    origin_msg_id: str | None = None
    origin_topic: str | None = None
    unit_mode: bool = False
    max_reconsume_times: Int32 | None = None


class EndTransactionRequestHeader(Header, kw_only=True):
    """END_TRANSACTION (37). ``commit_or_rollback``: 0 unknown, 8 commit, 12 rollback."""

    producer_group: str
    tran_state_table_offset: Int64
    commit_log_offset: Int64
    commit_or_rollback: Int32
    from_transaction_check: bool = False
    msg_id: str
    transaction_id: str | None = None
    topic: str | None = None


class CheckTransactionStateRequestHeader(Header, kw_only=True):
    """CHECK_TRANSACTION_STATE (39), broker to producer."""

    tran_state_table_offset: Int64
    commit_log_offset: Int64
    msg_id: str | None = None
    transaction_id: str | None = None
    offset_msg_id: str | None = None
    topic: str | None = None


class NotifyConsumerIdsChangedRequestHeader(Header, kw_only=True):
    """NOTIFY_CONSUMER_IDS_CHANGED (40), broker to consumer."""

    consumer_group: str


class RegisterBrokerRequestHeader(Header, kw_only=True):
    """REGISTER_BROKER (103). ``compressed`` true: the body is RocketMQ's compressed binary form
    (``runtime.remoting.register_body``; actormq's brokers send it with ``compressedRegister``
    or when the JSON body would be large), else JSON. Marks of actormq's brokers:
    ``actormqFull``, the body is the broker's whole table (topics left out were deleted);
    ``actormqIncremental``, only the topics that changed, to merge into the broker's table.
    Without either (RocketMQ's brokers) the name server merges, as RocketMQ's does."""

    broker_name: str
    broker_addr: str
    cluster_name: str
    ha_server_addr: str = ""
    broker_id: Int64
    heartbeat_timeout_millis: Int64 | None = None
    compressed: bool = False
    body_crc32: Int32 = 0
    actormq_incremental: bool = False
    actormq_full: bool = False
    enable_acting_master: bool | None = None
    """RocketMQ 5's brokers send it, true or false (their ``enableSlaveActingMaster``); None:
    a RocketMQ 4 broker. The name server applies only a RocketMQ 5 slave's topics (its prime
    slave, ``actors.namesrv.route_table``)."""


class UnregisterBrokerRequestHeader(Header, kw_only=True):
    """UNREGISTER_BROKER (104)."""

    broker_name: str
    broker_addr: str
    cluster_name: str
    broker_id: Int64


class GetRouteInfoRequestHeader(Header, kw_only=True):
    """GET_ROUTEINFO_BY_TOPIC (105)."""

    topic: str
    accept_standard_json_only: bool | None = None


class CreateTopicRequestHeader(Header, kw_only=True):
    """UPDATE_AND_CREATE_TOPIC (17)."""

    topic: str
    default_topic: str = DEFAULT_TOPIC
    read_queue_nums: Int32
    write_queue_nums: Int32
    perm: Int32
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: Int32 = 0
    order: bool = False
    attributes: str | None = None
    """RocketMQ 5's ``+key=value,-key`` changes of the topic's attributes."""


# -------------------------------------------------------------------------------- responses


class SendMessageResponseHeader(Header, kw_only=True):
    """Reply to a send: the offset message id and where the (first) message landed."""

    msg_id: str
    queue_id: Int32
    queue_offset: Int64
    transaction_id: str | None = None


class PullMessageResponseHeader(Header, kw_only=True):
    """Reply to a pull (every value travels as a string)."""

    suggest_which_broker_id: Int64 = 0
    next_begin_offset: Int64
    min_offset: Int64
    max_offset: Int64


class QueryConsumerOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetMaxOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetMinOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class SearchOffsetResponseHeader(Header, kw_only=True):
    offset: Int64


class GetEarliestMsgStoretimeResponseHeader(Header, kw_only=True):
    timestamp: Int64


class QueryMessageResponseHeader(Header, kw_only=True):
    index_last_update_timestamp: Int64
    index_last_update_phyoffset: Int64


class RegisterBrokerResponseHeader(Header, kw_only=True):
    ha_server_addr: str | None = None
    master_addr: str | None = None


REQUEST_HEADERS: dict[int, type[Header]] = {
    RequestCode.SEND_MESSAGE: SendMessageRequestHeader,
    RequestCode.SEND_MESSAGE_V2: SendMessageRequestHeader,
    RequestCode.SEND_BATCH_MESSAGE: SendMessageRequestHeader,
    RequestCode.PULL_MESSAGE: PullMessageRequestHeader,
    RequestCode.QUERY_MESSAGE: QueryMessageRequestHeader,
    RequestCode.QUERY_CONSUMER_OFFSET: QueryConsumerOffsetRequestHeader,
    RequestCode.UPDATE_CONSUMER_OFFSET: UpdateConsumerOffsetRequestHeader,
    RequestCode.UPDATE_AND_CREATE_TOPIC: CreateTopicRequestHeader,
    RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: SearchOffsetRequestHeader,
    RequestCode.GET_MAX_OFFSET: GetMaxOffsetRequestHeader,
    RequestCode.GET_MIN_OFFSET: GetMinOffsetRequestHeader,
    RequestCode.GET_EARLIEST_MSG_STORETIME: GetEarliestMsgStoretimeRequestHeader,
    RequestCode.VIEW_MESSAGE_BY_ID: ViewMessageRequestHeader,
    RequestCode.UNREGISTER_CLIENT: UnregisterClientRequestHeader,
    RequestCode.CONSUMER_SEND_MSG_BACK: ConsumerSendMsgBackRequestHeader,
    RequestCode.END_TRANSACTION: EndTransactionRequestHeader,
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: GetConsumerListByGroupRequestHeader,
    RequestCode.GET_TOPIC_STATS_INFO: GetTopicStatsInfoRequestHeader,
    RequestCode.GET_CONSUME_STATS: GetConsumeStatsRequestHeader,
    RequestCode.CHECK_TRANSACTION_STATE: CheckTransactionStateRequestHeader,
    RequestCode.NOTIFY_CONSUMER_IDS_CHANGED: NotifyConsumerIdsChangedRequestHeader,
    RequestCode.REGISTER_BROKER: RegisterBrokerRequestHeader,
    RequestCode.UNREGISTER_BROKER: UnregisterBrokerRequestHeader,
    RequestCode.GET_ROUTEINFO_BY_TOPIC: GetRouteInfoRequestHeader,
}
"""Request code -> header class (send codes: decode with ``header_codec.decode_send_header``)."""
