"""``Histogram``, a Prometheus histogram; ``LatencyHistogram``: RocketMQ 5's
``rocketmq_rpc_latency``; ``SIZE_BUCKETS``: its ``rocketmq_message_size``'s.

RocketMQ's brokers and proxies record each request's time in milliseconds into the buckets
1, 3, 5, 7, 10, 100, 1000, 2000, 3000 (``RemotingMetricsManager``); actormq's requests mostly
take well under a millisecond, so 0.1, 0.25 and 0.5 come first (a dashboard's
``histogram_quantile`` works with any buckets). ``observe(labels, seconds)``: one request, its
labels a tuple of values in ``label_names``' order. ``family()`` renders it (``_bucket`` with
``le``, cumulative, ``_sum`` in ms, ``_count``). Not thread-safe unless given a ``lock``
(the broker observes from its hub's greenlets only; the proxy from grpcio's threads).

RocketMQ's message sizes are in bytes, into 1 KiB, 4 KiB, 512 KiB, 1, 2 and 4 MiB
(``BrokerMetricsManager``): ``Histogram(..., buckets=SIZE_BUCKETS, scale=1)``.
"""

from __future__ import annotations

import bisect
import contextlib
from typing import Any

from runtime.prometheus import Family
from runtime.remoting.codes import RequestCode, ResponseCode

BUCKETS_MS = (0.1, 0.25, 0.5, 1, 3, 5, 7, 10, 100, 1000, 2000, 3000)
SIZE_BUCKETS = (1024, 4096, 512 * 1024, 1024 * 1024, 2 * 1024 * 1024, 4 * 1024 * 1024)
RPC_LABELS = ("protocol_type", "request_code", "response_code")
"""A remoting request's labels (RocketMQ's names): ``remoting``, the codes' names."""

_rpc_labels: dict[tuple[int, int], tuple[str, str, str]] = {}


def rpc_labels(request_code: int, response_code: int) -> tuple[str, str, str]:
    """The labels of a remoting request answered ``response_code`` (cached: hot path)."""
    key = (request_code, response_code)
    labels = _rpc_labels.get(key)
    if labels is None:
        labels = ("remoting", _name(RequestCode, request_code), _name(ResponseCode, response_code))
        if len(_rpc_labels) < 4096:
            _rpc_labels[key] = labels
    return labels


def _name(codes: Any, code: int) -> str:
    """The code's name; ``unknown`` for a code not known here (a peer making codes up must
    not add series without bound)."""
    try:
        return str(codes(code).name)
    except ValueError:
        return "unknown"


class Histogram:
    """Observations by labels into ``buckets`` (upper bounds, in the unit shown), each value
    multiplied by ``scale`` first."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: tuple[str, ...],
        lock: Any = None,
        *,
        buckets: tuple[float, ...] = BUCKETS_MS,
        scale: float = 1000.0,
    ) -> None:
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self.buckets = buckets
        self.scale = scale
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._counts: dict[tuple[str, ...], list[int]] = {}
        """labels -> a count per bucket (not cumulative), then +Inf's."""
        self._sums: dict[tuple[str, ...], float] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        with self._lock:
            self.observe_locked(labels, value)

    def observe_locked(self, labels: tuple[str, ...], value: float) -> None:
        """``observe`` for a caller holding the histogram's lock already."""
        shown = value * self.scale
        counts = self._counts.get(labels)
        if counts is None:
            counts = self._counts[labels] = [0] * (len(self.buckets) + 1)
            self._sums[labels] = 0.0
        counts[bisect.bisect_left(self.buckets, shown)] += 1
        self._sums[labels] += shown

    def family(self) -> Family:
        family = Family(self.name, "histogram", self.help)
        with self._lock:
            rows = [
                (labels, list(counts), self._sums[labels])
                for labels, counts in self._counts.items()
            ]
        for labels, counts, total in sorted(rows):
            named = dict(zip(self.label_names, labels, strict=True))
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                family.add(running, suffix="_bucket", **named, le=_bound(bound))
            running += counts[-1]
            family.add(running, suffix="_bucket", **named, le="+Inf")
            family.add(total, suffix="_sum", **named)
            family.add(running, suffix="_count", **named)
        return family


class LatencyHistogram(Histogram):
    """Seconds observed, shown in milliseconds in ``BUCKETS_MS``."""


def _bound(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
