"""One in-process broker (no name server) for tests that drive its request handlers over the
wire, and a watch on the log for tracebacks: a client's mistake must be answered, not logged as
a failure."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator
from typing import Any

from loguru import logger

from tests.actors.ha_support import broker_config, label, start_broker, stop_node
from tests.wire import WireClient


@contextlib.contextmanager
def lone_broker(data: pathlib.Path, **cfg: Any) -> Iterator[WireClient]:
    """A master broker ``broker-t`` serving on an ephemeral port (``cfg``: BrokerConfig
    overrides), and a client connected to it."""
    node = start_broker(broker_config("broker-t", 0, "ASYNC_MASTER", "", **cfg), data)
    client = WireClient(node.addresses[label(node)])
    try:
        yield client
    finally:
        client.close()
        stop_node(node)


@contextlib.contextmanager
def no_errors_logged() -> Iterator[list[str]]:
    """Collects the ERROR lines logged meanwhile (a handler's traceback is one); the caller
    asserts the list is empty."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="ERROR")
    try:
        yield seen
    finally:
        logger.remove(sink)
