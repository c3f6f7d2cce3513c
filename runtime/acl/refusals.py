"""The log of requests a broker's ACL (or a name server's write check) refused: a WARNING per
refusal, as RocketMQ logs each AclException, but at most one a ``INTERVAL_S`` per client host
and reason, with the count of those left out since (a client retrying, or flooding, a refused
request cannot flood the log); and at most ``HOST_LINES`` an interval per host whatever the
reasons (a reason names the accessKey sent: a client sending a new one with every request made
a new reason each time, a WARNING per request). A reason is logged (and remembered) cut to
``MAX_REASON`` characters, its control characters escaped: it holds what the client sent (an
accessKey of a megabyte, or with line breaks forging log lines of its own)."""

from __future__ import annotations

import time

from loguru import logger

from runtime.hostport import host_of

INTERVAL_S = 1.0
MAX_KEYS = 4096
HOST_LINES = 8
"""WARNINGs one client host gets an ``INTERVAL_S``, whatever the reasons."""
MAX_REASON = 300


def shown(reason: str) -> str:
    """``reason`` as one bounded log line (see the module docstring)."""
    if len(reason) > MAX_REASON:
        reason = f"{reason[:MAX_REASON]}... ({len(reason)} characters)"
    if reason.isprintable():
        return reason
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)


class RefusalLog:
    """See the module docstring. Not thread-safe: the broker's hub only."""

    def __init__(self, interval: float = INTERVAL_S, who: str = "broker") -> None:
        self.interval = interval
        self.who = who
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # -> (logged at, left out)
        self._hosts: dict[str, tuple[float, int, int]] = {}  # -> (since, lines, left out)

    def refused(self, code: int, remote_address: str, reason: str) -> None:
        host = host_of(remote_address)
        reason = shown(reason)
        key = (host, reason)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return
        since, lines, host_left_out = self._hosts.get(host, (now, 0, 0))
        if now - since >= self.interval:
            since, lines = now, 0
        if lines >= HOST_LINES:
            self._hosts[host] = (since, lines, host_left_out + 1)
            return
        if len(self._last) >= MAX_KEYS:
            self._last.clear()
        if len(self._hosts) >= MAX_KEYS:
            self._hosts.clear()
        left_out = last[1] if last is not None else 0
        self._last[key] = (now, 0)
        self._hosts[host] = (since, lines + 1, 0)
        more = f" ({left_out} more like it left out)" if left_out else ""
        if host_left_out:
            more += f" ({host_left_out} more from this host left out)"
        logger.warning(
            "{}: acl refused request code={} from {}: {}{}",
            self.who,
            code,
            remote_address,
            reason,
            more,
        )
