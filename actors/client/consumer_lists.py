"""``ConsumerLists``: a rebalancer's GET_CONSUMER_LIST_BY_GROUP requests.

``ids(addresses, topic)``: the group's members that subscribe ``topic``, from the first of
``addresses`` (the topic's masters) that answers. actormq's brokers answer only those when every
member is an actormq client (the ``topic`` field; RocketMQ's brokers ignore it and answer every
member, which is the same list when the members subscribe alike), so members subscribing
different topics (lite topics through several proxies) share each topic among those that pull
it.

In a round over many topics (``start_round(many=True)`` ... ``end_round()``) each broker is
first asked once for the group's whole list: where that is this client alone, every topic's
list there is this client too, and its per-topic request is skipped (a lite group served by
one proxy asked a broker once per lite topic every 20 s: thousands of requests). Called from
the round's greenlets at once: the first one for a broker asks, the others wait for its answer.
"""

from __future__ import annotations

import gevent.event

from actors.client.errors import BrokerError, ClientError
from actors.client.instance import ClientInstance
from actors.client.remoting import make_request
from runtime.errors import ProtocolError
from runtime.remoting.bodies import ConsumerListBody, decode_body
from runtime.remoting.codes import RequestCode, ResponseCode


class ConsumerLists:
    def __init__(self, instance: ClientInstance, group: str, timeout: float) -> None:
        self.instance = instance
        self.group = group
        self.timeout = timeout
        self._alone: dict[str, gevent.event.AsyncResult] | None = None

    def start_round(self, many: bool) -> None:
        self._alone = {} if many else None

    def end_round(self) -> None:
        self._alone = None

    def ids(self, addresses: list[str], topic: str) -> list[str]:
        if self._alone is not None and addresses and self._is_alone(addresses[0]):
            return [self.instance.client_id]
        last: ClientError | None = None
        for address in addresses:
            try:
                return self._ask(address, topic)
            except ClientError as exc:
                last = exc
        raise last or BrokerError(ResponseCode.SYSTEM_ERROR, "no broker", "?", "consumer list")

    def _is_alone(self, address: str) -> bool:
        """Whether the broker at ``address`` lists this client alone in the group (asked once a
        round; a failure counts as not alone: the per-topic requests decide)."""
        assert self._alone is not None
        answer = self._alone.get(address)
        if answer is None:
            answer = self._alone[address] = gevent.event.AsyncResult()
            try:
                answer.set(self._ask(address, None) == [self.instance.client_id])
            except ClientError:
                answer.set(False)
        return bool(answer.get())

    def _ask(self, address: str, topic: str | None) -> list[str]:
        ext = {"consumerGroup": self.group}
        if topic is not None:
            ext["topic"] = topic
        cmd = make_request(RequestCode.GET_CONSUMER_LIST_BY_GROUP, ext)
        response = self.instance.remoting.invoke(address, cmd, self.timeout, "consumer list")
        if response.code != ResponseCode.SUCCESS:
            raise BrokerError(response.code, response.remark, address, "consumer list")
        try:
            return list(decode_body(ConsumerListBody, response.body).consumer_id_list)
        except ProtocolError as exc:
            raise BrokerError(
                ResponseCode.SYSTEM_ERROR, exc.reason, address, "consumer list"
            ) from None
