"""The transactional records of a stretch of the commit log: what a TransactionManager that
starts learns from the log itself about half messages its table does not hold.

    scan_transactions(log, start, end) -> HalfScan(prepared, committed, end)

The table (``config/transaction.json``) is written by the master and copied by its slaves every
10 s, so a slave made master lacks the half messages registered, and the commits settled, since
its last copy; a master that crashed lacks the ones under way when it stopped. Their records
are in the log (replicated, and a half message is acknowledged only once stored): a half
message (sysFlag TRANSACTION_PREPARED) and a COMMIT's copy (TRANSACTION_COMMIT, its
preparedTransactionOffset naming the half message). A ROLLBACK writes nothing: a half message
rolled back since the copy is open again and checked back (the producer answers ROLLBACK again).

Reads the log with ``pread`` in the caller's thread (run it in the hub's thread pool).
"""

from __future__ import annotations

from typing import NamedTuple

from runtime.store import record as R
from runtime.store.commitlog_reads import CommitLogReads


class HalfScan(NamedTuple):
    prepared: list[R.StoredRecord]  # half messages, in log order
    committed: set[int]  # offsets of half messages a COMMIT copy settled
    end: int  # where the scan stopped (the end asked for, or the end of the valid data)


def scan_transactions(log: CommitLogReads, start: int, end: int) -> HalfScan:
    """The half messages and COMMIT copies in ``[start, end)`` of ``log`` (``start`` a record
    boundary)."""
    prepared: list[R.StoredRecord] = []
    committed: set[int] = set()

    def on_record(buf: memoryview, pos: int, size: int, _offset: int) -> None:
        kind = R.sys_flag_at(buf, pos) & R.TRANSACTION_MASK
        if kind == R.TRANSACTION_PREPARED_TYPE:
            prepared.append(R.decode_record(bytes(buf[pos : pos + size])))
        elif kind == R.TRANSACTION_COMMIT_TYPE:
            committed.add(R.decode_record(bytes(buf[pos : pos + size])).prepared_transaction_offset)

    scanned = log.scan(start, on_record, verify_crc=False, stop_at=end)
    return HalfScan(prepared, committed, scanned.end)
