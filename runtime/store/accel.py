"""The optional C accelerators (``runtime.store._fastlog``, ``runtime.store._fsyncer``), loaded
for the store modules.

``fastlog()`` is the encoder module, or None when it is not built, is a stale build (its
``API_VERSION`` is not ``API``), or ``ACTORMQ_PURE_PYTHON=1`` asks for the pure-Python paths;
``native(name, api)`` is the same rule for any of them. Every caller keeps a Python fallback
that is also the reference its tests compare against.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

API = 2
"""The ``_fastlog`` interface this code calls (functions added later are looked up by name)."""


@functools.cache
def fastlog() -> ModuleType | None:
    return native("_fastlog", API)


def native(name: str, api: int) -> ModuleType | None:
    """``runtime.store.<name>`` when built with interface ``api`` and not switched off."""
    if os.environ.get("ACTORMQ_PURE_PYTHON") == "1":
        return None
    try:
        module = importlib.import_module(f"runtime.store.{name}")
    except ImportError:
        return None
    return module if getattr(module, "API_VERSION", None) == api else None
