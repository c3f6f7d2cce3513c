"""ProxyTransactions: RocketMQ 5's transactional messages through the proxy.

A gRPC producer sends a TRANSACTION message, then commits or rolls back in a later call
(EndTransaction). The proxy stores the half message with its own ``TransactionProducer``
(group ``PROXY_TRANSACTION_PRODUCER``), whose local transaction always answers UNKNOW (the
decision comes later), and keeps the send's result and topic by message id; EndTransaction
from the client ends it on the broker (``TransactionProducer.end_transaction``) when the call
names that topic (the proxy's ACL checked PUB on the topic named; the broker sees only the
proxy's account).

A half message left open (the client died, or its EndTransaction went to another proxy or was
lost) is checked back by the broker on the proxy's producer connection: the proxy writes a
RecoverOrphanedTransactionCommand on the telemetry stream of a producer publishing the topic
(never another application's) and waits up to ``CHECK_WAIT_S`` for that client's
EndTransaction (source SERVER_CHECK), which
becomes the check's answer; with no answer (or no producer online) the check answers UNKNOW and
the broker asks again later (``transactionCheckInterval``, up to ``transactionCheckMax``).
"""

from __future__ import annotations

import concurrent.futures
from collections import OrderedDict
from typing import Any

from loguru import logger

from actors.client import TransactionProducer
from actors.client.errors import ClientError
from actors.client.message import LocalTransactionState, Message, MessageExt, SendResult
from actors.proxy.convert import incoming, resource_name
from actors.proxy.proto import Code, M, TransactionResolution
from actors.proxy.telemetry import Telemetry, recover_command
from runtime.remoting import properties as P

TX_GROUP = "PROXY_TRANSACTION_PRODUCER"
CHECK_WAIT_S = 5.0
"""How long a check-back waits for the client's answer before answering UNKNOW."""
KEPT = 100_000
"""Open transactions remembered (the oldest forgotten first: the check-back settles those)."""

_STATES = {
    TransactionResolution.COMMIT: LocalTransactionState.COMMIT_MESSAGE,
    TransactionResolution.ROLLBACK: LocalTransactionState.ROLLBACK_MESSAGE,
}


class ProxyTransactions:
    def __init__(self, namesrv: str, telemetry: Telemetry, **client_options: Any) -> None:
        self.telemetry = telemetry
        self.producer = TransactionProducer(
            TX_GROUP,
            namesrv,
            execute=lambda _msg, _arg: LocalTransactionState.UNKNOW,
            check=self._check,
            check_threads=64,
            **client_options,
        )
        self.open: OrderedDict[str, tuple[SendResult, str]] = OrderedDict()
        """Message id -> the half message's send and the topic it was sent to, until its
        EndTransaction."""
        self.waiting: dict[str, tuple[concurrent.futures.Future[LocalTransactionState], str]] = {}
        """Message id -> a check-back waiting for the client's answer, and the half message's
        topic."""

    def start(self) -> None:
        self.producer.start()

    def stop(self) -> None:
        self.producer.shutdown()

    def send_half(self, message: Message, msg_id: str | None, born_host: str = "") -> SendResult:
        result = self.producer.send_message_in_transaction(
            message, msg_id=msg_id, born_host=born_host or None
        )
        self.open[result.msg_id] = (result, message.topic)
        while len(self.open) > KEPT:
            self.open.popitem(last=False)
        return result

    def end(self, request: Any) -> tuple[int, str]:
        """EndTransaction: (code, text). Only a call naming the half message's own topic ends
        it: the ACL checked PUB on the topic the call names (``auth``), and the proxy ends the
        transaction with its own account, so the broker's check of the half message's topic
        (``acl_gate``) sees the proxy's account, not the client's. A call naming another topic
        is answered as one naming no open transaction."""
        state = _STATES.get(request.resolution)
        if state is None:
            return Code.BAD_REQUEST, "resolution must be COMMIT or ROLLBACK"
        msg_id, topic = request.message_id, resource_name(request.topic)
        waiting = self.waiting.get(msg_id)
        if waiting is not None and waiting[1] == topic:
            del self.waiting[msg_id]
            try:  # a check-back asked and still waits: the answer goes back on its connection
                waiting[0].set_result(state)
            except concurrent.futures.InvalidStateError:
                pass  # it gave up (answered UNKNOW) just now: end it here, as for a client's
            else:
                self.open.pop(msg_id, None)
                return Code.OK, ""
        held = self.open.get(msg_id)
        if held is None or held[1] != topic:
            return (
                Code.INVALID_TRANSACTION_ID,
                f"no open transaction {msg_id} of topic {topic} on this proxy",
            )
        del self.open[msg_id]
        try:
            self.producer.end_transaction(held[0], state)
        except ClientError as exc:
            self.open[msg_id] = held
            return Code.INTERNAL_SERVER_ERROR, str(exc)
        return Code.OK, ""

    def _check(self, msg: MessageExt) -> LocalTransactionState:
        """A broker's check-back (on the producer's check pool): ask a producer client."""
        msg_id = msg.msg_id
        topic = msg.all_properties.get(P.REAL_TOPIC) or msg.topic
        resource = M.Resource(name=topic)
        message = incoming(msg, resource, receipt_handle="", attempt=1, invisible_ms=0)
        waiter: concurrent.futures.Future[LocalTransactionState] = concurrent.futures.Future()
        self.waiting[msg_id] = (waiter, topic)
        try:
            if not self.telemetry.push(topic, recover_command(message, msg_id)):
                logger.info("proxy: transaction {} checked; no producer online to ask", msg_id)
                return LocalTransactionState.UNKNOW
            return waiter.result(timeout=CHECK_WAIT_S)
        except concurrent.futures.TimeoutError:
            if not waiter.cancel():  # the answer came as the wait ended
                return waiter.result()
            logger.info("proxy: transaction {}: no answer to the check in time", msg_id)
            return LocalTransactionState.UNKNOW
        finally:
            if self.waiting.get(msg_id, (None,))[0] is waiter:
                del self.waiting[msg_id]
