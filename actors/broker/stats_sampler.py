"""StatsSampler: the broker's message rates and daily totals (RocketMQ's BrokerStatsManager, the
part GET_BROKER_RUNTIME_INFO shows).

Messages (proxy methods; none blocks):
- ``runtime_info()`` -> dict of str to str: the KV table of GET_BROKER_RUNTIME_INFO (28), as
  ``mqadmin brokerStatus`` prints it
- ``windows(which)`` -> [(count, seconds)] for the last minute, hour and day of ``"put"`` or
  ``"got"`` (VIEW_BROKER_STATS_DATA's BROKER_PUT_NUMS / BROKER_GET_NUMS); a window longer than
  the broker has run covers its run
- ``item_windows(name, key)`` -> the same for one item of the ``keyed`` totals
  (TOPIC_PUT_NUMS / TOPIC_PUT_SIZE by topic, GROUP_GET_NUMS / GROUP_GET_SIZE by
  ``topic@group``: ``actors.broker.stats_windows``), or None for an item never seen

State owned (memory only, lost on restart as RocketMQ's is): every 10 s a sample of the two
counters it reads (messages appended to the commit log; messages handed to consumers in pull
responses), the last hour of samples (the rates over 10 s / 60 s / 600 s, the last minute and
hour), one sample an hour for the last day, and the counters at the last two local midnights
for the daily totals; per keyed item (a topic, ``topic@group``) a few snapshots per window
(``KeyedWindows``). Durability point: none. The counters are plain integers (and dicts of
them) bumped inline by the writer, per written batch, and the pull handler, per response,
never a message per message.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import msgspec

from actors.broker.stats_windows import KeyedWindows
from runtime.actor import GeventActor

SAMPLE_INTERVAL_S = 10.0
WINDOWS_S = (10, 60, 600)
STATS_WINDOWS_S = (60, 3600, 86400)  # VIEW_BROKER_STATS_DATA: minute, hour, day
HOUR_S = 3600.0

Counts = Callable[[], tuple[int, int]]
"""(messages put, messages got) since the broker started."""


class _Tick(msgspec.Struct, frozen=True, tag=True):
    pass


class StatsSampler(GeventActor):
    """See the module docstring. ``extra()`` adds the store's figures (offsets, disk) on each
    ``runtime_info``."""

    def __init__(
        self,
        counts: Counts,
        extra: Callable[[], dict[str, str]],
        *,
        version: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        keyed: Callable[[], dict[str, dict[str, int]]] = dict,
    ) -> None:
        super().__init__()
        self._counts = counts
        self._keyed = keyed
        self._items = KeyedWindows()
        self._extra = extra
        self._version = version
        self._clock = clock
        self._wall = wall
        self._boot_ms = int(wall() * 1000)
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque(
            maxlen=int(HOUR_S / SAMPLE_INTERVAL_S) + 2
        )
        self._hourly: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=26)
        self._day = self._today()
        self._today_morning = (0, 0)
        self._yesterday_morning = (0, 0)

    def on_start(self) -> None:
        self._sample()
        self.send_every(SAMPLE_INTERVAL_S, _Tick())

    def on_receive(self, message: object) -> object:
        if isinstance(message, _Tick):
            self._sample()
            return None
        return super().on_receive(message)

    def _today(self) -> tuple[int, int]:
        t = time.localtime(self._wall())
        return t.tm_year, t.tm_yday

    def _sample(self) -> None:
        put, got = self._counts()
        day = self._today()
        if day != self._day:
            self._day = day
            self._yesterday_morning = self._today_morning
            self._today_morning = (put, got)
        sample = (self._clock(), put, got)
        self._samples.append(sample)
        self._items.sample(sample[0], self._keyed())
        if not self._hourly or sample[0] - self._hourly[-1][0] >= HOUR_S:
            self._hourly.append(sample)

    def _rates(self, now: float, put: int, got: int) -> tuple[str, str]:
        puts, gets = [], []
        for window in WINDOWS_S:
            base = self._samples[0]
            for sample in reversed(self._samples):
                if now - sample[0] >= window:
                    base = sample
                    break
            span = now - base[0]
            puts.append((put - base[1]) / span if span > 0 else 0.0)
            gets.append((got - base[2]) / span if span > 0 else 0.0)
        return " ".join(f"{r:.2f}" for r in puts), " ".join(f"{r:.2f}" for r in gets)

    def windows(self, which: str) -> list[tuple[int, float]]:
        """(count, seconds covered) of ``which`` ("put" or "got") over the last minute, hour
        and day, from the samples (a window reaches back to the newest sample at least that
        old, else to the oldest one)."""
        put, got = self._counts()
        now = self._clock()
        column = 1 if which == "put" else 2
        current = put if which == "put" else got
        out = []
        for window in STATS_WINDOWS_S:
            pool = self._samples if window <= HOUR_S else self._hourly
            base = pool[0]
            for sample in reversed(pool):
                if now - sample[0] >= window:
                    base = sample
                    break
            out.append((current - base[column], max(now - base[0], 0.0)))
        return out

    def item_windows(self, name: str, key: str) -> list[tuple[int, float]] | None:
        """(count, seconds covered) of one keyed item over the last minute, hour and day."""
        current = self._keyed().get(name, {}).get(key)
        now = self._clock()
        if current is None:
            return None
        return self._items.windows(name, key, now, current)

    def runtime_info(self) -> dict[str, str]:
        put, got = self._counts()
        now = self._clock()
        put_tps, get_tps = self._rates(now, put, got)
        up = int(self._wall() - self._boot_ms / 1000)
        info = {
            "brokerVersionDesc": self._version,
            "bootTimestamp": str(self._boot_ms),
            "runtime": f"[ {up // 86400} days, {up % 86400 // 3600} hours, "
            f"{up % 3600 // 60} minutes, {up % 60} seconds ]",
            "putTps": put_tps,
            "getTransferedTps": get_tps,
            "msgPutTotalTodayNow": str(put),
            "msgGetTotalTodayNow": str(got),
            "msgPutTotalTodayMorning": str(self._today_morning[0]),
            "msgGetTotalTodayMorning": str(self._today_morning[1]),
            "msgPutTotalYesterdayMorning": str(self._yesterday_morning[0]),
            "msgGetTotalYesterdayMorning": str(self._yesterday_morning[1]),
        }
        info.update(self._extra())
        return info
