"""The broker's request processor: a table from request code to handler.

Each request runs in its own greenlet (runtime.session), so a parked long-poll pull does not
hold up the heartbeat behind it. Handlers reach actors through ``BrokerContext`` with timeouts.
Unknown codes get REQUEST_CODE_NOT_SUPPORTED; a request that cannot be decoded gets
SYSTEM_ERROR with the reason (the session turns ProtocolError into that reply).
"""

from __future__ import annotations

from collections.abc import Callable

from actors.broker import (
    acl_gate,
    acl_handler,
    admin_handler,
    client_handler,
    consumer_status_handler,
    group_handler,
    ha_status_handler,
    order_handler,
    pull_handler,
    queue_admin_handler,
    reply_handler,
    reset_handler,
    retry_handler,
    running_info_handler,
    send_handler,
    slave_sync_handler,
    stats_handler,
    transaction_handler,
)
from actors.broker.context import BrokerContext, reply
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle

Handler = Callable[[BrokerContext, SessionHandle, RemotingCommand], RemotingCommand | None]

HANDLERS: dict[int, Handler] = {
    RequestCode.SEND_MESSAGE: send_handler.send,
    RequestCode.SEND_MESSAGE_V2: send_handler.send,
    RequestCode.SEND_BATCH_MESSAGE: send_handler.send,
    RequestCode.SEND_REPLY_MESSAGE: reply_handler.reply_message,
    RequestCode.SEND_REPLY_MESSAGE_V2: reply_handler.reply_message,
    RequestCode.PULL_MESSAGE: pull_handler.pull,
    # RocketMQ 4.9+'s Java DefaultLitePullConsumer pulls with 361 (the lite-pull sysFlag set);
    # its broker serves both codes with one PullMessageProcessor
    RequestCode.LITE_PULL_MESSAGE: pull_handler.pull,
    RequestCode.HEART_BEAT: client_handler.heartbeat,
    RequestCode.UNREGISTER_CLIENT: client_handler.unregister_client,
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: client_handler.consumer_list,
    RequestCode.GET_CONSUMER_CONNECTION_LIST: client_handler.consumer_connections,
    RequestCode.CHECK_CLIENT_CONFIG: client_handler.check_client_config,
    RequestCode.GET_PRODUCER_CONNECTION_LIST: client_handler.producer_connections,
    RequestCode.GET_ALL_PRODUCER_INFO: client_handler.all_producer_info,
    RequestCode.QUERY_CONSUMER_OFFSET: admin_handler.query_consumer_offset,
    RequestCode.UPDATE_CONSUMER_OFFSET: admin_handler.update_consumer_offset,
    RequestCode.GET_MAX_OFFSET: admin_handler.max_offset,
    RequestCode.GET_MIN_OFFSET: admin_handler.min_offset,
    RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: admin_handler.search_offset,
    RequestCode.GET_EARLIEST_MSG_STORETIME: admin_handler.earliest_store_time,
    RequestCode.QUERY_MESSAGE: admin_handler.query_message,
    RequestCode.VIEW_MESSAGE_BY_ID: admin_handler.view_message,
    RequestCode.UPDATE_AND_CREATE_TOPIC: admin_handler.create_topic,
    RequestCode.DELETE_TOPIC_IN_BROKER: admin_handler.delete_topic,
    RequestCode.GET_ALL_TOPIC_CONFIG: admin_handler.all_topic_config,
    RequestCode.VIEW_BROKER_STATS_DATA: stats_handler.view_broker_stats_data,
    RequestCode.GET_BROKER_CONSUME_STATS: stats_handler.broker_consume_stats,
    RequestCode.GET_TOPIC_CONFIG: admin_handler.topic_config,
    RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER: admin_handler.system_topic_list,
    RequestCode.QUERY_TOPIC_CONSUME_BY_WHO: group_handler.topic_consumed_by,
    RequestCode.QUERY_TOPICS_BY_CONSUMER: group_handler.topics_of_consumer,
    RequestCode.CLONE_GROUP_OFFSET: group_handler.clone_group_offset,
    RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: admin_handler.create_subscription_group,
    RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: admin_handler.all_subscription_groups,
    RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG: admin_handler.subscription_group,
    RequestCode.DELETE_SUBSCRIPTIONGROUP: admin_handler.delete_subscription_group,
    RequestCode.GET_BROKER_CONFIG: admin_handler.broker_config,
    RequestCode.UPDATE_BROKER_CONFIG: admin_handler.update_broker_config,
    RequestCode.GET_TOPIC_STATS_INFO: stats_handler.topic_stats,
    RequestCode.GET_BROKER_RUNTIME_INFO: stats_handler.broker_runtime_info,
    RequestCode.GET_BROKER_HA_STATUS: ha_status_handler.ha_status,
    RequestCode.GET_BROKER_EPOCH_CACHE: ha_status_handler.epoch_cache,
    RequestCode.GET_CONSUME_STATS: stats_handler.consume_stats,
    RequestCode.INVOKE_BROKER_TO_RESET_OFFSET: reset_handler.reset_offset,
    RequestCode.GET_CONSUMER_RUNNING_INFO: running_info_handler.consumer_running_info,
    RequestCode.CONSUME_MESSAGE_DIRECTLY: running_info_handler.consume_message_directly,
    RequestCode.CONSUMER_SEND_MSG_BACK: retry_handler.send_back,
    RequestCode.END_TRANSACTION: transaction_handler.end_transaction,
    RequestCode.LOCK_BATCH_MQ: order_handler.lock_batch,
    RequestCode.UNLOCK_BATCH_MQ: order_handler.unlock_batch,
    RequestCode.GET_ALL_CONSUMER_OFFSET: slave_sync_handler.all_consumer_offsets,
    RequestCode.GET_ALL_DELAY_OFFSET: slave_sync_handler.all_delay_offsets,
    slave_sync_handler.GET_TIMER_CHECK_POINT: slave_sync_handler.timer_check_point,
    slave_sync_handler.GET_TRANSACTION_TABLE: slave_sync_handler.transaction_table,
    slave_sync_handler.GET_METADATA_VERSION: slave_sync_handler.metadata_version,
    slave_sync_handler.GET_TAIL_LOSS_GUARD: slave_sync_handler.tail_loss_guard,
    RequestCode.QUERY_CONSUME_QUEUE: queue_admin_handler.query_consume_queue,
    RequestCode.QUERY_CONSUME_TIME_SPAN: queue_admin_handler.query_consume_time_span,
    RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE: queue_admin_handler.clean_expired_consume_queue,
    RequestCode.CLEAN_UNUSED_TOPIC: queue_admin_handler.clean_unused_topic,
    RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS: consumer_status_handler.consumer_status,
    RequestCode.QUERY_SUBSCRIPTION_BY_CONSUMER: consumer_status_handler.subscription_by_consumer,
    RequestCode.RESUME_CHECK_HALF_MESSAGE: transaction_handler.resume_check_half_message,
    RequestCode.UPDATE_AND_CREATE_ACL_CONFIG: acl_handler.change_acl,
    RequestCode.DELETE_ACL_CONFIG: acl_handler.change_acl,
    RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG: acl_handler.change_acl,
    RequestCode.GET_BROKER_CLUSTER_ACL_INFO: acl_handler.acl_info,
}


class BrokerProcessor:
    """Serves one broker's requests."""

    ordered_codes = frozenset(
        {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
    )
    """Sends of one connection are stored in the order they arrived (send_handler's turn)."""

    def __init__(self, ctx: BrokerContext, handlers: dict[int, Handler] | None = None) -> None:
        self.ctx = ctx
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.rpc_latency = ctx.rpc_latency
        """Observed by the sessions (``runtime.session``): the metrics' histogram."""

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        refused = acl_gate.refusal(self.ctx, session, request)
        if refused is not None:
            return refused.answer
        handler = self.handlers.get(request.code)
        if handler is None:
            if request.is_oneway:
                return None
            # (RocketMQ's remark, its leading space included: NettyRemotingAbstract)
            return reply(
                request,
                ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                remark=f" request type {request.code} not supported",
            )
        return handler(self.ctx, session, request)

    def on_close(self, session: SessionHandle) -> None:
        client_handler.channel_closed(self.ctx, session)
