"""What the ``Admin`` mixins (``admin_topics``, ``admin_namesrv``, ``admin_groups``,
``admin_messages``, ``admin_queues``, ``admin_acl``, ``admin_export``, ``admin_controller``,
``trace_view``) need of ``Admin`` itself: declared once here, implemented in
``actors.client.admin``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from runtime.remoting.command import RemotingCommand

T = TypeVar("T")


class AdminPort:
    """The base of every ``Admin`` mixin; ``Admin`` overrides each of these."""

    timeout: float
    config: Any

    def brokers(self, cluster: str | None = None) -> list[Any]:
        """Every broker (masters and slaves) of ``cluster`` or of all, as ``BrokerAddress``."""
        raise NotImplementedError

    def masters(self, cluster: str | None = None) -> dict[str, str]:
        """Broker name -> master address, of ``cluster`` or every cluster."""
        raise NotImplementedError

    def topic_route(self, topic: str) -> Any:
        raise NotImplementedError

    def fetch_queues(self, topic: str) -> list[Any]:
        """The topic's readable queues, sorted (``MessageAdmin``)."""
        raise NotImplementedError

    def broker_config(self, broker_addr: str) -> dict[str, str]:
        """GET_BROKER_CONFIG: the broker's settings by RocketMQ name (``MessageAdmin``)."""
        raise NotImplementedError

    def query_messages(
        self,
        topic: str,
        key: str,
        *,
        max_num: int = 32,
        begin_ms: int = 0,
        end_ms: int = 2**63 - 1,
    ) -> list[Any]:
        """QUERY_MESSAGE on every master of ``topic``: the messages indexed under ``key``."""
        raise NotImplementedError

    def delete_topic_in_brokers(self, topic: str, *, cluster: str | None = None) -> list[str]:
        """DELETE_TOPIC_IN_BROKER on the masters (``TopicAdmin``)."""
        raise NotImplementedError

    def delete_topic_in_namesrv(self, topic: str, *, cluster: str | None = None) -> list[str]:
        """DELETE_TOPIC_IN_NAMESRV on every name server (``TopicAdmin``)."""
        raise NotImplementedError

    def _route_masters(self, topic: str, route: Any = None) -> dict[str, str]:
        """Broker name -> master address of the brokers the topic's route lists."""
        raise NotImplementedError

    def _targets(self, cluster: str | None, broker_addr: str | None) -> list[str]:
        """``broker_addr``, or every master (of ``cluster``)."""
        raise NotImplementedError

    def _namesrv(self, code: int, ext: dict[str, str], what: str) -> RemotingCommand:
        """One request to the name servers in order until one answers."""
        raise NotImplementedError

    def _broker(
        self,
        address: str,
        code: int,
        ext: dict[str, str],
        what: str,
        body: bytes = b"",
        timeout: float | None = None,
    ) -> RemotingCommand:
        """One request to one broker; a refusal raises ``BrokerError``."""
        raise NotImplementedError

    def _running(self) -> Any:
        raise NotImplementedError

    def _call(self, fn: Callable[[], T], what: str, timeout: float | None = None) -> T:
        raise NotImplementedError
