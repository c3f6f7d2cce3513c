"""Consumer group names as the broker takes them from requests (RocketMQ's TopicValidator
``isTopicOrGroupIllegal`` and Validators.CHARACTER_MAX_LENGTH): 1..255 characters of
``[%|a-zA-Z0-9_-]``.

RocketMQ 5's SubscriptionGroupManager creates a group on first use only under a legal name
(``findSubscriptionGroupConfig`` answers null for an illegal one, which the handlers then
answer SUBSCRIPTION_GROUP_NOT_EXIST): ``unknown_group`` gives that answer here, for a name that
is illegal or, with ``autoCreateSubscriptionGroup=false``, has no config.
"""

from __future__ import annotations

import re

from actors.broker.context import BrokerContext, group_not_exist, reply
from runtime.remoting.codes import ResponseCode
from runtime.remoting.command import RemotingCommand

GROUP_MAX_LENGTH = 255
_GROUP_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")
SHOWN = 200
"""At most this many characters of a client's name go back in a remark."""


def group_problem(group: str) -> str | None:
    """Why ``group`` is not a legal consumer group name, or None."""
    if not group:
        return "the group name is empty"
    if len(group) > GROUP_MAX_LENGTH:
        return f"the group name is longer than {GROUP_MAX_LENGTH} characters"
    if not _GROUP_RE.match(group):
        return "the group name holds characters other than [%|a-zA-Z0-9_-]"
    return None


def shown(name: str) -> str:
    """``name`` as a remark quotes it: cut to 200 characters."""
    return name if len(name) <= SHOWN else f"{name[:SHOWN]}..."


def unknown_group(
    ctx: BrokerContext, request: RemotingCommand, group: str, config: object | None
) -> RemotingCommand | None:
    """SUBSCRIPTION_GROUP_NOT_EXIST for a group RocketMQ 5 would find no config for (an
    illegal name; no config while ``autoCreateSubscriptionGroup`` is off); None otherwise."""
    problem = None if config is not None else group_problem(group)
    if problem is not None:
        return reply(
            request,
            ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
            remark=f"subscription group not exist, {shown(group)!r}: {problem}",
        )
    return group_not_exist(ctx, request, group, config)
