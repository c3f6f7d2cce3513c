"""Request headers of the name server's admin requests (RocketMQ's ``header.namesrv`` classes).

Every field RocketMQ marks ``@CFNotNull`` is required here: a request without it gets
SYSTEM_ERROR naming the field (``decode_header`` raises ``ProtocolError(fatal=False)``), as a
RocketMQ name server answers a ``RemotingCommandException``.
"""

from __future__ import annotations

from runtime.remoting.headers import Header, Int64


class PutKVConfigRequestHeader(Header, kw_only=True):
    """PUT_KV_CONFIG (100)."""

    namespace: str
    key: str
    value: str


class GetKVConfigRequestHeader(Header, kw_only=True):
    """GET_KV_CONFIG (101); the reply's header carries ``value``."""

    namespace: str
    key: str


class DeleteKVConfigRequestHeader(Header, kw_only=True):
    """DELETE_KV_CONFIG (102)."""

    namespace: str
    key: str


class GetKVListByNamespaceRequestHeader(Header, kw_only=True):
    """GET_KVLIST_BY_NAMESPACE (219); the reply's body is a KVTable."""

    namespace: str


class WritePermOfBrokerRequestHeader(Header, kw_only=True):
    """WIPE_WRITE_PERM_OF_BROKER (205, reply ``wipeTopicCount``) and ADD_WRITE_PERM_OF_BROKER
    (327, RocketMQ 5, reply ``addTopicCount``): both name the broker group only."""

    broker_name: str


class GetTopicsByClusterRequestHeader(Header, kw_only=True):
    """GET_TOPICS_BY_CLUSTER (224)."""

    cluster: str


class RegisterTopicRequestHeader(Header, kw_only=True):
    """REGISTER_TOPIC_IN_NAMESRV (217); the body is a TopicRouteData of the topic's queue
    data."""

    topic: str


class QueryDataVersionRequestHeader(Header, kw_only=True):
    """QUERY_DATA_VERSION (322); the body is the broker's DataVersion, the reply's header
    carries ``changed`` and its body the DataVersion the name server holds (none when the
    broker is not registered)."""

    broker_name: str
    broker_addr: str
    cluster_name: str
    broker_id: Int64


class BrokerHeartbeatRequestHeader(Header, kw_only=True):
    """BROKER_HEARTBEAT (904, RocketMQ 5's brokers with ``enableSlaveActingMaster``, every
    ``brokerHeartbeatInterval``): a sign of life of the broker at ``brokerAddr`` in
    ``clusterName``. Its other fields (``brokerId``, ``epoch``, ``heartbeatTimeoutMills``...)
    are the controller's; the name server, as RocketMQ's, only refreshes the broker's last
    update (its timeout is the one it registered with)."""

    cluster_name: str
    broker_addr: str
    broker_name: str
