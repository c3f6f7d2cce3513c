"""An in-test TCP proxy for one link, to cut or slow it without root (ra's inet_tcp_proxy idea).

``TcpProxy(upstream)`` listens on a loopback port and forwards every connection to
``upstream``. One thread per proxy runs a ``selectors`` loop over all of the link's sockets
(plain threads: the test process is not monkey-patched, and the client's gevent hub has a
thread of its own). Modes, changed from any thread; a change has taken effect when the call
returns:

- ``pass_()``: forward bytes both ways (the start mode);
- ``blackhole()``: keep accepting connections but drop every byte in both directions, as a
  partition does. A connection that lost bytes cannot be resumed (its stream has a hole), so
  ``heal()`` resets those; idle connections carry on;
- ``reset()``: close every connection with a TCP RST and reset each new one at once;
- ``delay(ms, jitter_ms)``: hold each chunk ``ms`` (+ a seeded jitter) before forwarding it,
  keeping byte order;
- ``heal()``: back to ``pass_()``, delayed bytes flushed in order, blackholed connections reset.

The jitter comes from ``random.Random(seed)``, so one seed gives one sequence of delays.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import errno
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 64 * 1024
HIGH_WATER = 4 * 1024 * 1024  # stop reading a side while its peer has this much unsent


class Mode(enum.Enum):
    PASS = "pass"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    DELAY = "delay"


@dataclass
class ProxyStats:
    accepted: int = 0
    forwarded: int = 0  # bytes written to a peer
    dropped: int = 0  # bytes read and discarded (blackhole)
    resets: int = 0  # connections closed with RST by the proxy
    modes: list[str] = field(default_factory=list)


class DelaySchedule:
    """Delays in seconds: ``base_ms`` plus a uniform jitter in [0, ``jitter_ms``] from the seed."""

    def __init__(self, seed: int, base_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.base_ms = base_ms
        self.jitter_ms = jitter_ms

    def next(self) -> float:
        jitter = self.rng.uniform(0.0, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return (self.base_ms + jitter) / 1000.0


def _rst_close(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a dead peer or a middlebox reset would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Side:
    """One socket of a pair and the bytes waiting to be written to it."""

    __slots__ = ("closed", "delayed", "out", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()
        self.delayed: collections.deque[tuple[float, bytes]] = collections.deque()
        self.closed = False


class _Pair:
    """A client connection and its upstream connection (None while blackholed from the start)."""

    __slots__ = ("client", "connecting", "tainted", "upstream")

    def __init__(self, client: _Side, upstream: _Side | None, connecting: bool) -> None:
        self.client = client
        self.upstream = upstream
        self.connecting = connecting
        self.tainted = upstream is None

    def peer(self, side: _Side) -> _Side | None:
        return self.upstream if side is self.client else self.client


class TcpProxy:
    """One link's proxy. See the module docstring."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        name: str = "link",
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.seed = seed
        self.stats = ProxyStats()
        self._mode = Mode.PASS
        self._schedule = DelaySchedule(seed)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_host, listen_port))
        self._listener.listen(128)
        self._listener.setblocking(False)
        host, port = self._listener.getsockname()[:2]
        self.address = f"{host}:{port}"
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._pairs: dict[socket.socket, tuple[_Pair, _Side]] = {}
        self._commands: collections.deque[tuple[Callable[[], None], threading.Event]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._running = False
        self._thread = threading.Thread(target=self._loop, name=f"proxy-{name}", daemon=True)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._running = True
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()
        return self

    def close(self) -> None:
        if not self._running:
            return
        self._run(self._shutdown)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def connections(self) -> int:
        return len({id(pair) for pair, _ in self._pairs.values()})

    # -- modes (any thread) ------------------------------------------------------------------

    def pass_(self) -> None:
        self.heal()

    def heal(self) -> None:
        self._run(self._heal)

    def blackhole(self) -> None:
        self._run(lambda: self._set_mode(Mode.BLACKHOLE))

    def reset(self) -> None:
        self._run(self._reset)

    def delay(self, ms: float, jitter_ms: float = 0.0) -> None:
        def apply() -> None:
            self._schedule.base_ms = ms
            self._schedule.jitter_ms = jitter_ms
            self._set_mode(Mode.DELAY)

        self._run(apply)

    def set_upstream(self, upstream: str) -> None:
        """Forward new connections to another address (existing ones keep theirs)."""
        self._run(lambda: setattr(self, "upstream", upstream))

    def _run(self, fn: Callable[[], None], timeout: float = 10.0) -> None:
        if not self._running:
            raise RuntimeError(f"proxy {self.name} is not running")
        done = threading.Event()
        with self._lock:
            self._commands.append((fn, done))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise TimeoutError(f"proxy {self.name}: mode change not applied in {timeout}s")

    # -- loop thread -------------------------------------------------------------------------

    def _set_mode(self, mode: Mode) -> None:
        self._mode = mode
        self.stats.modes.append(mode.value)

    def _heal(self) -> None:
        for pair in self._all_pairs():
            if pair.tainted:
                self._close_pair(pair, rst=True)
                continue
            for side in (pair.client, pair.upstream):
                if side is not None and side.delayed:
                    side.out += b"".join(chunk for _, chunk in side.delayed)
                    side.delayed.clear()
                    self._update(side)
        self._set_mode(Mode.PASS)

    def _reset(self) -> None:
        self._set_mode(Mode.RESET)
        for pair in self._all_pairs():
            self._close_pair(pair, rst=True)

    def _shutdown(self) -> None:
        for pair in self._all_pairs():
            self._close_pair(pair, rst=False)
        self._running = False

    def _all_pairs(self) -> list[_Pair]:
        seen: dict[int, _Pair] = {}
        for pair, _ in self._pairs.values():
            seen[id(pair)] = pair
        return list(seen.values())

    def _loop(self) -> None:
        try:
            while self._running:
                events = self._sel.select(self._next_timeout())
                for key, mask in events:
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._on_event(key.fileobj, mask)  # type: ignore[arg-type]
                    if not self._running:
                        break
                self._release_due()
        finally:
            for pair in self._all_pairs():
                self._close_pair(pair, rst=False)
            self._sel.close()
            for sock in (self._listener, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    sock.close()

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while True:
            with self._lock:
                if not self._commands:
                    return
                fn, done = self._commands.popleft()
            try:
                fn()
            finally:
                done.set()

    def _next_timeout(self) -> float | None:
        due = [
            side.delayed[0][0]
            for pair in self._all_pairs()
            for side in (pair.client, pair.upstream)
            if side is not None and side.delayed
        ]
        if not due:
            return None
        return max(0.0, min(due) - time.monotonic())

    def _release_due(self) -> None:
        now = time.monotonic()
        for pair in self._all_pairs():
            for side in (pair.client, pair.upstream):
                if side is None or side.closed:
                    continue
                moved = False
                while side.delayed and side.delayed[0][0] <= now:
                    side.out += side.delayed.popleft()[1]
                    moved = True
                if moved:
                    self._flush(pair, side)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.stats.accepted += 1
            if self._mode is Mode.RESET:
                self.stats.resets += 1
                _rst_close(conn)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Side(conn)
            if self._mode is Mode.BLACKHOLE:
                pair = _Pair(client, None, connecting=False)
                self._pairs[conn] = (pair, client)
                self._sel.register(conn, selectors.EVENT_READ, "data")
                continue
            host, _, port = self.upstream.rpartition(":")
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            up.setblocking(False)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = up.connect_ex((host, int(port)))
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                _rst_close(up)
                self.stats.resets += 1
                _rst_close(conn)
                continue
            upstream = _Side(up)
            pair = _Pair(client, upstream, connecting=code != 0)
            self._pairs[conn] = (pair, client)
            self._pairs[up] = (pair, upstream)
            self._sel.register(conn, selectors.EVENT_READ, "data")
            self._sel.register(
                up, selectors.EVENT_WRITE if pair.connecting else selectors.EVENT_READ, "data"
            )

    def _on_event(self, sock: socket.socket, mask: int) -> None:
        entry = self._pairs.get(sock)
        if entry is None:
            return
        pair, side = entry
        if pair.connecting and side is pair.upstream and mask & selectors.EVENT_WRITE:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.stats.resets += 1
                self._close_pair(pair, rst=True)
                return
            pair.connecting = False
            self._update(side)
            peer = pair.client
            if peer.out or peer.delayed:
                self._update(peer)
            if side.out:
                self._flush(pair, side)
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(pair, side)
            if side.closed:
                return
        if mask & selectors.EVENT_READ:
            self._read(pair, side)

    def _read(self, pair: _Pair, side: _Side) -> None:
        try:
            data = side.sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_pair(pair, rst=True)
            return
        peer = pair.peer(side)
        if not data:
            if peer is not None and not peer.closed:
                # best effort: what the closing side sent before its FIN still goes out
                while peer.delayed:
                    peer.out += peer.delayed.popleft()[1]
                with contextlib.suppress(OSError):
                    peer.sock.setblocking(True)
                    peer.sock.settimeout(1.0)
                    peer.sock.sendall(peer.out)
                    self.stats.forwarded += len(peer.out)
                    peer.out.clear()
            self._close_pair(pair, rst=False)
            return
        if self._mode is Mode.BLACKHOLE or peer is None:
            self.stats.dropped += len(data)
            pair.tainted = True
            return
        if self._mode is Mode.DELAY:
            due = time.monotonic() + self._schedule.next()
            if peer.delayed:
                due = max(due, peer.delayed[-1][0])
            peer.delayed.append((due, data))
            self._update(side)
            return
        peer.out += data
        if not (pair.connecting and peer is pair.upstream):
            self._flush(pair, peer)
        self._update(side)

    def _flush(self, pair: _Pair, side: _Side) -> None:
        if side.closed or (pair.connecting and side is pair.upstream):
            return
        while side.out:
            try:
                sent = side.sock.send(side.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close_pair(pair, rst=True)
                return
            self.stats.forwarded += sent
            del side.out[:sent]
        self._update(side)
        peer = pair.peer(side)
        if peer is not None and not peer.closed:
            self._update(peer)

    def _update(self, side: _Side) -> None:
        """Register the interest a side needs: write while it has bytes to send, read while
        its peer is not backed up."""
        if side.closed:
            return
        entry = self._pairs.get(side.sock)
        if entry is None:
            return
        pair = entry[0]
        if pair.connecting and side is pair.upstream:
            events = selectors.EVENT_WRITE
        else:
            peer = pair.peer(side)
            backed_up = peer is not None and len(peer.out) > HIGH_WATER
            events = 0 if backed_up else selectors.EVENT_READ
            if side.out:
                events |= selectors.EVENT_WRITE
        with contextlib.suppress(KeyError, ValueError, OSError):
            if events:
                self._sel.modify(side.sock, events, "data")
            else:
                self._sel.unregister(side.sock)
                return
        if events and side.sock not in self._sel.get_map():
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.register(side.sock, events, "data")

    def _close_pair(self, pair: _Pair, *, rst: bool) -> None:
        for side in (pair.client, pair.upstream):
            if side is None or side.closed:
                continue
            side.closed = True
            self._pairs.pop(side.sock, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(side.sock)
            if rst:
                _rst_close(side.sock)
            else:
                with contextlib.suppress(OSError):
                    side.sock.close()
        if rst:
            self.stats.resets += 1
