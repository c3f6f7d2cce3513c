"""The history of a chaos run: client operations and nemesis events, one JSON line each.

Vocabulary (RELIABILITY.md §0): every send is an ``invoke`` followed by one completion, ``ok``
(the broker acknowledged: the mode's durability condition held), ``fail`` (definitely not
applied) or ``info`` (indeterminate). Consumers record ``ok`` reads (``f="poll"`` for a lite
pull consumer's poll, ``f="read"`` for a push listener call) carrying the values they got with
their queue and offset. Everything else (nemesis faults, assignment changes, probes of stored
consumer offsets, phases) is an ``event``.

Values are unique strings ``"<process>-<counter>"`` with a monotonic counter per producer
process. Timestamps: ``mono`` is ``time.monotonic()`` (CLOCK_MONOTONIC, comparable between
processes of one host, so consumer subprocesses stamp their own reads), ``wall`` is
``time.time()`` for humans.

Status mapping (§3.8): SEND_OK -> ok; FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT,
SLAVE_NOT_AVAILABLE, a client timeout, a connection lost under the request -> info; every
error code the broker answers (MESSAGE_ILLEGAL, SERVICE_NOT_AVAILABLE, NO_PERMISSION from a
slave or fenced master, IN_SYNC_REPLICAS_NOT_ENOUGH, ...), no route, a refused connection ->
fail (the broker promises nothing was appended: docs/broker.md "Sending").
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import msgspec

from actors.client.errors import (
    BrokerError,
    ClientError,
    ClientStateError,
    ConnectError,
    MessageInvalidError,
    NoRouteError,
    RequestTimeoutError,
    SendFailedError,
)
from actors.client.message import SendResult, SendStatus
from runtime.remoting.codes import ResponseCode

Type = Literal["invoke", "ok", "fail", "info", "event"]
COMPLETIONS: frozenset[str] = frozenset({"ok", "fail", "info"})
READ_FS: frozenset[str] = frozenset({"poll", "read"})


class Read(msgspec.Struct, array_like=True, frozen=True):
    """One message a consumer got: its queue (``topic/broker/queueId``), offset and value."""

    queue: str
    offset: int
    value: str


class Entry(msgspec.Struct, omit_defaults=True, frozen=True):
    index: int
    type: str
    f: str
    process: str
    mono: float
    wall: float
    op: int = -1
    value: str | None = None
    queue: str | None = None
    offset: int | None = None
    broker: str | None = None
    status: str | None = None
    error: str | None = None
    group: str | None = None
    mode: str | None = None
    reads: list[Read] | None = None
    data: dict[str, Any] | None = None


def queue_key(topic: str, broker_name: str, queue_id: int) -> str:
    return f"{topic}/{broker_name}/{queue_id}"


def split_value(value: str) -> tuple[str, int]:
    """``"p3-17"`` -> ``("p3", 17)``; a value of another shape -> ``(value, -1)``."""
    writer, _, counter = value.rpartition("-")
    if not writer or not counter.isdigit():
        return value, -1
    return writer, int(counter)


# -- status mapping ------------------------------------------------------------------------

INFO_STATUSES: frozenset[str] = frozenset(
    {
        SendStatus.FLUSH_DISK_TIMEOUT.value,
        SendStatus.FLUSH_SLAVE_TIMEOUT.value,
        SendStatus.SLAVE_NOT_AVAILABLE.value,
    }
)


def code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"CODE_{code}"


class Outcome(msgspec.Struct, frozen=True):
    """A classified send completion."""

    type: str
    status: str
    error: str | None = None


def classify_error(exc: BaseException) -> Outcome:
    """Map a send's exception to fail / info (see the module docstring)."""
    text = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, SendFailedError):
        if exc.maybe_stored:
            return Outcome("info", "RETRIES_MAYBE_STORED", text)
        return Outcome("fail", "RETRIES_FAILED", text)
    if isinstance(exc, RequestTimeoutError):
        return Outcome("info", "CLIENT_TIMEOUT", text)
    if isinstance(exc, ConnectError):
        if "refused" in exc.reason.lower():
            return Outcome("fail", "CONNECTION_REFUSED", text)
        return Outcome("info", "CONNECTION_LOST", text)
    if isinstance(exc, BrokerError):
        return Outcome("fail", code_name(exc.code), text)
    if isinstance(exc, NoRouteError):
        return Outcome("fail", "NO_ROUTE", text)
    if isinstance(exc, MessageInvalidError):
        return Outcome("fail", "MESSAGE_INVALID", text)
    if isinstance(exc, ClientStateError):
        return Outcome("fail", "CLIENT_STATE", text)
    if isinstance(exc, ClientError):
        return Outcome("info", "CLIENT_ERROR", text)
    return Outcome("info", "EXCEPTION", text)


