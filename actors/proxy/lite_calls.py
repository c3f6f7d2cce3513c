"""SyncLiteSubscription: a lite consumer's lite topics of its bind topic, which must be a LITE
topic (``actors.proxy.lite``, ``lite_subscriptions``, ``lite_groups``).

PARTIAL_ADD / PARTIAL_REMOVE / COMPLETE_ADD / COMPLETE_REMOVE change the client's set (the
lite topics' queue topics are made first if missing), then the group's pulled topics are
matched to its clients' sets (``LiteGroups.apply``; a broker call failing there answers its
error, and the match is tried again within a second). A PARTIAL_ADD's ``offset_option``
places the group's offset of a lite topic the group does not consume yet: LAST keeps it (a
lite topic new to the group is read from its first message), MIN its first message, MAX
after its last, ``offset`` there, ``tail_n`` N before the group's offset (or the end when it
has none), ``timestamp`` the first message stored at or after it. Over ``CLIENT_QUOTA`` lite
topics for one client: LITE_SUBSCRIPTION_QUOTA_EXCEEDED; an unknown action or offset policy:
BAD_REQUEST.

RocketMQ 5's Python client (5.1.2, the newest) sends ``subscribe_lite("chat-1")`` as a
PARTIAL_ADD of the name's characters (``lite_topic_set.extend(name)``): from a client whose
``x-mq-language`` is PYTHON, a PARTIAL_ADD of several one-character entries is taken as the one
name they spell (every official client's PARTIAL_ADD carries one name; without this the proxy
made lite topics ``c``, ``h``, ... and the client's own lite topic waited for its 30 s
COMPLETE_ADD).
"""

from __future__ import annotations

from typing import Any

from actors.client.errors import ClientError
from actors.client.message import MessageQueue
from actors.proxy.convert import resource_name
from actors.proxy.lite import LiteError
from actors.proxy.lite_subscriptions import CLIENT_QUOTA
from actors.proxy.proto import Code, LiteSubscriptionAction, M, OffsetPolicy
from actors.proxy.service import ProxyService, error_code, status

_ADDING = (LiteSubscriptionAction.PARTIAL_ADD, LiteSubscriptionAction.COMPLETE_ADD)
_ACTIONS = tuple(LiteSubscriptionAction)


def sync_lite_subscription(service: ProxyService, request: Any, context: Any) -> Any:
    response = M.SyncLiteSubscriptionResponse()
    who = service.touch(context)
    group, bind = resource_name(request.group), resource_name(request.topic)
    if not who:
        return status(response, Code.CLIENT_ID_REQUIRED, "x-mq-client-id required")
    if not group or not bind:
        return status(response, Code.BAD_REQUEST, "group and topic required")
    action = request.action
    if action not in _ACTIONS:
        return status(response, Code.BAD_REQUEST, f"unknown lite subscription action {action}")
    placing = action == LiteSubscriptionAction.PARTIAL_ADD and request.HasField("offset_option")
    if placing and _option_problem(request.offset_option):
        return status(response, Code.BAD_REQUEST, _option_problem(request.offset_option))
    lites = _spelled_out(list(request.lite_topic_set), action, context)
    try:
        kind = service.topic_types.of(bind, strict=True)
        if kind != "LITE":
            try:
                service.admin.topic_route(bind)
            except ClientError:  # (no such topic: RocketMQ's answer for it)
                return status(response, Code.TOPIC_NOT_FOUND, f"topic {bind} not found")
            return status(response, Code.ILLEGAL_TOPIC, f"topic {bind} is {kind}, not LITE")
        pop = service.group(group, lite=True, owner=who)
        names: list[str] = []
        if action in _ADDING:
            have = service.lite.count(group, who)
            total = len(set(lites)) + (have if action == LiteSubscriptionAction.PARTIAL_ADD else 0)
            if total > CLIENT_QUOTA:
                text = f"lite subscription quota exceeded: {CLIENT_QUOTA}"
                return status(response, Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED, text)
            names = service.lite_topics.ensure_all(bind, lites)
        with pop.lite_lock:  # no match of the group's topics meanwhile (it would commit too)
            if placing:
                for name in names:
                    if name not in pop.expressions:
                        _place(service, group, name, request.offset_option)
            service.lite.sync(group, who, bind, action, lites)
        service.lite_groups.apply(group, wake=True)
    except LiteError as exc:
        return status(response, exc.code, str(exc))
    except ClientError as exc:
        # what changed stays: the group's topics are matched to it again within a second
        return status(response, error_code(exc), str(exc))
    return status(response, Code.OK)


def _spelled_out(lites: list[str], action: int, context: Any) -> list[str]:
    """The Python client's PARTIAL_ADD of one name's characters as that name (above)."""
    if action != LiteSubscriptionAction.PARTIAL_ADD or len(lites) < 2:
        return lites
    if any(len(lite) != 1 for lite in lites):
        return lites
    language = next(
        (str(v) for k, v in context.invocation_metadata() or () if k == "x-mq-language"), ""
    )
    return ["".join(lites)] if language.upper() == "PYTHON" else lites


def _option_problem(option: Any) -> str | None:
    kind = option.WhichOneof("offset_type")
    if kind == "policy" and option.policy not in tuple(OffsetPolicy):
        return f"unknown offset policy {option.policy}"
    if kind in ("offset", "tail_n", "timestamp") and getattr(option, kind) < 0:
        return f"{kind} must be >= 0"
    return None


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
