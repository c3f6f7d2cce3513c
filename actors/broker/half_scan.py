"""The transactional records of a stretch of the commit log: what a TransactionManager that
starts learns from the log itself about half messages its table does not hold.

    scan_transactions(log, start, end) -> HalfScan(prepared, settled, end)

The table (``config/transaction.json``) is written by the master and copied by its slaves every
10 s, so a slave made master lacks the half messages registered, and the commits settled, since
its last copy; a master that crashed lacks the ones under way when it stopped. Their records
are in the log (replicated, and a half message is acknowledged only once stored): a half
message (sysFlag TRANSACTION_PREPARED), a COMMIT's copy (TRANSACTION_COMMIT) and a ROLLBACK's
mark (TRANSACTION_ROLLBACK, no body), the last two with preparedTransactionOffset naming the
half message. (Before session 31 a ROLLBACK wrote nothing: a half message rolled back then is
open again and checked back, and the producer answers ROLLBACK again.)

Reads the log with ``pread`` in the caller's thread (run it in the hub's thread pool).
"""

from __future__ import annotations

from typing import NamedTuple

from runtime.store import record as R
from runtime.store.commitlog_reads import CommitLogReads


class HalfScan(NamedTuple):
    prepared: list[R.StoredRecord]  # half messages, in log order
    settled: set[int]  # offsets of half messages a COMMIT copy or a ROLLBACK mark settled
    end: int  # where the scan stopped (the end asked for, or the end of the valid data)


def scan_transactions(log: CommitLogReads, start: int, end: int) -> HalfScan:
    """The half messages, and the ones COMMIT copies and ROLLBACK marks settled, in
    ``[start, end)`` of ``log`` (``start`` a record boundary)."""
    prepared: list[R.StoredRecord] = []
    settled: set[int] = set()

    def on_record(buf: memoryview, pos: int, size: int, _offset: int) -> None:
        kind = R.sys_flag_at(buf, pos) & R.TRANSACTION_MASK
        if kind == R.TRANSACTION_PREPARED_TYPE:
            prepared.append(R.decode_record(bytes(buf[pos : pos + size])))
        elif kind:  # COMMIT or ROLLBACK
            settled.add(R.decode_record(bytes(buf[pos : pos + size])).prepared_transaction_offset)

    scanned = log.scan(start, on_record, verify_crc=False, stop_at=end)
    return HalfScan(prepared, settled, scanned.end)
