"""Turn raw values into typed field values: text from .properties, typed values from TOML."""

from __future__ import annotations

import enum
import os
import re
from typing import Any

from config.fields import FieldSpec, closest

_INT = re.compile(r"[+-]?\d+")
_TYPE_NAMES = {bool: "a boolean", int: "an integer", str: "a string", float: "a float"}


def _enum_problem(spec: FieldSpec, value: object) -> str:
    names = [m.name for m in spec.type]
    problem = f"{value!r} is not one of {', '.join(names)}"
    hint = closest(str(value), names, fuzzy=False)
    return f"{problem}; did you mean {hint}?" if hint else problem


def _enum_member(spec: FieldSpec, name: str) -> enum.Enum:
    try:
        return spec.type[name]
    except KeyError:
        raise ValueError(_enum_problem(spec, name)) from None


def from_text(spec: FieldSpec, text: str) -> Any:
    """A .properties value (already unescaped and trimmed) as the field's type."""
    if spec.is_enum:
        return _enum_member(spec, text)
    if spec.type is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return text.lower() == "true"
    if spec.type is int:
        if not _INT.fullmatch(text):
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    return text


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def from_typed(spec: FieldSpec, value: object) -> Any:
    """A TOML value or a Python override as the field's type (no string-to-number guessing).

    Enums accept a member or its name; string fields accept ``os.PathLike`` (made ``str``).
    """
    if spec.is_enum:
        if isinstance(value, spec.type):
            return value
        if isinstance(value, str):
            return _enum_member(spec, value)
    elif spec.type is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    elif type(value) is spec.type:
        return value
    wanted = "one of " + ", ".join(m.name for m in spec.type) if spec.is_enum else None
    wanted = wanted or _TYPE_NAMES.get(spec.type, spec.type.__name__)
    raise ValueError(f"expected {wanted}, got {_type_name(value)} ({value!r})")


def to_text(value: object) -> str:
    """A field value as .properties text (inverse of from_text)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
