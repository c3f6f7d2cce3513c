"""TransactionProducer: a producer of transactional messages (RocketMQ's TransactionMQProducer).

```python
def execute(msg: Message, arg: object) -> LocalTransactionState:
    db.insert_order(arg)                      # the local transaction
    return LocalTransactionState.COMMIT_MESSAGE

def check(msg: MessageExt) -> LocalTransactionState:
    return (LocalTransactionState.COMMIT_MESSAGE if db.has_order(msg.keys[0])
            else LocalTransactionState.ROLLBACK_MESSAGE)

with TransactionProducer("orders-tx", namesrv, execute=execute, check=check) as producer:
    r = producer.send_message_in_transaction(Message("Orders", b"..."), arg=order)
    r.local_transaction_state                 # what execute decided
```

``send_message_in_transaction(msg, arg)``:

1. sends ``msg`` as a *half message* (sysFlag TRANSACTION_PREPARED, properties TRAN_MSG=true
   and PGROUP=<group>), synchronously with the usual retries: the broker stores it but no
   consumer sees it;
2. runs ``execute(msg, arg)`` in the caller's thread (an exception, or anything that is not a
   ``LocalTransactionState``, counts as UNKNOW, and is logged). A half message stored without
   its durability condition (FLUSH_DISK_TIMEOUT, ...) is rolled back without running it, as
   RocketMQ does;
3. the first time it ends a transaction on a broker, heartbeats the group first, so the broker
   knows where to ask about it later;
4. sends END_TRANSACTION (37, oneway) to that broker: COMMIT_MESSAGE (8) makes the message
   visible, ROLLBACK_MESSAGE (12) discards it, UNKNOW (0) leaves it open.

With ``enable_msg_trace`` each END_TRANSACTION, after the local transaction and after each
check-back, is traced as an EndTransaction record (``actors.client.trace_hooks``).

An open half message (UNKNOW, or an END that was lost) is checked by the broker after
``transactionTimeOut`` (6 s), every ``transactionCheckInterval`` (30 s), up to
``transactionCheckMax`` (15) times: it pushes CHECK_TRANSACTION_STATE (39) on a connection of
the group, with the stored message as body. The producer runs ``check(msg_ext)`` on its own
``check_threads`` pool (never on the client's hub) and answers with END_TRANSACTION,
``fromTransactionCheck=true``, on the connection the check came from.

Either give ``execute=`` and ``check=`` callables or ``listener=`` an object with
``execute_local_transaction(msg, arg)`` and ``check_local_transaction(msg_ext)``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from loguru import logger

from actors.client.errors import ClientError, MessageInvalidError
from actors.client.hooks import MessageType
from actors.client.hub import ClientHub
from actors.client.message import LocalTransactionState, Message, MessageExt, SendResult, SendStatus
from actors.client.namespace import plain_name, wire_name
from actors.client.outgoing import Outgoing
from actors.client.producer import Producer
from actors.client.pull import decode_messages
from actors.client.remoting import make_request
from actors.client.selectors import ROUND_ROBIN
from actors.client.trace_hooks import end_transaction
from runtime.errors import ProtocolError
from runtime.remoting import properties as P
from runtime.remoting.codes import MessageSysFlag, RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header
from runtime.remoting.headers import CheckTransactionStateRequestHeader
from runtime.session import SessionHandle
from runtime.store.msg_id import decode_offset_msg_id

END_CODES = {
    LocalTransactionState.COMMIT_MESSAGE: 8,
    LocalTransactionState.ROLLBACK_MESSAGE: 12,
    LocalTransactionState.UNKNOW: 0,
}
"""commitOrRollback of END_TRANSACTION (RocketMQ's MessageSysFlag TRANSACTION_* types)."""

Execute = Callable[[Message, Any], LocalTransactionState]
Check = Callable[[MessageExt], LocalTransactionState]


class TransactionListener(Protocol):
    """RocketMQ's TransactionListener."""

    def execute_local_transaction(self, msg: Message, arg: Any) -> LocalTransactionState: ...

    def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState: ...


class TransactionSendResult(SendResult, frozen=True, kw_only=True):
    """The half message's SendResult plus what the local transaction decided."""

    local_transaction_state: LocalTransactionState


def _state(outcome: object, what: str, msg: object) -> LocalTransactionState:
    if isinstance(outcome, LocalTransactionState):
        return outcome
    logger.warning("client: {} of {} returned {!r}; counted as UNKNOW", what, msg, outcome)
    return LocalTransactionState.UNKNOW


class TransactionProducer(Producer):
    """A transactional producer of one group. See the module docstring. Every ``Producer``
    option applies; ``check_threads`` (1) is the size of the check-back pool. ``send``,
    ``send_async``... work as in ``Producer`` (for ordinary messages)."""

    def __init__(
        self,
        group: str,
        namesrv: str | list[str] | None = None,
        *,
        execute: Execute | None = None,
        check: Check | None = None,
        listener: TransactionListener | None = None,
        check_threads: int = 1,
        hub: ClientHub | None = None,
        **options: Any,
    ) -> None:
        super().__init__(group, namesrv, hub=hub, **options)
        if listener is not None:
            execute = execute or listener.execute_local_transaction
            check = check or listener.check_local_transaction
        if execute is None or check is None:
            raise ClientError("a TransactionProducer needs execute and check (or a listener)")
        self.execute = execute
        self.check = check
        self.check_threads = max(1, check_threads)
        self._checks: concurrent.futures.Executor | None = None
        self._beaten: set[str] = set()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> TransactionProducer:
        super().start()
        hub = self._hub
        if self._checks is None and hub is not None:
            self._checks = hub.executor(self.check_threads, f"actormq-tx-check-{self.group}")
        return self

    def _start_on_hub(self) -> None:
        super()._start_on_hub()
        assert self._instance is not None
        self._instance.inbound_handlers[RequestCode.CHECK_TRANSACTION_STATE] = self._on_check

    def shutdown(self, timeout: float = 10.0) -> None:
        super().shutdown(timeout)
        if self._checks is not None:
            self._checks.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> TransactionProducer:
        return self.start()

    # -- sending ------------------------------------------------------------------------------

    def send_message_in_transaction(
        self,
        msg: Message,
        arg: Any = None,
        *,
        timeout: float | None = None,
        msg_id: str | None = None,
        born_host: str | None = None,
    ) -> TransactionSendResult:
        """Send ``msg`` as a half message, run ``execute(msg, arg)``, end the transaction as it
        decided. Raises the send's ClientError when the half message was not stored (then
        ``execute`` did not run). ``msg_id``: its UNIQ_KEY, when the caller has one;
        ``born_host``: as ``send``'s."""
        hub = self._running_hub("send_message_in_transaction")
        if isinstance(msg, Message) and (msg.delay_level or msg.deliver_at_ms or msg.delay_ms):
            raise MessageInvalidError("delay", "a transactional message cannot be delayed")

        def half() -> Outgoing:
            out = self._prepare(msg, None, msg_id, born_host)
            props = f"{out.properties}{P.TRAN_MSG}\x01true\x02{P.PGROUP}\x01{self.group}\x02"
            return msgspec.structs.replace(
                out,
                properties=props,
                sys_flag=out.sys_flag | int(MessageSysFlag.TRANSACTION_PREPARED),
            )

        if self._send_hooks:
            result = self._send_sync_hooked(
                msg, half, ROUND_ROBIN, timeout, msg_type=MessageType.TRANSACTION_HALF
            )
        else:
            result = self._send_outgoing(half(), ROUND_ROBIN, timeout)
        if result.status is SendStatus.SEND_OK:
            try:
                state = _state(self.execute(msg, arg), "execute", msg)
            except Exception:
                logger.exception("client: local transaction of {} failed; UNKNOW", result.msg_id)
                state = LocalTransactionState.UNKNOW
        else:
            state = LocalTransactionState.ROLLBACK_MESSAGE
        address: str | None = None
        try:
            address = hub.call(
                self._end_on_hub, result, state, timeout=10.0, what="end transaction"
            )
        except ClientError as exc:
            # The broker will ask (CHECK_TRANSACTION_STATE) about a half message left open.
            logger.warning("client: END_TRANSACTION of {} not sent: {}", result.msg_id, exc)
        # Traced whatever the broker's TRACE_ON, as RocketMQ's EndTransactionTraceHookImpl
        self._trace_end(msg, result.msg_id, result.msg_id, address, state, False)
        fields = {f: getattr(result, f) for f in result.__struct_fields__}
        return TransactionSendResult(**fields, local_transaction_state=state)

    def end_transaction(
        self, result: SendResult, state: LocalTransactionState, timeout: float = 10.0
    ) -> str:
        """END_TRANSACTION for a half message this producer sent (``result``: its send's),
        later than ``execute`` (which then answered UNKNOW): RocketMQ 5's ``commit`` /
        ``rollback`` of a transaction. Returns the broker's address; ClientError if it could
        not be sent (the broker's check-back will ask)."""
        hub = self._running_hub("end_transaction")
        return hub.call(self._end_on_hub, result, state, timeout=timeout, what="end transaction")

    def _end_on_hub(self, result: SendResult, state: LocalTransactionState) -> str:
        """Send END_TRANSACTION for ``result``'s half message; the broker's address."""
        instance = self._instance
        if instance is None:
            raise ClientError("producer is not running")
        # the result names the plain topic
        route = instance.route(wire_name(self.namespace, result.queue.topic), allow_default=True)
        address = route.master(result.queue.broker_name)
        if address is None:
            raise ClientError(f"no master for {result.queue.broker_name}")
        if address not in self._beaten and instance.heartbeat() > 0:
            # The broker finds this producer for check-backs by the group's heartbeat (else
            # the 30 s heartbeat registers it later).
            self._beaten.add(address)
        try:
            offset = decode_offset_msg_id(result.offset_msg_id).physical_offset
        except ValueError:
            raise ClientError(f"offset message id {result.offset_msg_id!r} unreadable") from None
        ext = {
            "producerGroup": self.group,
            "tranStateTableOffset": str(result.queue_offset),
            "commitLogOffset": str(offset),
            "commitOrRollback": str(END_CODES[state]),
            "fromTransactionCheck": "false",
            "msgId": result.msg_id,
            "transactionId": result.transaction_id or result.msg_id,
        }
        cmd = make_request(RequestCode.END_TRANSACTION, ext, oneway=True)
        instance.remoting.oneway(address, cmd, self.config.connect_timeout)
        return address

    def _trace_end(
        self,
        msg: Message | MessageExt,
        msg_id: str,
        transaction_id: str | None,
        broker_addr: str | None,
        state: LocalTransactionState,
        from_check: bool,
    ) -> None:
        """With ``enable_msg_trace``: the EndTransaction record (in the caller's thread, or
        the check pool's; never on the hub)."""
        dispatcher = self.trace_dispatcher
        if dispatcher is not None:
            end_transaction(
                dispatcher,
                self.group,
                msg,
                msg_id=msg_id,
                transaction_id=transaction_id,
                broker_addr=broker_addr,
                state=state,
                from_check=from_check,
            )

    # -- check-backs ----------------------------------------------------------------------------

    def _on_check(self, session: SessionHandle, request: RemotingCommand) -> Any:
        """CHECK_TRANSACTION_STATE from a broker (hub greenlet): run ``check`` on the pool."""
        checks = self._checks
        if checks is None:
            logger.warning("client: {} got a transaction check before start", self.group)
        else:
            with contextlib.suppress(RuntimeError):  # the pool shut down
                checks.submit(self._run_check, session, request)
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def _run_check(self, session: SessionHandle, request: RemotingCommand) -> None:
        """Check pool: decode the stored message, ask ``check``, answer END_TRANSACTION."""
        try:
            h = decode_header(CheckTransactionStateRequestHeader, request.ext_fields)
            [msg] = decode_messages(request.body, "")[:1]
        except (ProtocolError, ValueError) as exc:
            logger.warning("client: unreadable transaction check: {}", exc)
            return
        group = msg.all_properties.get(P.PGROUP)
        if group and group != self.group:
            logger.warning("client: {} asked about group {}'s transaction", self.group, group)
            return
        msg.topic = plain_name(self.namespace, msg.topic)
        try:
            state = _state(self.check(msg), "check", msg)
        except Exception:
            logger.exception("client: transaction check of {} failed; UNKNOW", msg)
            state = LocalTransactionState.UNKNOW
        uniq = msg.transaction_id or h.msg_id or msg.offset_msg_id
        ext = {
            "producerGroup": self.group,
            "tranStateTableOffset": str(h.tran_state_table_offset),
            "commitLogOffset": str(h.commit_log_offset),
            "commitOrRollback": str(END_CODES[state]),
            "fromTransactionCheck": "true",
            "msgId": uniq,
            "transactionId": h.transaction_id or uniq,
        }
        # (msg.transaction_id: its UNIQ_KEY, as RocketMQ's check-back sets it)
        self._trace_end(msg, uniq, msg.transaction_id, session.remote_address, state, True)
        cmd = make_request(RequestCode.END_TRANSACTION, ext, oneway=True)
        hub = self._hub
        if hub is None or not hub.running:
            return
        try:
            hub.post(session.send_oneway, cmd)
        except ClientError as exc:
            logger.debug("client: check answer dropped: {}", exc)
