"""The name-server half of ``Admin`` that mqadmin's namesrv commands use: KV config, order conf,
a broker's write perm, topics by cluster, system topics (a mixin; ``Admin`` supplies the
transport).

Writes (KV put / delete) go to every configured name server, as RocketMQ's MQClientAPIImpl
sends them, and fail on the first refusal; reads go to the name servers in order until one
answers. ``wipe_write_perm`` / ``add_write_perm`` ask each name server on its own (mqadmin
prints one line per name server).
"""

from __future__ import annotations

from actors.client.admin_port import AdminPort
from actors.client.errors import BrokerError, ClientError
from config.properties import PropertiesSyntaxError, parse_properties
from runtime.remoting.bodies import KVTable, TopicList, TopicRouteData, decode_body
from runtime.remoting.codes import RequestCode, ResponseCode

ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"
"""RocketMQ's KV namespace of order confs: topic -> ``brokerName:queueNums;...``."""


class NamesrvAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    # -- the name servers' own config ---------------------------------------------------------

    def namesrv_config(self) -> dict[str, dict[str, str]]:
        """GET_NAMESRV_CONFIG (319) of every configured name server (mqadmin getNamesrvConfig):
        name server -> its keys and values."""
        out: dict[str, dict[str, str]] = {}
        for address in self.config.namesrv:
            response = self._broker(address, RequestCode.GET_NAMESRV_CONFIG, {}, "namesrv config")
            try:
                entries = parse_properties(response.body.decode())
            except (UnicodeDecodeError, PropertiesSyntaxError) as exc:
                raise ClientError(f"{address}'s config does not parse: {exc}") from None
            out[address] = {e.key: e.value for e in entries}
        return out

    # -- KV config ----------------------------------------------------------------------------

    def put_kv_config(self, namespace: str, key: str, value: str) -> list[str]:
        """PUT_KV_CONFIG (100) on every name server (mqadmin updateKvConfig). Returns them."""
        ext = {"namespace": namespace, "key": key, "value": value}
        return self._each_namesrv(RequestCode.PUT_KV_CONFIG, ext, "put kv config")

    def delete_kv_config(self, namespace: str, key: str) -> list[str]:
        """DELETE_KV_CONFIG (102) on every name server (mqadmin deleteKvConfig); an absent key
        is no error. Returns the name servers."""
        ext = {"namespace": namespace, "key": key}
        return self._each_namesrv(RequestCode.DELETE_KV_CONFIG, ext, "delete kv config")

    def kv_config(self, namespace: str, key: str) -> str | None:
        """GET_KV_CONFIG (101): the value, or None when the name server has none."""
        ext = {"namespace": namespace, "key": key}
        try:
            response = self._namesrv(RequestCode.GET_KV_CONFIG, ext, "get kv config")
        except BrokerError as exc:
            if exc.code == ResponseCode.QUERY_NOT_FOUND:
                return None
            raise
        return response.ext_fields.get("value")

    def kv_list(self, namespace: str) -> dict[str, str]:
        """GET_KVLIST_BY_NAMESPACE (219): key -> value ({} for an unknown namespace)."""
        ext = {"namespace": namespace}
        try:
            response = self._namesrv(RequestCode.GET_KVLIST_BY_NAMESPACE, ext, "get kv list")
        except BrokerError as exc:
            if exc.code == ResponseCode.QUERY_NOT_FOUND:
                return {}
            raise
        return dict(decode_body(KVTable, response.body).table)

    # -- order conf (mqadmin updateOrderConf) -------------------------------------------------

    def order_conf(self, topic: str) -> str | None:
        """The topic's order conf (``brokerName:queueNums;...``), or None."""
        return self.kv_config(ORDER_TOPIC_CONFIG, topic)

    def put_order_conf(self, topic: str, conf: str) -> list[str]:
        """Set the topic's order conf on every name server (a name server with
        ``orderMessageEnable`` then adds it to the topic's route as ``orderTopicConf``)."""
        return self.put_kv_config(ORDER_TOPIC_CONFIG, topic, conf)

    def delete_order_conf(self, topic: str) -> list[str]:
        return self.delete_kv_config(ORDER_TOPIC_CONFIG, topic)

    # -- a broker's write perm ----------------------------------------------------------------

    def wipe_write_perm(self, broker_name: str, namesrv_addr: str | None = None) -> dict[str, int]:
        """WIPE_WRITE_PERM_OF_BROKER (205): producers stop sending to the broker group (the
        WRITE bit leaves its queue data in every route) until its topics change or it registers
        afresh. Name server -> topics changed, for ``namesrv_addr`` or every name server."""
        return self._write_perm(RequestCode.WIPE_WRITE_PERM_OF_BROKER, broker_name, namesrv_addr)

    def add_write_perm(self, broker_name: str, namesrv_addr: str | None = None) -> dict[str, int]:
        """ADD_WRITE_PERM_OF_BROKER (327, RocketMQ 5): the broker group's queue data in every
        route gets perm READ|WRITE. Name server -> topics changed."""
        return self._write_perm(RequestCode.ADD_WRITE_PERM_OF_BROKER, broker_name, namesrv_addr)

    def _write_perm(self, code: int, broker_name: str, namesrv_addr: str | None) -> dict[str, int]:
        field = (
            "wipeTopicCount" if code == RequestCode.WIPE_WRITE_PERM_OF_BROKER else "addTopicCount"
        )
        counts = {}
        for address in [namesrv_addr] if namesrv_addr else list(self.config.namesrv):
            response = self._broker(address, code, {"brokerName": broker_name}, "write perm")
            counts[address] = int(response.ext_fields.get(field) or 0)
        return counts

    # -- topic lists ----------------------------------------------------------------------------

    def topics_by_cluster(self, cluster: str) -> list[str]:
        """GET_TOPICS_BY_CLUSTER (224): the topics any broker of ``cluster`` serves, sorted."""
        response = self._namesrv(
            RequestCode.GET_TOPICS_BY_CLUSTER, {"cluster": cluster}, "topics by cluster"
        )
        return sorted(decode_body(TopicList, response.body).topic_list)

    def topic_clusters(self, topic: str) -> list[str]:
        """The clusters whose brokers serve ``topic`` (mqadmin topicClusterList; RocketMQ's
        looks at the route's first broker only), sorted."""
        response = self._namesrv(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}, "route")
        route = decode_body(TopicRouteData, response.body)
        return sorted({b.cluster for b in route.broker_datas if b.cluster})

    def system_topic_list(self) -> TopicList:
        """GET_SYSTEM_TOPIC_LIST_FROM_NS (304): every cluster and broker name (the topics the
        brokers create for them) and, in ``broker_addr``, one broker to ask for the rest."""
        response = self._namesrv(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS, {}, "system topics")
        return decode_body(TopicList, response.body)

    def _each_namesrv(self, code: int, ext: dict[str, str], what: str) -> list[str]:
        for address in self.config.namesrv:
            self._broker(address, code, ext, what)
        return list(self.config.namesrv)
