"""What a request needs under RocketMQ's plain ACL (``PlainAccessResource.parse``).

``needed(request)`` -> {resource: permission}: a topic by its name, a consumer group by its
retry topic (``%RETRY%<group>``), as RocketMQ keys them. Sends need PUB on their topic (SUB on the
group for a send to a ``%RETRY%`` topic); pulls, offset queries and commits, heartbeats, group
lookups and queue locks need SUB on the topic(s) and the group; a consumer's send-back SUB on
its group; END_TRANSACTION PUB on the topic its header names, VIEW_MESSAGE_BY_ID SUB on it,
CONSUME_MESSAGE_DIRECTLY SUB on its group and topic (as RocketMQ 5's ACL 2.0 maps these codes,
``AuthorizationContextBuilder``). Those that name a message by its commit-log offset
(send-back, END_TRANSACTION, VIEW_MESSAGE_BY_ID, CONSUME_MESSAGE_DIRECTLY) are checked again by
their handlers against the topic the message is stored in (``stored_topic_need``), which the
client's header need not tell truly. Every other request needs only a valid signature, except
the admin codes (``ADMIN_CODES``: those that change the broker or another's data, and those
that read every group's and topic's configs and offsets, which a slave copies), which need an
admin account (or the inner account, or a white-listed host).
"""

from __future__ import annotations

from enum import IntFlag

from runtime.errors import ProtocolError
from runtime.remoting.bodies import (
    HeartbeatData,
    LockBatchRequestBody,
    UnlockBatchRequestBody,
    decode_body,
)
from runtime.remoting.codes import RETRY_PREFIX, RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import send_uses_long_names


class Permission(IntFlag):
    """RocketMQ's ACL permission bits (``Permission``). The rules keep them as plain ``int``
    (an IntFlag's ``&`` costs a microsecond: the check runs on every request)."""

    NONE = 0
    DENY = 1
    ANY = 2
    PUB = 4
    SUB = 8

    @classmethod
    def parse(cls, text: str | None) -> int:
        """``PUB``, ``SUB``, ``PUB|SUB`` / ``SUB|PUB`` or ``DENY``; anything else is DENY."""
        value = (text or "").strip()
        if value == "PUB":
            return _PUB
        if value == "SUB":
            return _SUB
        if value in ("PUB|SUB", "SUB|PUB"):
            return _PUB | _SUB
        return _DENY


_DENY, _ANY, _PUB, _SUB = 1, 2, 4, 8


def grants(owned: int, needed: int) -> bool:
    """Owned permission ``owned`` allows ``needed`` (``Permission.checkPermission``)."""
    if owned & _DENY:
        return False
    if needed & _ANY:
        return bool(owned & (_PUB | _SUB))
    return bool(needed & owned)


SLAVE_SYNC_OWN_CODES = (60, 3011, 3012, 3013)
"""GET_TIMER_CHECK_POINT (60) and actormq's GET_TRANSACTION_TABLE, GET_METADATA_VERSION and
GET_TAIL_LOSS_GUARD: what a slave copies besides the RocketMQ codes
(``actors.broker.slave_sync_handler``)."""

ADMIN_CODES = frozenset(
    {
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.UPDATE_BROKER_CONFIG,
        RequestCode.DELETE_TOPIC_IN_BROKER,
        RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        RequestCode.DELETE_SUBSCRIPTIONGROUP,
        # RocketMQ 4 lets any valid signature change the ACL itself; here only an admin may
        RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
        RequestCode.DELETE_ACL_CONFIG,
        RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
        # another group's offsets rewritten: RocketMQ 4 checks only the signature; ACL 2.0
        # wants UPDATE on the group and topic, an action no plain-ACL permission grants
        RequestCode.CLONE_GROUP_OFFSET,
        RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
        # every group's and topic's configs and offsets, and the broker's own progress: what a
        # slave copies (SlaveSynchronize; a slave signs with the inner account, a super user,
        # or is white-listed). ACL 2.0 as released maps no resource for them (a valid
        # signature), its hardened builder LIST on every topic / group or GET on the cluster;
        # no plain-ACL permission grants those
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        *SLAVE_SYNC_OWN_CODES,
        # admin operations: UPDATE on the cluster (306, 316) or on the topic (323) in ACL 2.0
        RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE,
        RequestCode.CLEAN_UNUSED_TOPIC,
        RequestCode.RESUME_CHECK_HALF_MESSAGE,
    }
)
_SENDS = frozenset(
    {
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
        RequestCode.SEND_REPLY_MESSAGE,
        RequestCode.SEND_REPLY_MESSAGE_V2,
    }
)
_PULLS = frozenset({RequestCode.PULL_MESSAGE, RequestCode.LITE_PULL_MESSAGE})
_OFFSETS = frozenset({RequestCode.QUERY_CONSUMER_OFFSET, RequestCode.UPDATE_CONSUMER_OFFSET})
_LOCKS: dict[int, type[LockBatchRequestBody] | type[UnlockBatchRequestBody]] = {
    RequestCode.LOCK_BATCH_MQ: LockBatchRequestBody,
    RequestCode.UNLOCK_BATCH_MQ: UnlockBatchRequestBody,
}


