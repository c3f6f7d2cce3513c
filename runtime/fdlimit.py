"""The process's open-files limit, raised to its hard limit when a server starts.

The JVM raises its soft ``RLIMIT_NOFILE`` to the hard limit at start (HotSpot's ``MaxFDLimit``,
on by default), so a RocketMQ broker gets every descriptor the host allows without anyone
typing ``ulimit -n``. A Python process keeps the soft limit it inherits, 1,024 on many Linux
systems: ``raise_open_files_limit`` does what the JVM does. Consume queues then take at most half
of it (``runtime.store.fd_cache``); client connections, the commit log, index and config files
share the rest.

    raise_open_files_limit() -> (soft before, soft now)
    soft_open_files() -> the soft limit now (RLIM_INFINITY counts as ``UNLIMITED_AS``)
    env_count(name) -> a positive integer the environment variable sets, or None
"""

from __future__ import annotations

import os
import resource

from loguru import logger

UNLIMITED_AS = 131_072
"""What budgets taken from the soft limit count an unlimited one as."""
LOW = 4096
"""A soft limit below this after raising is worth a warning: a few thousand clients and queues."""


def soft_open_files() -> int:
    """The soft open-files limit (``RLIM_INFINITY``: ``UNLIMITED_AS``)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED_AS if soft == resource.RLIM_INFINITY else int(soft)


def env_count(name: str) -> int | None:
    """The positive integer environment variable ``name`` sets (a budget's override), or
    None."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one; return (before, after). Never fails: a
    platform that refuses keeps its limit (and the warning says so)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    infinite = resource.RLIM_INFINITY
    if soft != infinite and soft != hard:
        # Linux caps at fs.nr_open and macOS at OPEN_MAX whatever the hard limit says: try the
        # hard limit, then smaller common caps
        for target in (hard, 1_048_576, 65_536, 10_240):
            if target == infinite or target <= soft or (hard != infinite and target > hard):
                continue
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                continue
            soft = target
            break
    if soft != before:
        logger.info("open-files limit raised from {} to {} (hard limit {})", before, soft, hard)
    if soft != infinite and soft < LOW:
        logger.warning(
            "open-files limit is {} (hard limit {}): every client connection and busy consume "
            "queue needs a descriptor; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) "
            "for more than a few hundred clients",
            soft,
            hard,
        )
    return before, soft
