"""Telemetry: the clients' telemetry streams (RocketMQ 5's bidirectional ``Telemetry`` call).

A client opens one stream per endpoint and writes its Settings on it; the proxy answers each
with the settings to use (``actors.proxy.settings``) and keeps the stream open until the client
ends it. The proxy may also write commands of its own on a stream: ``push`` sends one to a
producer that publishes a topic (a transaction check, ``actors.proxy.transactions``).

Each stream is a reader thread (a greenlet under gevent: the client's commands) and the
response generator the gRPC server iterates, joined by a bounded ``Outbox`` (the latest
Settings answer, and a few commands of the proxy's own); the stream is listed in ``streams``
while open. A stream whose client has sent no Settings within ``SETTINGS_TIMEOUT_S`` is
answered BAD_REQUEST and ended: a client holds a gRPC worker with it (``held_calls``).
Under the ACL a consumer's Settings need SUB on its group and topics
(``ProxyAuth.subscription_refusal``) before the proxy joins the group for it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from loguru import logger

from actors.client.errors import ClientError
from actors.proxy.convert import resource_name
from actors.proxy.group_owners import owner_of
from actors.proxy.lite import LiteError
from actors.proxy.outbox import Outbox
from actors.proxy.proto import ClientType, Code, Language, M
from actors.proxy.resources import settings_refusal
from actors.proxy.settings import ProxySettings, reply_settings

REPEAT_S = 1.0
"""A stream's first settings answer is written again this much later (``Telemetry._read``),
to the clients of ``REPEAT_FOR``."""
REPEAT_FOR = frozenset({Language.NODE_JS})
MAX_DETAILS = 1024
"""Characters of an error's text sent as a call's status details at most."""
SETTINGS_TIMEOUT_S = 30.0
"""A stream with no Settings applied this long after it opened is ended."""
Apply = Callable[[str, Any], tuple[bool, int]]
"""Called with (the client's ``group_owners.owner_of``: its id, else its host; its Settings)
before the answer; returns whether the client's group consumes in order (FIFO) and its
deliveries before the DLQ; may raise ClientError."""


KNOWN_CLIENT_TYPES = frozenset(
    int(t) for t in ClientType if t != ClientType.CLIENT_TYPE_UNSPECIFIED
)
"""The client types a Settings may name (UNRECOGNIZED_CLIENT_TYPE otherwise, as RocketMQ)."""


class Stream:
    """One open telemetry stream: its client, what it publishes, its outbox."""

    __slots__ = (
        "client_id",
        "client_type",
        "context",
        "failure",
        "outbox",
        "repeated",
        "settled",
        "topics",
    )

    def __init__(self, client_id: str, context: Any) -> None:
        self.client_id = client_id
        self.context = context
        """The gRPC call's context (its metadata: the ACL's access key)."""
        self.repeated = False
        self.client_type = 0
        self.topics: frozenset[str] = frozenset()
        self.settled = False
        """A Settings of the client's was applied."""
        self.failure: str | None = None
        """What ended the stream, a fault of the proxy's (its gRPC status: INTERNAL)."""
        self.outbox = Outbox()


