"""stdlib and pykka logging end up in loguru, attributed to the module that logged."""

from __future__ import annotations

import logging

import pytest
from loguru import logger

from runtime import logs


def test_stdlib_records_reach_loguru_with_level_and_caller() -> None:
    logs.configure("DEBUG")
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m), format="{level} {name} {message}")
    try:
        logging.getLogger("pykka").warning("from pykka %s", 42)
    finally:
        logger.remove(sink)
    assert seen == [f"WARNING {__name__} from pykka 42\n"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        logs.configure("LOUD")
