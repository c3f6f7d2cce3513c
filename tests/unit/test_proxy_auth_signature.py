"""The proxy's ACL check (``actors.proxy.auth.ProxyAuth``) of a signature with non-ASCII
characters, over a real gRPC connection: grpcio hands such a header value to the call as
sent (its own clients refuse to send one, so the request is written as raw HTTP/2 frames), and
the check must refuse it as a bad signature, not raise TypeError (``hmac.compare_digest`` on
a str that is not ASCII)."""

from __future__ import annotations

import pathlib
import socket
import struct
import threading
from concurrent import futures
from typing import Any

import grpc
import pytest

from actors.proxy.auth import ProxyAuth
from actors.proxy.proto import Code

pytestmark = pytest.mark.timeout(30)

ACL = """\
accounts:
  - accessKey: app-account
    secretKey: app-secret
    admin: true
"""


def _hpack_int(n: int) -> bytes:
    """An HPACK integer with a 7-bit prefix (RFC 7541 5.1)."""
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes([*out, n])


def _literal(name: bytes, value: bytes) -> bytes:
    """A header field without indexing, new name, no Huffman coding (RFC 7541 6.2.2)."""
    return b"\x00" + _hpack_int(len(name)) + name + _hpack_int(len(value)) + value


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """An HTTP/2 frame (RFC 9113 4.1)."""
    head = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)
    return head + payload


def _call_with(sock: socket.socket, authorization: str) -> None:
    """Start one unary call of /t.S/M with ``authorization`` sent as its UTF-8 bytes."""
    fields = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/t.S/M"),
        (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"x-mq-date-time", b"20250101T000000Z"),
        (b"authorization", authorization.encode()),
    ]
    headers = b"".join(_literal(k, v) for k, v in fields)
    message = b"\x00\x00\x00\x00\x00"  # (an empty gRPC message)
    sock.sendall(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + _frame(4, 0, 0, b"")  # SETTINGS
        + _frame(1, 4, 1, headers)  # HEADERS, END_HEADERS
        + _frame(0, 1, 1, message)  # DATA, END_STREAM
    )


def test_a_non_ascii_signature_is_refused_as_a_bad_signature(tmp_path: pathlib.Path) -> None:
    acl = tmp_path / "plain_acl.yml"
    acl.write_text(ACL)
    auth = ProxyAuth(acl)
    outcomes: list[Any] = []
    done = threading.Event()

    def handler(_request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            outcomes.append(auth.refusal("QueryRoute", None, context))
        except Exception as exc:
            outcomes.append(exc)
        done.set()
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(1))
    method = grpc.unary_unary_rpc_method_handler(handler)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.S", {"M": method}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        # Given a proxy ACL with the account app-account
        # When a call names it with a signature holding a non-ASCII character
        authorization = (
            "MQv2-HMAC-SHA1 Credential=app-account, SignedHeaders=x-mq-date-time, Signature=\u00e9"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            _call_with(sock, authorization)
            assert done.wait(10)
        # Then the call is refused as unauthorized, its signature failed
        assert outcomes == [(Code.UNAUTHORIZED, "Check signature failed for accessKey=app-account")]
    finally:
        server.stop(0)