class Telemetry:
    def __init__(self, settings: ProxySettings, apply: Apply, error: Callable[..., Any]) -> None:
        self.settings = settings
        self.apply = apply
        self.error = error
        """(ClientError) -> a TelemetryCommand answering a Settings that could not be applied."""
        self.streams: dict[int, Stream] = {}
        self.auth: Any = None
        """The proxy's ``ProxyAuth`` when it enforces the ACL (set by ``runtime.proxy``)."""
        self._ids = itertools.count(1)

    def serve(self, commands: Iterator[Any], client_id: str, context: Any) -> Iterator[Any]:
        """The response stream of one Telemetry call."""
        stream = Stream(client_id, context)
        key = next(self._ids)
        self.streams[key] = stream
        reader = threading.Thread(
            target=self._read, args=(commands, stream), name="actormq-telemetry", daemon=True
        )
        reader.start()
        deadline = time.monotonic() + SETTINGS_TIMEOUT_S
        try:
            while True:
                try:
                    left = None if stream.settled else deadline - time.monotonic()
                    item = stream.outbox.get(timeout=left)
                except TimeoutError:
                    if stream.settled:
                        continue
                    logger.debug("proxy: telemetry stream of {}: no settings", client_id)
                    text = f"no Settings within {SETTINGS_TIMEOUT_S:g} s: the stream is closed"
                    yield _status(Code.BAD_REQUEST, text)
                    return
                if item is None:
                    if stream.failure is not None:
                        end_internal(context, stream.failure)
                    return
                yield item
        finally:
            stream.outbox.close()
            self.streams.pop(key, None)
            if reader.is_alive():
                # the client went away while the reader waits for its next command: cancelling
                # the call ends that wait; the reader then returns on its own
                reader.join(timeout=1.0)

    def _read(self, commands: Iterator[Any], stream: Stream) -> None:
        try:
            for command in commands:
                if command.WhichOneof("command") != "settings":
                    continue  # a thread dump or verify result: the proxy never asks for them
                # (the timeout is for a client that sends none: a slow or refused Settings is
                # answered by what follows, not by "no Settings" 30 s later, a review finding)
                stream.settled = True
                given = command.settings
                if given.client_type not in KNOWN_CLIENT_TYPES:
                    text = f"client type {given.client_type}"
                    stream.outbox.answer(_status(Code.UNRECOGNIZED_CLIENT_TYPE, text))
                    continue
                stream.client_type = given.client_type
                if given.HasField("publishing"):
                    stream.topics = frozenset(resource_name(t) for t in given.publishing.topics)
                refused = settings_refusal(given)
                if refused is None and self.auth is not None:
                    refused = self.auth.subscription_refusal(given, stream.context)
                if refused is not None:
                    stream.outbox.answer(_status(*refused))
                    continue
                try:
                    owner = owner_of(stream.context, stream.client_id)
                    fifo, attempts = self.apply(owner, given)
                except (ClientError, LiteError) as exc:
                    stream.outbox.answer(self.error(exc))
                    continue
                reply = reply_settings(given, self.settings, fifo, attempts)
                stream.outbox.answer(reply)
                if not stream.repeated and given.user_agent.language in REPEAT_FOR:
                    # the answer once more, a moment later: RocketMQ 5's Node.js client (1.0.8)
                    # starts waiting for it only after its routes came, and an answer that came
                    # before is lost to it (its start then waits 5 minutes for the next one).
                    # Not to others: the Python push consumer drops a message it holds when
                    # settings come again
                    stream.repeated = True
                    timer = threading.Timer(REPEAT_S, stream.outbox.repeat, (reply,))
                    timer.daemon = True
                    timer.start()
        except Exception as exc:
            if _call_ended(stream.context):  # the call was cancelled or the client reset it
                logger.debug("proxy: telemetry stream of {} ended: {}", stream.client_id, exc)
            else:  # a fault of the proxy's, applying the client's Settings: the stream ends
                logger.opt(exception=exc).error(
                    "proxy: telemetry stream of {} ended by an error: {!r}", stream.client_id, exc
                )
                stream.failure = f"{type(exc).__name__}: {exc}"
        finally:
            stream.outbox.close()

    def push(self, topic: str, command: Any) -> bool:
        """Write ``command`` on the stream of one producer publishing ``topic`` that takes it
        (one not reading, its outbox full, is passed over); False when there is none (an
        unrelated application's producer is never asked)."""
        streams = list(self.streams.values())  # other threads open and close streams
        return any(
            s.outbox.command(command)
            for s in streams
            if s.client_type == ClientType.PRODUCER and topic in s.topics
        )


def end_internal(context: Any, text: str) -> None:
    """End the call with gRPC's status INTERNAL and ``text`` (as a gRPC server ends a call
    whose handler failed; before, a telemetry stream ended by a fault of the proxy's closed
    with OK, as if the proxy had meant it)."""
    if context is not None:
        context.set_code(grpc.StatusCode.INTERNAL)
        context.set_details(text[:MAX_DETAILS])


def _call_ended(context: Any) -> bool:
    """Whether the gRPC call is over (cancelled, reset, past its deadline): reading its next
    command then raises (grpcio's RpcError), which is no fault."""
    try:
        return not context.is_active()
    except Exception:  # (a context that cannot say)
        return True


def _status(code: int, text: str) -> Any:
    command = M.TelemetryCommand()
    command.status.code, command.status.message = code, text
    return command


def recover_command(message: Any, transaction_id: str) -> Any:
    command = M.TelemetryCommand()
    command.recover_orphaned_transaction_command.message.CopyFrom(message)
    command.recover_orphaned_transaction_command.transaction_id = transaction_id
    return command
