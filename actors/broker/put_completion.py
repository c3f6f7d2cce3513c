"""How the CommitLogWriter answers an append: ``PutCompletion`` joins its flush and replication
outcomes into one reply; the helpers turn a log outcome into a refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loguru import logger

from actors.broker.store_results import FlushStatus, PutResult, PutStatus
from runtime.store.commitlog import AppendedBatch
from runtime.store.context import ReplicationStatus
from runtime.store.prepare import Invalid


class PutCompletion:
    """Combines the flush and replication outcomes of one append into its reply (set once).

    ``still_holds`` (the replication condition's, for a reply that also waits for its fsync):
    asked when the reply is finally due; False turns a REPLICATED answer into
    FLUSH_SLAVE_TIMEOUT (controller mode: the lease ran out meanwhile, so a deposed master
    never answers PUT_OK)."""

    __slots__ = ("_flush", "_repl", "_reply", "_result", "_still_holds")

    def __init__(
        self, result: PutResult, reply: Any, still_holds: Callable[[], bool] | None = None
    ) -> None:
        self._result = result
        self._reply = reply
        self._flush: FlushStatus | None = None
        self._repl: ReplicationStatus | None = None
        self._still_holds = still_holds

    def flush_done(self, status: FlushStatus) -> None:
        if self._flush is None:
            self._flush = status
            self._maybe_reply()

    def replication_done(self, status: ReplicationStatus) -> None:
        if self._repl is None:
            self._repl = status
            self._maybe_reply()

    def _maybe_reply(self) -> None:
        if self._flush is None or self._repl is None:
            return
        status, reason = PutStatus.PUT_OK, None
        if self._flush is not FlushStatus.FLUSH_OK:
            status = PutStatus.FLUSH_DISK_TIMEOUT
            reason = f"commit log not fsynced: {self._flush.value}"
        repl = self._repl
        if repl is ReplicationStatus.REPLICATED and not (
            self._still_holds is None or self._still_holds()
        ):
            repl = ReplicationStatus.FLUSH_SLAVE_TIMEOUT  # e.g. the lease ran out meanwhile
        if repl is not ReplicationStatus.REPLICATED:
            status = PutStatus(repl.value)
            reason = f"replication: {repl.value}"
        result = (
            self._result if status is PutStatus.PUT_OK else self._result.with_status(status, reason)
        )
        set_reply(self._reply, result)


def set_reply(reply: Any, value: Any) -> None:
    try:
        reply.set(value)
    except Exception:  # a reply set twice (a timed-out caller) is harmless
        logger.debug("reply already set")


def refused(status: PutStatus, reason: str) -> PutResult:
    return PutResult(status=status, reason=reason)


def appended(outcome: Any) -> bool:
    return isinstance(outcome, AppendedBatch)


def refusal_of(outcome: Any) -> PutResult:
    if isinstance(outcome, PutResult):
        return outcome
    if isinstance(outcome, Invalid):
        status = (
            PutStatus.PROPERTIES_SIZE_EXCEEDED if outcome.properties else PutStatus.MESSAGE_ILLEGAL
        )
        return refused(status, outcome.reason)
    return refused(PutStatus.UNKNOWN_ERROR, "not appended")


def repl_status(fut: Any) -> ReplicationStatus:
    try:
        status = fut.get(timeout=0)
    except Exception:  # a failed replication future is "not replicated"
        return ReplicationStatus.SLAVE_NOT_AVAILABLE
    return status if isinstance(status, ReplicationStatus) else ReplicationStatus(status)
