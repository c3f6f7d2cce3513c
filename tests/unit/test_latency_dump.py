"""bench/latency_dump.py: grouping slow messages into bursts and onto the phases of a period."""

from __future__ import annotations

from bench.latency_dump import Burst, Sample, bursts, phase_bins, read_dump

MS = 1_000_000


def test_read_dump_skips_blank_lines() -> None:
    assert read_dump(["10 0.5\n", "\n", "20 2.25\n"]) == [Sample(10, 0.5), Sample(20, 2.25)]


def test_slow_messages_close_together_form_one_burst() -> None:
    # Given slow messages at 100, 105 and 300 ms, and fast ones in between
    samples = [Sample(0, 0.5), Sample(100 * MS, 3.0), Sample(105 * MS, 4.0)]
    samples += [Sample(200 * MS, 0.6), Sample(300 * MS, 2.0)]
    # Then the first two are one burst and the third another
    assert bursts(samples, over_ms=1.5, gap_ms=20) == [
        Burst(100.0, 105.0, 4.0, 2),
        Burst(300.0, 300.0, 2.0, 1),
    ]


def test_a_periodic_stall_piles_up_in_one_phase_bin() -> None:
    # Given a slow message at 0.05 s into every second for 5 s, and fast ones elsewhere
    samples = [Sample(int((s + 0.05) * 1e9), 4.0) for s in range(5)]
    samples += [Sample(int((s + 0.5) * 1e9), 0.7) for s in range(5)]
    # Then a 1 s period puts them all in its first tenth
    assert phase_bins(samples, over_ms=1.5, period_s=1.0) == [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]
