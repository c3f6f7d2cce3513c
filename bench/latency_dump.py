"""Where a latency tail comes from: read a ``bench latency --dump FILE`` and print the slow
messages grouped into bursts, and how they fall on the phases of candidate periods.

    python bench/latency_dump.py FILE [--over 1.5] [--periods 0.5,1,5]

A burst is a run of slow messages less than ``--gap`` ms apart. A period that explains the tail
(a timer: a checkpoint, a flush) shows as slow messages piling up in one or two of the ten
phase bins; contention shows as bins of about the same height. This is how the once-a-second
checkpoint was found (docs/benchmarks.md, "Session 4").
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import NamedTuple

BINS = 10


class Sample(NamedTuple):
    sent_ns: int
    latency_ms: float


class Burst(NamedTuple):
    start_ms: float
    end_ms: float
    worst_ms: float
    count: int


def read_dump(lines: Iterable[str]) -> list[Sample]:
    """Parse ``<sent ns> <latency ms>`` lines (blank lines skipped)."""
    out = []
    for line in lines:
        parts = line.split()
        if parts:
            out.append(Sample(int(parts[0]), float(parts[1])))
    return out


def bursts(samples: Sequence[Sample], over_ms: float, gap_ms: float) -> list[Burst]:
    """Slow samples (latency > ``over_ms``) grouped when less than ``gap_ms`` apart; times are
    ms since the first sample."""
    if not samples:
        return []
    t0 = min(s.sent_ns for s in samples)
    out: list[Burst] = []
    for s in sorted(samples):
        if s.latency_ms <= over_ms:
            continue
        t = (s.sent_ns - t0) / 1e6
        if out and t - out[-1].end_ms < gap_ms:
            last = out[-1]
            out[-1] = Burst(last.start_ms, t, max(last.worst_ms, s.latency_ms), last.count + 1)
        else:
            out.append(Burst(t, t, s.latency_ms, 1))
    return out


def phase_bins(samples: Sequence[Sample], over_ms: float, period_s: float) -> list[int]:
    """How many slow samples fall in each tenth of ``period_s`` (phase of the send time)."""
    period_ns = int(period_s * 1e9)
    bins = [0] * BINS
    for s in samples:
        if s.latency_ms > over_ms:
            bins[(s.sent_ns % period_ns) * BINS // period_ns] += 1
    return bins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--over", type=float, default=1.5, help="slow means above this (ms)")
    parser.add_argument("--gap", type=float, default=20.0, help="burst gap (ms)")
    parser.add_argument("--periods", default="0.5,1,5,20,30", help="seconds, comma-separated")
    parser.add_argument("--most", type=int, default=20, help="bursts to list, largest first")
    args = parser.parse_args(argv)
    with open(args.file) as fh:
        samples = read_dump(fh)
    slow = sum(1 for s in samples if s.latency_ms > args.over)
    print(f"{len(samples)} messages, {slow} over {args.over} ms")
    found = bursts(samples, args.over, args.gap)
    for b in sorted(found, key=lambda b: b.count, reverse=True)[: args.most]:
        span = f"{b.start_ms:10.1f} - {b.end_ms:10.1f} ms"
        print(f"  {span}: {b.count:5d} slow, worst {b.worst_ms:.2f}")
    for period in (float(p) for p in args.periods.split(",")):
        bins = phase_bins(samples, args.over, period)
        print(f"period {period:g} s, slow per tenth of a period: {bins}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
