"""What every C++ client script of the interop tests shares: JSON event lines on stdout (one
writer at a time: the engines call back on their own threads), a deadline that ends the process
with exit 3, and C strings as text. Runs under the client's own virtualenv, like the scripts."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

_print_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def watchdog(seconds: float) -> None:
    """Emit ``deadline`` and exit 3 when the script has not finished after ``seconds``."""

    def expire() -> None:
        time.sleep(seconds)
        emit("deadline", seconds=seconds)
        os._exit(3)

    threading.Thread(target=expire, daemon=True).start()


def text(value: bytes | str | None) -> str | None:
    """A C string (bytes, UTF-8 with replacement) or a str as str; None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
