"""The optional C accelerator (``runtime.store._fastlog``), loaded once for the store modules.

``fastlog()`` is the module, or None when it is not built, is a stale build (its
``API_VERSION`` is not ``API``), or ``ACTORMQ_PURE_PYTHON=1`` asks for the pure-Python paths.
Every caller keeps a Python fallback that is also the reference its tests compare against.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType

API = 1
"""The ``_fastlog`` interface this code calls (functions added later are looked up by name)."""


@functools.cache
def fastlog() -> ModuleType | None:
    if os.environ.get("ACTORMQ_PURE_PYTHON") == "1":
        return None
    try:
        from runtime.store import _fastlog
    except ImportError:
        return None
    return _fastlog if getattr(_fastlog, "API_VERSION", None) == API else None
