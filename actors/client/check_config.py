"""CHECK_CLIENT_CONFIG (46): can a broker serve this consumer's subscriptions?

RocketMQ's push consumer asks before it starts (``MQClientInstance.checkClientInBroker``): for
every subscription that is not a TAG expression, one broker of the topic's route (the master of
the first broker name that has one, else any address) is sent the group, the client id and the
``SubscriptionData``; anything but SUCCESS refuses the start. A broker without
``enablePropertyFilter`` answers SYSTEM_ERROR, one that cannot compile the expression
SUBSCRIPTION_PARSE_FAILED, each with its reason as the remark. Without this, such a consumer
would start and then fail every pull.

Not an actor: plain functions a greenlet on the client's hub calls (blocking it, with a timeout).
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.client.instance import ClientInstance
from actors.client.pull import TAG, TagFilter
from actors.client.remoting import make_request
from actors.client.routes import TopicRoute
from runtime.remoting.bodies import CheckClientRequestBody, SubscriptionData, encode_body
from runtime.remoting.codes import RequestCode


def check_address(route: TopicRoute) -> str | None:
    """The broker to ask about ``route``'s topic: the first broker name's master (else any of
    its addresses), as RocketMQ's ``findBrokerAddrByTopic`` picks one broker of the route."""
    for broker_name in sorted(route.brokers):
        address = route.any_address(broker_name)
        if address is not None:
            return address
    return None


def check_subscription(
    instance: ClientInstance, group: str, topic: str, sub: TagFilter, timeout: float
) -> None:
    """Ask one broker of ``topic``'s cached route whether it can serve ``sub``. A TAG
    subscription, or a topic with no route yet, is not checked (as in RocketMQ). Raises
    BrokerError (the broker's code and remark) when refused, ConnectError or
    RequestTimeoutError when the broker did not answer."""
    if sub.expression_type == TAG:
        return
    route = instance.routes.get(topic)
    address = check_address(route) if route is not None else None
    if address is None:
        return
    body = CheckClientRequestBody(
        client_id=instance.client_id,
        group=group,
        subscription_data=SubscriptionData(
            topic=topic,
            sub_string=sub.expression,
            tags_set=[],
            code_set=[],
            expression_type=sub.expression_type,
        ),
    )
    cmd = make_request(RequestCode.CHECK_CLIENT_CONFIG, body=encode_body(body))
    what = f"check of {group}'s {sub.expression_type} subscription to {topic}"
    instance.remoting.invoke_ok(address, cmd, timeout, what)


def check_subscriptions(
    instance: ClientInstance, group: str, subscriptions: Mapping[str, TagFilter], timeout: float
) -> None:
    """``check_subscription`` for each subscription, in topic order; the first refusal raises."""
    for topic, sub in sorted(subscriptions.items()):
        check_subscription(instance, group, topic, sub, timeout)
