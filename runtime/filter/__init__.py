"""Message filters: RocketMQ's SQL92 property filter (``expressionType`` SQL92)."""

from runtime.filter.errors import FilterError
from runtime.filter.sql92 import (
    MAX_DEPTH,
    MAX_LENGTH,
    Predicate,
    compile_cached,
    compile_expression,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "FilterError",
    "Predicate",
    "compile_cached",
    "compile_expression",
]
