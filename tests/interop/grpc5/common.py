"""Shared by the gRPC client's scripts: JSON output lines, the client configuration, and a
stop on SIGTERM. Runs under .interop/grpc5's interpreter (RocketMQ 5's Python client)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from rocketmq import ClientConfiguration, Credentials

stopping = threading.Event()


_emitting = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One JSON line; whole under a lock (the push consumer's callbacks run on two threads, and
    print writes a line's text and its newline apart: CI once read two events on one line)."""
    line = json.dumps({"event": event, **fields}) + "\n"
    with _emitting:
        sys.stdout.write(line)
        sys.stdout.flush()


def configuration(endpoint: str) -> ClientConfiguration:
    return ClientConfiguration(endpoint, Credentials(), request_timeout=3)


def tls() -> bool:
    """``ACTORMQ_TLS=1``: connect over TLS (``tls_enable``), trusting the certificate in the
    file ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` names (grpc reads that variable itself)."""
    return os.environ.get("ACTORMQ_TLS") == "1"


def on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())


def fail(exc: BaseException) -> None:
    emit("error", error=f"{type(exc).__name__}: {exc}")
    sys.exit(1)


def describe(msg: Any) -> dict[str, Any]:
    """What a received message carries, as JSON."""
    return {
        "message_id": msg.message_id,
        "topic": msg.topic,
        "body": msg.body.decode(errors="replace"),
        "tag": msg.tag,
        "keys": sorted(msg.keys or ()),
        "properties": dict(msg.properties or {}),
        "message_group": msg.message_group,
        "attempt": msg.delivery_attempt,
        "corrupted": bool(getattr(msg, "corrupted", False)),
        "priority": msg.priority,
        "at_ms": int(time.time() * 1000),
    }
