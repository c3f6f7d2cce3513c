"""Logging: loguru everywhere, with the stdlib (and so pykka's) loggers routed into it.

Never ``enqueue=True`` under gevent: loguru's queue thread would block the hub.
"""

from __future__ import annotations

import inspect
import logging
import sys

from loguru import logger

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}"
)


class _InterceptHandler(logging.Handler):
    """Hands stdlib log records to loguru, keeping the original level and caller."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure(level: str = "INFO") -> None:
    """Send loguru output to stderr at ``level`` and route stdlib logging into loguru."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    logger.remove()
    logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    logging.getLogger("pykka").setLevel(logging.DEBUG if level in ("TRACE", "DEBUG") else 20)
