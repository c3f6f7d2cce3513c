"""Message traces of a consumer (``enable_msg_trace=True``), push or lite pull alike.

RocketMQ's DefaultMQPushConsumer and DefaultLitePullConsumer both take ``enableMsgTrace`` and
``customizedTraceTopic`` and register the same ConsumeMessageTraceHookImpl on a CONSUME trace
dispatcher: the push consumer calls it around each listener call, the lite pull consumer
around what each ``poll`` returns (a SubBefore, then at once a SubAfter counted as a success).
This mixin starts that dispatcher with the consumer and registers the hook
(``actors.client.trace``, ``actors.client.trace_hooks``).
"""

from __future__ import annotations

from actors.client.config import ClientConfig
from actors.client.hooks import ConsumeHook
from actors.client.hub import ClientHub
from actors.client.trace import CONSUME, start_dispatcher
from actors.client.trace_dispatcher import TraceDispatcher
from actors.client.trace_hooks import ConsumeTraceHook


class ConsumerTrace:
    """Mixin of ``PushConsumer`` and ``PullConsumer``, after ``ConsumerBase`` in their bases
    (whose ``register_consume_hook`` and attributes, declared here, it uses)."""

    group: str
    config: ClientConfig
    _own_hub: bool
    _hub: ClientHub | None
    _state: str
    enable_msg_trace: bool = False
    trace_topic: str | None = None
    trace_dispatcher: TraceDispatcher | None = None
    """With ``enable_msg_trace``, started: where the traces go (``actors.client.trace``)."""

    def register_consume_hook(self, hook: ConsumeHook) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _start_traced(self) -> None:
        """``ConsumerBase._start`` with the trace dispatcher started first (stopped again when
        the start fails)."""
        self._start_msg_trace()
        try:
            self._start()
        except BaseException:
            self._stop_msg_trace()
            raise

    def _start_msg_trace(self) -> None:
        """``enable_msg_trace``, at the first start: start the trace dispatcher and register
        its consume hook (a dispatcher that cannot start is logged; the consumer then runs
        untraced, as RocketMQ's)."""
        if not self.enable_msg_trace or self.trace_dispatcher is not None:
            return
        if self._state != "created":
            return
        hub = None if self._own_hub else self._hub
        dispatcher = start_dispatcher(self.group, CONSUME, self.trace_topic, self.config, hub)
        if dispatcher is not None:
            self.trace_dispatcher = dispatcher
            self.register_consume_hook(ConsumeTraceHook(dispatcher))

    def _stop_msg_trace(self) -> None:
        """Flush and stop the dispatcher (after the last traced call's ``after``)."""
        if self.trace_dispatcher is not None:
            self.trace_dispatcher.shutdown()
