"""BrokerContext: what every broker request handler needs, in one place.

Handlers run in each request's own greenlet (runtime.session) and reach actors through the
directory, always with a timeout: they are edge code and may block; actors never do.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pykka

from config import BrokerConfig
from runtime.acl.plain import PlainAccessValidator
from runtime.directory import Directory
from runtime.latency import RPC_LABELS, SIZE_BUCKETS, Histogram, LatencyHistogram
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.request_context import request_waited_s, wait_turn

ASK_TIMEOUT = 5.0


class BrokerContext:
    """Config, directory and the directory names of this broker's actors."""

    def __init__(
        self, cfg: BrokerConfig, directory: Directory, name: str, store: Any, ha_state: Any = None
    ) -> None:
        self.cfg = cfg
        self.ha = ha_state
        """This node's HA state (``runtime.ha.state.HAState``): role, lease, master link."""
        self.epochs: Any = None
        """Its epoch file (``runtime.ha.epoch.EpochFile``; set by the node): master terms."""
        self.directory = directory
        self.name = name
        self.store = store
        """The store facade (actors.broker.store_service.BrokerStore)."""
        self.consumers = f"{name}/consumers"
        self.producers = f"{name}/producers"
        self.registrar = f"{name}/registrar"
        self.locks = f"{name}/locks"
        self.scheduler = f"{name}/scheduler"
        self.transactions = f"{name}/transactions"
        self.timer = f"{name}/timer"
        self.stats = f"{name}/stats"
        self.got_messages = 0
        """Messages handed to consumers in pull responses since start (admin statistics)."""
        self.got_by: dict[tuple[str, str], int] = {}
        """The same per (topic, consumer group): the metrics' ``rocketmq_messages_out_total``."""
        self.got_bytes_by: dict[tuple[str, str], int] = {}
        """Their bytes (the records as stored): ``rocketmq_throughput_out_total``."""
        self.rpc_latency = LatencyHistogram(
            "rocketmq_rpc_latency",
            "Milliseconds from a request read to its answer written.",
            RPC_LABELS,
        )
        """``rocketmq_rpc_latency`` (every answered request of the broker's sessions)."""
        self.message_size = Histogram(
            "rocketmq_message_size",
            "Bytes of a producer's send's messages as stored (their average), one per send.",
            ("topic", "message_type"),
            buckets=SIZE_BUCKETS,
            scale=1,
        )
        """``rocketmq_message_size`` (each stored producer's send, by topic and type)."""
        self.acl: PlainAccessValidator | None = None
        """The plain ACL when ``aclEnable`` (``runtime.acl.plain``); None: no check."""

    def proxy(self, actor: str) -> Any:
        return self.directory.proxy(actor)

    def ask(self, future: pykka.Future[Any], timeout: float = ASK_TIMEOUT) -> Any:
        return future.get(timeout=timeout)

    def register_now(self, *topics: str) -> None:
        """Tell the registrar to re-register: only ``topics`` when named (created or changed),
        else the whole table (one deleted, or the broker's settings changed); harmless if it
        is not running."""
        from actors.broker.registrar import RegisterNow

        ref = self.directory.get(self.registrar)
        if ref is not None:
            # (it may stop between the lookup and the tell: the ControllerClient calls this
            # from its heartbeat reply, which must not fail for it)
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(RegisterNow(topics or None))


def reply(
    request: RemotingCommand,
    code: int = ResponseCode.SUCCESS,
    remark: str | None = None,
    ext_fields: dict[str, Any] | None = None,
    body: bytes = b"",
) -> RemotingCommand:
    """Shorthand for RemotingCommand.response_to."""
    return RemotingCommand.response_to(
        request, code, remark=remark, ext_fields=ext_fields, body=body
    )


SYSTEM_GROUPS = frozenset(
    {
        "TOOLS_CONSUMER",
        "FILTERSRV_CONSUMER",
        "__MONITOR_CONSUMER",
        "CLIENT_INNER_PRODUCER",
        "SELF_TEST_C_GROUP",
        "CID_ONS-HTTP-PROXY",
        "CID_ONSAPI_PERMISSION",
        "CID_ONSAPI_OWNER",
        "CID_ONSAPI_PULL",
        "CID_RMQ_SYS_TRANS",
    }
)
"""The groups RocketMQ's SubscriptionGroupManager creates at start: they exist even when
``autoCreateSubscriptionGroup`` is false (mqadmin's TOOLS_CONSUMER among them)."""


def send_queue_busy(ctx: BrokerContext, request: RemotingCommand) -> RemotingCommand | None:
    """None when the send may be stored now: it is its turn (the connection's earlier sends are
    queued for storage: ``request_context.wait_turn``) within ``waitTimeMillsInSendQueue`` of
    being read. Else SYSTEM_BUSY, nothing stored (RocketMQ's fast failure of its send queue:
    under overload the client hears "busy" at once instead of timing out on a send that is then
    stored anyway)."""
    limit = ctx.cfg.wait_time_mills_in_send_queue
    budget_s = limit / 1000 - request_waited_s()
    if budget_s >= 0 and wait_turn(budget_s):
        return None
    waited_ms = request_waited_s() * 1000
    return reply(
        request,
        ResponseCode.SYSTEM_BUSY,
        remark=f"[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in "
        f"queue: {waited_ms:.0f}ms, waitTimeMillsInSendQueue: {limit}ms",
    )


def group_not_exist(
    ctx: BrokerContext, request: RemotingCommand, group: str, config: object | None
) -> RemotingCommand | None:
    """SUBSCRIPTION_GROUP_NOT_EXIST for a group without a config when the broker does not
    create groups on first use (``autoCreateSubscriptionGroup=false``); None when it may go on."""
    if config is not None or ctx.cfg.auto_create_subscription_group or group in SYSTEM_GROUPS:
        return None
    return reply(
        request,
        ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
        remark=f"subscription group [{group}] does not exist (autoCreateSubscriptionGroup is "
        "false: create it with updateSubGroup)",
    )


def topic_not_exist(request: RemotingCommand, topic: str) -> RemotingCommand:
    """TOPIC_NOT_EXIST in RocketMQ's words (sends, pulls, replies to an unknown topic)."""
    return reply(
        request,
        ResponseCode.TOPIC_NOT_EXIST,
        remark=f"topic[{topic}] not exist, apply first please!",
    )
