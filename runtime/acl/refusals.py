"""The log of requests a broker's ACL (or a name server's write check) refused: a WARNING per
refusal, as RocketMQ logs each AclException, but at most one a ``INTERVAL_S`` per client host
and reason, with the count of those left out since (a client retrying, or flooding, a refused
request cannot flood the log)."""

from __future__ import annotations

import time

from loguru import logger

from runtime.hostport import host_of

INTERVAL_S = 1.0
MAX_KEYS = 4096


class RefusalLog:
    """See the module docstring. Not thread-safe: the broker's hub only."""

    def __init__(self, interval: float = INTERVAL_S, who: str = "broker") -> None:
        self.interval = interval
        self.who = who
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # -> (logged at, left out)

    def refused(self, code: int, remote_address: str, reason: str) -> None:
        key = (host_of(remote_address), reason)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return
        if len(self._last) >= MAX_KEYS:
            self._last.clear()
        left_out = last[1] if last is not None else 0
        self._last[key] = (now, 0)
        more = f" ({left_out} more like it left out)" if left_out else ""
        logger.warning(
            "{}: acl refused request code={} from {}: {}{}",
            self.who,
            code,
            remote_address,
            reason,
            more,
        )
