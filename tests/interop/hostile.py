"""A hostile remoting peer: garbage, broken frames, absurd lengths and wrong fields, on loopback.

Built with ``struct`` and ``json`` only (not with actormq's codec), so a codec bug cannot hide
here. Bounded: a fixed number of rounds, each connection with a short time-out, all to the
addresses the test gives (the actormq process under test, on 127.0.0.1).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.wire import parse_address


def frame(header: dict | bytes, body: bytes = b"", *, serialize_type: int = 0) -> bytes:
    """A well-framed command: length, serialize type and header length, header, body."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">iI", 4 + len(raw) + len(body), (serialize_type << 24) | len(raw)) + (
        raw + body
    )


def request(code: int, ext: dict[str, object], body: bytes = b"", opaque: int = 7) -> bytes:
    header = {"code": code, "language": "JAVA", "version": 401, "opaque": opaque, "flag": 0}
    header["extFields"] = ext
    return frame(header, body)


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    readable: bool  # a whole frame with a readable opaque: an error reply is due
    opaque: int = 7


CASES = [
    # Framing errors: the connection closes (perhaps after an error reply).
    Case("http request", b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n", readable=False),
    Case("length 2^31-1", struct.pack(">i", 0x7FFFFFFF) + b"\0" * 4, readable=False),
    Case("negative length", struct.pack(">i", -1) + b"\0" * 4, readable=False),
    Case("zero length", struct.pack(">i", 0) + b"\0" * 4, readable=False),
    Case("header longer than frame", struct.pack(">iI", 12, 4096) + b"{}" + b"\0" * 6, False),
    Case("header not json", frame(b"{code: oops"), readable=False),
    Case("header a json list", frame(b"[1, 2, 3]"), readable=False),
    Case("binary header garbage", frame(b"\xff" * 40, serialize_type=1), readable=False),
    # Readable frames with wrong content: an error response naming the reason.
    Case("unknown request code", request(9999, {}), readable=True),
    Case("send without topic", request(310, {"a": "g", "e": "abc", "f": "x"}), readable=True),
    Case(
        "send to queue 99999",
        request(
            10,
            {
                "producerGroup": "g",
                "topic": "HostileT",
                "defaultTopic": "TBW102",
                "defaultTopicQueueNums": "4",
                "queueId": "99999",
                "sysFlag": "0",
                "bornTimestamp": "0",
                "flag": "0",
            },
            b"x",
        ),
        readable=True,
    ),
    Case(
        "pull queue 99999",
        request(
            11,
            {
                "consumerGroup": "g",
                "topic": "TBW102",
                "queueId": "99999",
                "queueOffset": "-5",
                "maxMsgNums": "1000000000",
                "sysFlag": "0",
                "commitOffset": "0",
                "suspendTimeoutMillis": "0",
            },
        ),
        readable=True,
    ),
    Case("heartbeat body not json", request(34, {}, b'{"clientID": '), readable=True),
    Case("route of no topic", request(105, {}), readable=True),
    Case(
        "register broker with junk body",
        request(
            103,
            {"brokerName": "evil", "brokerAddr": "x", "clusterName": "c", "brokerId": "zero"},
            b"\x00\x01junk",
        ),
        readable=True,
    ),
]


@dataclass
class Report:
    outcomes: dict[str, Counter] = field(default_factory=dict)  # case -> outcome counts
    rounds: int = 0

    def add(self, case: str, outcome: str) -> None:
        self.outcomes.setdefault(case, Counter())[outcome] += 1


def _read_reply(sock: socket.socket, timeout: float) -> tuple[str, dict | None]:
    """('closed' | 'reply' | 'silent', header of the first reply frame)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return ("closed", None) if len(data) < 8 else ("reply", _header(data))
            data += chunk
            if len(data) >= 8:
                length, word = struct.unpack(">iI", data[:8])
                hlen = word & 0xFFFFFF
                if len(data) >= 8 + hlen:
                    return "reply", _header(data)
                if length > 16 << 20:
                    return "reply", None
    except TimeoutError:
        return ("silent", None) if len(data) < 8 else ("reply", _header(data))
    except OSError:
        return "closed", None


def _header(data: bytes) -> dict | None:
    hlen = struct.unpack(">I", data[4:8])[0] & 0xFFFFFF
    try:
        return json.loads(data[8 : 8 + hlen])
    except ValueError:
        return None


class HostileClient(threading.Thread):
    """Sends every case to every address, round after round, until stopped or ``max_rounds``.

    It also holds ``idle`` connections open doing nothing and one connection stuck in the middle
    of a frame (a slow-loris), for the whole run."""

    def __init__(
        self,
        addresses: list[str],
        max_rounds: int = 200,
        idle: int = 32,
        reply_timeout: float = 1.0,
    ) -> None:
        super().__init__(daemon=True, name="hostile-client")
        self.reply_timeout = reply_timeout
        self.addresses = [parse_address(a) for a in addresses]
        self.max_rounds = max_rounds
        self.idle = idle
        self.report = Report()
        self.stopping = threading.Event()
        self.held: list[socket.socket] = []

    def run(self) -> None:
        try:
            for address in self.addresses:
                for _ in range(self.idle):
                    self.held.append(socket.create_connection(address, timeout=5))
                stuck = socket.create_connection(address, timeout=5)
                stuck.sendall(struct.pack(">iI", 1000, 20) + b'{"code": 1')  # never finished
                self.held.append(stuck)
            while self.report.rounds < self.max_rounds and not self.stopping.is_set():
                for case in CASES:
                    for address in self.addresses:
                        self.report.add(case.name, self._try(case, address))
                self.report.rounds += 1
        finally:
            for sock in self.held:
                sock.close()

    def _try(self, case: Case, address: tuple[str, int]) -> str:
        try:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(case.payload)
                outcome, header = _read_reply(sock, timeout=self.reply_timeout)
        except OSError as exc:
            return f"connect/send failed: {exc.__class__.__name__}"
        if outcome != "reply":
            return outcome
        if header is None:
            return "reply (unreadable)"
        code = header.get("code")
        ok_opaque = header.get("opaque") == case.opaque
        remark = "with remark" if header.get("remark") else "no remark"
        return f"reply code {code} ({'same opaque' if ok_opaque else 'other opaque'}, {remark})"

    def stop(self, timeout: float = 30.0) -> Report:
        self.stopping.set()
        self.join(timeout)
        assert not self.is_alive(), "the hostile client did not stop"
        return self.report


def wait_rounds(client: HostileClient, rounds: int, timeout: float) -> None:
    """Let the hostile client run at least ``rounds`` rounds (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while client.report.rounds < rounds and client.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
