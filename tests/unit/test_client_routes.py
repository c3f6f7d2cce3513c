"""How a route becomes publish and subscribe queues (``actors.client.routes.build_route``),
with and without an ordered topic's ``orderTopicConf``."""

from __future__ import annotations

from actors.client.routes import build_route
from runtime.remoting.bodies import BrokerData, OrderTopicRouteData, QueueData, decode_body

ROUTE = dict(
    broker_datas=[
        BrokerData(cluster="c", broker_name="broker-a", broker_addrs={0: "10.0.0.1:10911"}),
        BrokerData(cluster="c", broker_name="broker-b", broker_addrs={1: "10.0.0.2:10911"}),
    ],
    queue_datas=[
        QueueData(broker_name="broker-a", read_queue_nums=2, write_queue_nums=2),
        QueueData(broker_name="broker-b", read_queue_nums=2, write_queue_nums=2),
    ],
)


def names(queues: tuple) -> list[str]:
    return [f"{q.broker_name}/{q.queue_id}" for q in queues]


def test_without_an_order_conf_only_brokers_with_a_master_take_sends() -> None:
    route = build_route("T", OrderTopicRouteData(**ROUTE))
    assert names(route.publish) == ["broker-a/0", "broker-a/1"]
    assert names(route.subscribe) == ["broker-a/0", "broker-a/1", "broker-b/0", "broker-b/1"]


def test_an_order_conf_fixes_the_publish_queues_in_its_order() -> None:
    # Given an ordered topic whose conf lists broker-b first, broker-b without a master now
    data = OrderTopicRouteData(**ROUTE, order_topic_conf="broker-b:2;broker-a:1;junk;x:y")
    route = build_route("T", data)
    # Then the publish queues are the conf's, in its order, broker-b's included (a send there
    # fails rather than moving a sharding key to another queue); malformed items are skipped
    assert names(route.publish) == ["broker-b/0", "broker-b/1", "broker-a/0"]
    # And reading is unchanged
    assert len(route.subscribe) == 4


def test_the_route_body_decodes_with_or_without_the_conf() -> None:
    raw = b'{"brokerDatas":[],"queueDatas":[],"orderTopicConf":"broker-a:4"}'
    assert decode_body(OrderTopicRouteData, raw).order_topic_conf == "broker-a:4"
    assert decode_body(OrderTopicRouteData, b'{"queueDatas":[]}').order_topic_conf is None
