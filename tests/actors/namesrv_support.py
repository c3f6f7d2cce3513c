"""A name server of its own for the name-server tests that talk to one over a real socket, and
a watch on the log (the ``lone_namesrv`` and ``warnings`` fixtures of ``conftest`` use them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from loguru import logger

from actors.namesrv.node import namesrv_spec
from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import bind


@contextlib.contextmanager
def running_namesrv(cfg: NamesrvConfig | None = None) -> Iterator[tuple[str, Directory]]:
    """A name server ``ns`` (``cfg``, by default NamesrvConfig()) on an ephemeral port: its
    ``host:port`` and the directory of its actors (``ns/routes``...)."""
    directory = Directory()
    sock = bind("127.0.0.1", 0, what="namesrv")
    sup = namesrv_spec("ns", cfg or NamesrvConfig(), sock, directory).start()
    try:
        yield "{}:{}".format(*sock.getsockname()), directory
    finally:
        sup.stop(timeout=5)
        sock.close()


@contextlib.contextmanager
def logged(level: str) -> Iterator[list[str]]:
    """The log lines of ``level`` and above written meanwhile, as formatted."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level=level)
    try:
        yield seen
    finally:
        logger.remove(sink)
