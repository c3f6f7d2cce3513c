"""The lite push consumer's calls: SyncLiteSubscription, and the lite topics a receive of one
of its clients reads (``actors.proxy.lite``, ``actors.proxy.lite_subscriptions``).

SyncLiteSubscription (PARTIAL_ADD / PARTIAL_REMOVE / COMPLETE_ADD / COMPLETE_REMOVE of the
client's lite topics of its bind topic, which must be a LITE topic): the lite topics' queue
topics are made if missing, the client's set changed, and the group starts or stops pulling
the queue topics no other client of it subscribes. A PARTIAL_ADD's ``offset_option`` places
the group's offset of a lite topic the group does not consume yet: LAST keeps it (a lite
topic new to the group is read from its first message), MIN its first message, MAX after its
last, ``offset`` there, ``tail_n`` N before the group's offset (or the end when it has none),
``timestamp`` the first message stored at or after it. Over ``CLIENT_QUOTA`` lite topics for
one client: LITE_SUBSCRIPTION_QUOTA_EXCEEDED.
"""

from __future__ import annotations

import time
from typing import Any

from actors.client.errors import ClientError
from actors.client.message import MessageQueue
from actors.proxy.convert import resource_name
from actors.proxy.lite import LiteError
from actors.proxy.lite_subscriptions import CLIENT_QUOTA
from actors.proxy.proto import Code, LiteSubscriptionAction, M, OffsetPolicy
from actors.proxy.service import ProxyService, error_code, status

_ADDING = (LiteSubscriptionAction.PARTIAL_ADD, LiteSubscriptionAction.COMPLETE_ADD)


def sync_lite_subscription(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.SyncLiteSubscriptionResponse()
    who = service.touch(context)
    group, bind = resource_name(request.group), resource_name(request.topic)
    if not who:
        return status(response, Code.CLIENT_ID_REQUIRED, "x-mq-client-id required")
    if not group or not bind:
        return status(response, Code.BAD_REQUEST, "group and topic required")
    action = request.action
    lites = list(request.lite_topic_set)
    try:
        kind = service.topic_types.of(bind)
        if kind != "LITE":
            return status(response, Code.ILLEGAL_TOPIC, f"topic {bind} is {kind}, not LITE")
        pop = service.group(group, lite=True)
        names: list[str] = []
        if action in _ADDING:
            have = service.lite.count(group, who)
            total = len(set(lites)) + (have if action == LiteSubscriptionAction.PARTIAL_ADD else 0)
            if total > CLIENT_QUOTA:
                text = f"lite subscription quota exceeded: {CLIENT_QUOTA}"
                return status(response, Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED, text)
            names = [service.lite_topics.ensure(bind, lite) for lite in lites]
        if action == LiteSubscriptionAction.PARTIAL_ADD and request.HasField("offset_option"):
            for name in names:
                if name not in pop.expressions:
                    _place(service, group, name, request.offset_option)
        change = service.lite.sync(group, who, bind, action, lites)
        service.apply_lite(group, change)
    except LiteError as exc:
        return status(response, exc.code, str(exc))
    except ClientError as exc:
        return status(response, error_code(exc), str(exc))
    return status(response, Code.OK)


def _place(service: ProxyService, group: str, name: str, option: Any) -> None:
    """Commit the group's offset of lite queue topic ``name`` as ``option`` says."""
    kind = option.WhichOneof("offset_type")
    if kind is None or (kind == "policy" and option.policy == OffsetPolicy.LAST):
        return
    admin = service.admin
    route = admin.topic_route(name)
    mq = MessageQueue(topic=name, broker_name=route.queue_datas[0].broker_name, queue_id=0)
    low, high = admin.min_offset(mq), admin.max_offset(mq)
    if kind == "policy":
        offset = low if option.policy == OffsetPolicy.MIN else high
    elif kind == "offset":
        offset = option.offset
    elif kind == "tail_n":
        committed = admin.committed_offset(group, mq)
        offset = (committed if committed >= 0 else high) - option.tail_n
    else:
        offset = admin.search_offset(mq, option.timestamp)
    admin.commit_offset(group, mq, min(max(offset, low), high))


def receive_topics(service: ProxyService, group: str, who: str, wait_s: float) -> list[str]:
    """The queue topics a lite client's receive reads: its lite topics; while it has none,
    waits up to ``wait_s`` for its first (an empty list when none came)."""
    until = time.monotonic() + wait_s
    with service.lite_changed:
        while True:
            topics = service.lite.topics_of(group, who)
            left = until - time.monotonic()
            if topics or left <= 0:
                return topics
            service.lite_changed.wait(left)
