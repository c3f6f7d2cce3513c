"""A tiny blocking remoting client for tests: raw frames in, commands out (gevent sockets)."""

from __future__ import annotations

import time
from typing import Any

import gevent.socket

from runtime import hostport
from runtime.acl.signature import SessionCredentials, sign
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.frame import FrameDecoder, encode


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(address, tuple):
        return address
    return hostport.parse_address(address)


class WireClient:
    """Send commands or raw bytes; receive commands in arrival order."""

    def __init__(self, address: str | tuple[str, int], timeout: float = 10.0) -> None:
        self.sock = gevent.socket.create_connection(parse_address(address), timeout=timeout)
        self.decoder = FrameDecoder()
        self.inbox: list[RemotingCommand] = []

    def send(self, cmd: RemotingCommand) -> None:
        self.sock.sendall(encode(cmd))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> RemotingCommand:
        while not self.inbox:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed by the server")
            self.inbox.extend(self.decoder.feed(data))
        return self.inbox.pop(0)

    def call(
        self,
        code: int,
        ext: dict[str, Any] | None = None,
        body: bytes = b"",
        credentials: SessionCredentials | None = None,
    ) -> Any:
        """Send a request (signed with ``credentials`` for RocketMQ's ACL) and return its
        response (skipping server-pushed requests)."""
        request = RemotingCommand.request(code, ext, body)
        if credentials is not None:
            request = sign(request, credentials)
        return self.call_command(request)

    def call_command(self, request: RemotingCommand) -> Any:
        """Send ``request`` and return its response (skipping server-pushed requests)."""
        self.send(request)
        while True:
            reply = self.receive()
            if reply.is_response and reply.opaque == request.opaque:
                return reply

    def wait_for_request(self, code: int, timeout: float) -> RemotingCommand:
        """The next request with ``code`` the server pushes (skipping anything else);
        AssertionError when none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                cmd = self.receive()
            except TimeoutError:
                break
            if cmd.code == code and not cmd.is_response:
                return cmd
        raise AssertionError(f"no request {code} from the server within {timeout} s")

    def is_closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def send_v2_header(
    topic: str,
    *,
    group: str = "pg",
    queue_id: int = 0,
    sys_flag: int = 0,
    properties: str = "",
    born_ms: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """SEND_MESSAGE_V2's short-named header fields (a..k) as clients send them."""
    return {
        "a": group,
        "b": topic,
        "c": "TBW102",
        "d": 4,
        "e": queue_id,
        "f": sys_flag,
        "g": born_ms,
        "h": 0,
        "i": properties,
        "j": 0,
        "k": False,
        **extra,
    }


def send_v2(topic: str, body: bytes, **header: Any) -> RemotingCommand:
    """A SEND_MESSAGE_V2 request (see ``send_v2_header`` for the fields)."""
    ext = send_v2_header(topic, **header)
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, ext, body)