def classify_result(result: SendResult) -> Outcome:
    status = result.status.value
    if result.status is SendStatus.SEND_OK:
        return Outcome("ok", status)
    if status in INFO_STATUSES:
        return Outcome("info", status)
    return Outcome("info", status)  # an unknown "stored" status: never claim more


# -- recording -----------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Entry)


class History:
    """Thread-safe recorder: keeps entries in memory and appends them to a JSONL file."""

    def __init__(self, path: str | pathlib.Path | None = None) -> None:
        self.path = pathlib.Path(path) if path is not None else None
        self.entries: list[Entry] = []
        self._lock = threading.Lock()
        self._next_op = 0
        self._file = self.path.open("ab") if self.path is not None else None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def append(self, type: str, f: str, process: str, **fields: Any) -> Entry:
        mono = fields.pop("mono", None)
        with self._lock:
            entry = Entry(
                index=len(self.entries),
                type=type,
                f=f,
                process=process,
                mono=time.monotonic() if mono is None else mono,
                wall=time.time(),
                **fields,
            )
            self.entries.append(entry)
            if self._file is not None:
                self._file.write(_encoder.encode(entry) + b"\n")
                self._file.flush()
        return entry

    # -- sends --

    def invoke_send(self, process: str, value: str) -> int:
        with self._lock:
            op = self._next_op
            self._next_op += 1
        self.append("invoke", "send", process, op=op, value=value)
        return op

    def invoke_sends(self, process: str, values: list[str]) -> tuple[list[int], float]:
        """Invoke sends of ``values`` at one moment (a pipelined burst written at once): one
        hold of the lock, one write. Returns their ops and that moment (``time.monotonic()``).
        Recording them one by one cost the flood of R23 up to 0.8 ms each on a busy test
        process (every flush gives the GIL away and waits for it back): 4 s for 5,096, all
        counted against the first sends' timeout before they were written."""
        with self._lock:
            first = self._next_op
            self._next_op += len(values)
            mono = time.monotonic()
            wall = time.time()
            entries = [
                Entry(
                    index=len(self.entries) + i,
                    type="invoke",
                    f="send",
                    process=process,
                    mono=mono,
                    wall=wall,
                    op=first + i,
                    value=value,
                )
                for i, value in enumerate(values)
            ]
            self.entries.extend(entries)
            if self._file is not None:
                self._file.write(b"".join(_encoder.encode(e) + b"\n" for e in entries))
                self._file.flush()
        return list(range(first, first + len(values))), mono

    def complete_send(
        self,
        process: str,
        op: int,
        value: str,
        outcome: Outcome,
        *,
        queue: str | None = None,
        offset: int | None = None,
        broker: str | None = None,
        mono: float | None = None,
    ) -> Entry:
        """Complete a send at ``mono`` (now when None: pass when the answer arrived, when
        recording it may come later)."""
        return self.append(
            outcome.type,
            "send",
            process,
            op=op,
            value=value,
            queue=queue,
            offset=offset,
            broker=broker,
            status=outcome.status,
            error=outcome.error,
            mono=mono,
        )

    # -- reads --

    def reads(
        self,
        process: str,
        group: str,
        mode: str,
        reads: list[Read],
        *,
        f: str = "poll",
        mono: float | None = None,
    ) -> Entry:
        return self.append("ok", f, process, group=group, mode=mode, reads=reads, mono=mono)

    # -- events --

    def event(self, f: str, process: str = "nemesis", **data: Any) -> Entry:
        mono = data.pop("mono", None)
        return self.append("event", f, process, data=data, mono=mono)

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self.entries)


def dump(entries: Iterable[Entry], path: str | pathlib.Path) -> None:
    with pathlib.Path(path).open("wb") as fh:
        for entry in entries:
            fh.write(_encoder.encode(entry) + b"\n")


def load(path: str | pathlib.Path) -> list[Entry]:
    return list(iter_file(path))


def iter_file(path: str | pathlib.Path) -> Iterator[Entry]:
    with pathlib.Path(path).open("rb") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield _decoder.decode(line)
