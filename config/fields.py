"""Field introspection for the config structs: key names, base types, defaults, bounds."""

from __future__ import annotations

import difflib
import enum
import functools
import typing
from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass(frozen=True)
class FieldSpec:
    """One config field: Python attribute, file key, base type, default and numeric bounds."""

    attr: str
    key: str
    type: Any
    default: Any
    ge: int | None = None
    le: int | None = None
    gt: int | None = None
    kind: str | None = None

    @property
    def is_enum(self) -> bool:
        return isinstance(self.type, type) and issubclass(self.type, enum.Enum)


def _spec(info: msgspec.structs.FieldInfo, hint: Any) -> FieldSpec:
    base = hint
    metas: tuple[Any, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        base, *rest = typing.get_args(hint)
        metas = tuple(m for m in rest if isinstance(m, msgspec.Meta))
    bounds: dict[str, Any] = {}
    for meta in metas:
        for name in ("ge", "le", "gt"):
            if getattr(meta, name) is not None:
                bounds[name] = getattr(meta, name)
        if meta.extra and "kind" in meta.extra:
            bounds["kind"] = meta.extra["kind"]
    default = info.default
    if default is msgspec.NODEFAULT and info.default_factory is not msgspec.NODEFAULT:
        default = info.default_factory()
    return FieldSpec(attr=info.name, key=info.encode_name, type=base, default=default, **bounds)


@functools.cache
def field_specs(cls: type[msgspec.Struct]) -> dict[str, FieldSpec]:
    """The fields of ``cls`` keyed by their file key (camelCase), in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {info.encode_name: _spec(info, hints[info.name]) for info in msgspec.structs.fields(cls)}


@functools.cache
def specs_by_attr(cls: type[msgspec.Struct]) -> dict[str, FieldSpec]:
    """The fields of ``cls`` keyed by their Python attribute name."""
    return {spec.attr: spec for spec in field_specs(cls).values()}


def key_of(cls: type[msgspec.Struct], attr: str) -> str:
    """The file key of attribute ``attr``."""
    return specs_by_attr(cls)[attr].key


def _squash(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


KEY_HINT_CUTOFF = 0.8
"""How alike (difflib ratio) an unknown key and a known one must be to suggest it: at 0.6
``flushCommitLogLeastPages`` suggested flushCommitLogTimed and ``enableLmq`` aclEnable."""


def closest(
    word: str, choices: typing.Iterable[str], *, fuzzy: bool = True, cutoff: float = 0.6
) -> str | None:
    """The choice ``word`` most likely meant: same letters ignoring case and ``_``, or difflib
    (at least ``cutoff`` alike)."""
    by_squash = {_squash(c): c for c in choices}
    if _squash(word) in by_squash:
        return by_squash[_squash(word)]
    if not fuzzy:
        return None
    match = difflib.get_close_matches(_squash(word), list(by_squash), n=1, cutoff=cutoff)
    return by_squash[match[0]] if match else None


def unknown_key_problem(key: str, choices: typing.Iterable[str], noun: str = "key") -> str:
    """The problem text for an unknown key, with a suggestion when one is close."""
    hint = closest(key, choices, cutoff=KEY_HINT_CUTOFF)
    return f"unknown {noun}; did you mean {hint}?" if hint else f"unknown {noun}"
