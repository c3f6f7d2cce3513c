"""The file ``<store>/insync``: a classic master's in-sync slaves, as its acks counted them.

    load(store_root) -> frozenset[int]      (missing or unreadable: empty)
    read(store_root) -> frozenset[int] | None   (missing: empty; there but unreadable: None)
    save(store_root, nodes)                 (atomic rewrite, fsync'd)

A SYNC_MASTER's SEND_OK says a slave held the message. If the master's machine loses power
under ASYNC_FLUSH, the master comes back without its unflushed tail, and only those slaves hold
it: the master waits for every slave this file names before it takes a write (it fetches what
they hold past its end: ``actors.broker.ha_reconcile``; an ASYNC_MASTER, whose slaves hold most
of what it acknowledged alone, waits for them a bounded time). The master rewrites the file
before a slave joining the set may count for an ack, so no SEND_OK relies on a slave the file
omits.

One node id (the slave's brokerId) per line. An operator may edit the file while the master
waits: a node taken out is no longer waited for (what only it held is then lost).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from runtime.store.configfile import write_atomic

FILE = "insync"


def path_of(store_root: str) -> str:
    return os.path.join(store_root, FILE)


def exists(store_root: str) -> bool:
    """Whether the file was ever written (a master of an older version never wrote it)."""
    return os.path.exists(path_of(store_root))


def load(store_root: str) -> frozenset[int]:
    """The node ids the file names (lines that are not a non-negative integer are skipped)."""
    return read(store_root) or frozenset()


def read(store_root: str) -> frozenset[int] | None:
    """What ``load`` reads, but None when the file is there and cannot be read (an I/O
    error): a master waiting after a power loss must not read that as "no slave to wait
    for"."""
    try:
        with open(path_of(store_root), encoding="ascii", errors="replace") as fh:
            words = fh.read().split()
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None
    return frozenset(int(w) for w in words if w.isdigit())


def save(store_root: str, nodes: Iterable[int]) -> None:
    """Name exactly ``nodes`` (atomically: a reader sees the old list or the new one)."""
    text = "".join(f"{n}\n" for n in sorted(set(nodes)))
    write_atomic(path_of(store_root), text.encode("ascii"))
