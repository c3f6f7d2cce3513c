"""Shared bits of the examples: the name-server flag and logging kept quiet."""

from __future__ import annotations

import argparse
import os
import sys

from loguru import logger


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--namesrv",
        default=os.environ.get("NAMESRV_ADDR", "127.0.0.1:9876"),
        help="name server host:port (default: $NAMESRV_ADDR or 127.0.0.1:9876)",
    )
    p.add_argument("--topic", default="ExampleTopic")
    p.add_argument("--count", type=int, default=10, help="how many messages")
    p.add_argument("--log-level", default="WARNING")
    return p


def setup_logging(level: str) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level.upper())