def group_resource(group: str) -> str:
    return RETRY_PREFIX + group


def is_group_resource(resource: str) -> bool:
    return resource.startswith(RETRY_PREFIX)


def needed(request: RemotingCommand) -> dict[str, int]:
    """The resources ``request`` touches and the permission (``Permission`` bits) each needs
    (empty: none)."""
    code = request.code
    ext = request.ext_fields
    out: dict[str, int] = {}

    def need(resource: str | None, perm: int) -> None:
        if resource:
            out[resource] = out.get(resource, 0) | perm

    if code in _SENDS:
        # the field the send handler reads: a V2 send may carry the long names, a reply
        # (324) the short ones
        topic = ext.get("topic" if send_uses_long_names(code, ext) else "b")
        if topic is not None and is_group_resource(topic):
            need(topic, _SUB)  # a consumer's copy to its retry topic
        else:
            need(topic, _PUB)
    elif code in _PULLS:
        need(ext.get("topic"), _SUB)
        need(_group(ext.get("consumerGroup")), _SUB)
    elif code == RequestCode.CONSUMER_SEND_MSG_BACK:
        # ACL 2.0's: the group only (ACL 1.0 wanted PUB on the client's originTopic, which a
        # consumer need not hold and the handler does not read); the handler then wants SUB
        # on the topic the message is stored in
        need(_group(ext.get("group")), _SUB)
    elif code in (RequestCode.QUERY_MESSAGE, RequestCode.VIEW_MESSAGE_BY_ID):
        need(ext.get("topic"), _SUB)  # (33: the stored message's topic too, by its handler)
    elif code == RequestCode.END_TRANSACTION:
        need(ext.get("topic"), _PUB)  # (the half message's topic too, by its handler)
    elif code in _OFFSETS:
        need(_group(ext.get("consumerGroup")), _SUB)
        need(ext.get("topic"), _SUB)
    elif code in _LOCKS:
        try:
            lock = decode_body(_LOCKS[code], request.body, opaque=request.opaque)
        except ProtocolError:
            return out  # the handler answers the bad body
        need(_group(lock.consumer_group), _SUB)
        for topic in {mq.topic for mq in lock.mq_set}:
            need(topic, _SUB)
    elif code == RequestCode.CONSUME_MESSAGE_DIRECTLY:
        # ACL 2.0's: SUB on the group and on the header's topic when given (the handler then
        # wants SUB on the topic the message is stored in)
        need(_group(ext.get("consumerGroup")), _SUB)
        need(ext.get("topic"), _SUB)
    elif code in (RequestCode.UNREGISTER_CLIENT, RequestCode.GET_CONSUMER_LIST_BY_GROUP):
        need(_group(ext.get("consumerGroup")), _SUB)
    elif code == RequestCode.HEART_BEAT:
        try:
            data = decode_body(HeartbeatData, request.body, opaque=request.opaque)
        except ProtocolError:
            return out  # the handler answers the bad body
        for consumer in data.consumer_data_set:
            need(_group(consumer.group_name), _SUB)
            for sub in consumer.subscription_data_set:
                need(sub.topic, _SUB)
    return out


def _group(group: str | None) -> str | None:
    return group_resource(group) if group else None


def stored_topic_need(code: int, topic: str) -> dict[str, int]:
    """What a request naming a stored message by its offset (CONSUMER_SEND_MSG_BACK,
    END_TRANSACTION, VIEW_MESSAGE_BY_ID, CONSUME_MESSAGE_DIRECTLY) needs on the topic the
    message is stored in: PUB to end a transaction (its producer's), SUB to read it, copy it to
    the group's retry topic or hand it to a consumer (its consumer's; a message in
    ``%RETRY%<group>`` needs SUB on that group)."""
    return {topic: _PUB if code == RequestCode.END_TRANSACTION else _SUB}
