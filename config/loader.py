"""Load broker and name-server configs (.properties/.conf or .toml) and cluster profiles."""

from __future__ import annotations

import importlib.resources
import os
import pathlib
import tomllib
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

import msgspec
from loguru import logger

from config.coerce import from_text, from_typed, to_text
from config.fields import closest, field_specs, specs_by_attr, unknown_key_problem
from config.properties import PropertiesSyntaxError, format_properties, parse_properties
from config.rocketmq_keys import BROKER_FILE_KEYS, NAMESRV_FILE_KEYS
from config.schema import (
    HA_PORT_FROM_LISTEN_PORT,
    MASKED,
    SECRET_FIELDS,
    BrokerConfig,
    ClusterProfile,
    NamesrvConfig,
    derived_ha_listen_port,
)
from runtime.errors import ConfigError

C = TypeVar("C", NamesrvConfig, BrokerConfig)
StrPath = str | os.PathLike[str]

PROPERTIES_SUFFIXES = (".properties", ".conf")
TOML_SUFFIXES = (".toml",)
PROFILE_RUNTIME_KEYS: Mapping[str, str] = {
    "namesrvAddr": "the runtime points profile brokers at the profile's [[namesrv]] servers",
    "haMasterAddress": "the runtime points a profile slave at its group's master",
    "controllerAddr": "the runtime points profile brokers at the profile's first name server",
    "storePathRootDir": "the runtime puts each broker under <data-dir>/<brokerName>-<brokerId>",
    "storePathCommitLog": "the runtime puts each broker under <data-dir>/<brokerName>-<brokerId>",
}
"""Broker keys a profile must leave out, and why."""


def _rocketmq_keys(cls: type[C]) -> frozenset[str]:
    """The keys RocketMQ's own broker (name server) reads from its file."""
    return BROKER_FILE_KEYS if cls is BrokerConfig else NAMESRV_FILE_KEYS


def _unknown(cls: type[C], key: str, specs: Mapping[str, Any], ignored: list[str]) -> str | None:
    """None for a RocketMQ key actormq does not implement (noted in ``ignored``: RocketMQ too
    ignores keys it has no field for), else the problem of a key neither knows."""
    rocketmq = _rocketmq_keys(cls)
    if key in rocketmq:
        if key not in ignored:
            ignored.append(key)
        return None
    return unknown_key_problem(key, [*specs, *sorted(rocketmq)])


def _warn_ignored(file: str, ignored: list[str]) -> None:
    if ignored:
        keys = ", ".join(ignored)
        logger.warning("{}: ignored RocketMQ keys that actormq does not implement: {}", file, keys)


def _read_text(file: str, path: pathlib.Path | Traversable) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, None, "no such file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            file, None, f"not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    except OSError as err:
        raise ConfigError(file, None, f"cannot read: {err.strerror or err}") from None


def _build(cls: type[C], values: dict[str, Any], file: str, lines: Mapping[str, int]) -> C:
    """``cls(**values)``; a validation error gets the file and the line of its key."""
    try:
        return cls(**values)
    except ConfigError as err:
        line = lines.get(err.key or "")
        raise ConfigError(f"{file}:{line}" if line else file, err.key, err.problem) from None


def _from_properties(cls: type[C], text: str, file: str, ignored: list[str]) -> C:
    try:
        entries = parse_properties(text)
    except PropertiesSyntaxError as err:
        raise ConfigError(f"{file}:{err.line}", None, err.problem) from None
    specs = field_specs(cls)
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for entry in entries:
        where = f"{file}:{entry.line}"
        spec = specs.get(entry.key)
        if spec is None:
            problem = _unknown(cls, entry.key, specs, ignored)
            if problem is None:
                continue
            raise ConfigError(where, entry.key, problem)
        if spec.key in lines:
            problem = f"set twice (first on line {lines[spec.key]})"
            raise ConfigError(where, entry.key, problem)
        try:
            values[spec.attr] = from_text(spec, entry.value)
        except ValueError as err:
            raise ConfigError(where, entry.key, str(err)) from None
        lines[spec.key] = entry.line
    return _build(cls, values, file, lines)


def _from_table(
    cls: type[C], table: Mapping[str, Any], file: str, ignored: list[str], prefix: str = ""
) -> C:
    specs = field_specs(cls)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        spec = specs.get(key)
        if spec is None:
            problem = _unknown(cls, key, specs, ignored)
            if problem is None:
                continue
            raise ConfigError(file, prefix + key, problem)
        try:
            values[spec.attr] = from_typed(spec, raw)
        except ValueError as err:
            raise ConfigError(file, prefix + key, str(err)) from None
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(file, prefix + (err.key or ""), err.problem) from None


def _parse_toml(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(file, None, f"malformed TOML: {err}") from None


def _load(cls: type[C], path: StrPath, table: str) -> C:
    file = os.fspath(path)
    suffix = pathlib.Path(file).suffix.lower()
    if suffix not in PROPERTIES_SUFFIXES + TOML_SUFFIXES:
        known = ", ".join(PROPERTIES_SUFFIXES + TOML_SUFFIXES)
        raise ConfigError(file, None, f"unsupported file type {suffix or '(none)'!r}; use {known}")
    text = _read_text(file, pathlib.Path(file))
    ignored: list[str] = []
    cfg = _from_file_text(cls, text, file, suffix, table, ignored)
    _warn_ignored(file, ignored)
    return cfg


def _from_file_text(
    cls: type[C], text: str, file: str, suffix: str, table: str, ignored: list[str]
) -> C:
    if suffix in PROPERTIES_SUFFIXES:
        return _from_properties(cls, text, file, ignored)
    data = _parse_toml(text, file)
    if table in data and isinstance(data[table], dict):
        others = sorted(set(data) - {table})
        if others:
            problem = f"keys outside the [{table}] table: {', '.join(others)}"
            raise ConfigError(file, others[0], problem)
        return _from_table(cls, data[table], file, ignored, prefix=f"{table}.")
    return _from_table(cls, data, file, ignored)


def load_broker_config(path: StrPath) -> BrokerConfig:
    """A broker config from ``.properties``/``.conf`` (RocketMQ syntax) or ``.toml``.

    In TOML the top-level table is the config, or a single ``[broker]`` table.
    """
    return _load(BrokerConfig, path, "broker")


def load_namesrv_config(path: StrPath) -> NamesrvConfig:
    """A name-server config from ``.properties``/``.conf`` or ``.toml`` (or a ``[namesrv]``)."""
    return _load(NamesrvConfig, path, "namesrv")


def _tables(data: dict[str, Any], key: str, file: str) -> list[dict[str, Any]]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(file, key, f"expected [[{key}]] tables (an array of tables)")
    return tables


def parse_profile(text: str, file: str, default_name: str) -> ClusterProfile:
    """A profile from TOML text; ``file`` names it in errors, ``default_name`` if no ``name``."""
    data = _parse_toml(text, file)
    allowed = ("name", "description", "namesrv", "broker")
    for key in data:
        if key not in allowed:
            raise ConfigError(file, key, unknown_key_problem(key, allowed))
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            raise ConfigError(file, key, f"expected a string, got {data[key]!r}")
    ignored: list[str] = []
    namesrvs = [
        _from_table(NamesrvConfig, t, file, ignored, prefix=f"namesrv[{i}].")
        for i, t in enumerate(_tables(data, "namesrv", file))
    ]
    brokers = []
    for i, table in enumerate(_tables(data, "broker", file)):
        for key, why in PROFILE_RUNTIME_KEYS.items():
            if key in table:
                raise ConfigError(file, f"broker[{i}].{key}", f"not allowed in a profile: {why}")
        brokers.append(_from_table(BrokerConfig, table, file, ignored, prefix=f"broker[{i}]."))
    _warn_ignored(file, ignored)
    try:
        return ClusterProfile(
            name=data.get("name", default_name),
            namesrvs=namesrvs,
            brokers=brokers,
            description=data.get("description", ""),
        )
    except ConfigError as err:
        raise ConfigError(file, err.key, err.problem) from None


def _shipped() -> Traversable:
    return importlib.resources.files("config") / "profiles"


def list_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _shipped().iterdir()
        if entry.name.endswith(".toml")
    )


def load_profile(name_or_path: StrPath) -> ClusterProfile:
    """A shipped profile by name (see list_profiles), or a profile TOML file by path."""
    text_name = os.fspath(name_or_path)
    shipped = list_profiles()
    if isinstance(name_or_path, str) and name_or_path in shipped:
        file = f"config/profiles/{name_or_path}.toml"
        text = _read_text(file, _shipped() / f"{name_or_path}.toml")
        return parse_profile(text, file, name_or_path)
    path = pathlib.Path(text_name)
    if path.suffix.lower() == ".toml" or path.exists() or os.sep in text_name:
        text = _read_text(text_name, path)
        return parse_profile(text, text_name, path.stem)
    hint = closest(text_name, shipped)
    problem = f"unknown profile; shipped profiles are {', '.join(shipped)}"
    problem += f" (did you mean {hint}?)" if hint else ""
    raise ConfigError(text_name, None, problem + "; or give a path to a .toml file")


def with_overrides(cfg: C, **fields: Any) -> C:
    """A copy of ``cfg`` with fields replaced by attribute name, type-checked and validated.

    Enums take a member or its name; string fields take paths. A broker's haListenPort that is
    listenPort + 1 (its default) follows a new listen_port unless ha_listen_port is given too.
    """
    specs = specs_by_attr(type(cfg))
    values: dict[str, Any] = {}
    if _ha_port_follows(cfg, fields):
        values["ha_listen_port"] = HA_PORT_FROM_LISTEN_PORT
    for attr, raw in fields.items():
        spec = specs.get(attr)
        if spec is None:
            raise ConfigError(None, attr, unknown_key_problem(attr, specs, noun="field"))
        try:
            values[attr] = from_typed(spec, raw)
        except ValueError as err:
            raise ConfigError(None, spec.key, str(err)) from None
    return msgspec.structs.replace(cfg, **values)


def _ha_port_follows(cfg: NamesrvConfig | BrokerConfig, fields: Mapping[str, Any]) -> bool:
    return (
        isinstance(cfg, BrokerConfig)
        and "listen_port" in fields
        and "ha_listen_port" not in fields
        and cfg.ha_listen_port == derived_ha_listen_port(cfg.listen_port)
    )


def _default_of(cfg: NamesrvConfig | BrokerConfig, attr: str, default: Any) -> Any:
    """A field's default for ``cfg``: haListenPort's is listenPort + 1."""
    if isinstance(cfg, BrokerConfig) and attr == "ha_listen_port":
        return derived_ha_listen_port(cfg.listen_port)
    return default


def with_data_dir(cfg: BrokerConfig, data_dir: StrPath, *, per_node: bool) -> BrokerConfig:
    """Put the broker's store under ``data_dir`` (``<data_dir>/<brokerName>-<brokerId>`` when
    ``per_node``, as in cluster mode). A store moved elsewhere keeps its commit log there too
    (storePathCommitLog reset to ``<root>/commitlog``); the config's own root (the ``broker``
    command without ``--data-dir``) keeps its storePathCommitLog."""
    root = pathlib.Path(data_dir)
    root = root / cfg.node_name() if per_node else root
    same = root.expanduser().resolve() == cfg.store_root().expanduser().resolve()
    commit_log = cfg.store_path_commit_log if same else ""
    return with_overrides(cfg, store_path_root_dir=str(root), store_path_commit_log=commit_log)


def dump_properties(
    cfg: NamesrvConfig | BrokerConfig,
    *,
    only_changed: bool = False,
    header: str | None = None,
    mask_secrets: bool = False,
) -> str:
    """``cfg`` as RocketMQ .properties text that the loaders read back equal.

    ``only_changed`` writes only the fields that differ from the defaults; ``mask_secrets``
    writes a set secret (``SECRET_FIELDS``) as ``MASKED`` (RocketMQ masks them too), for answers
    to GET_BROKER_CONFIG / GET_NAMESRV_CONFIG.
    """
    items = []
    for key, spec in field_specs(type(cfg)).items():
        value = getattr(cfg, spec.attr)
        if only_changed and value == _default_of(cfg, spec.attr, spec.default):
            continue
        if mask_secrets and spec.attr in SECRET_FIELDS and value:
            items.append((key, MASKED))
            continue
        items.append((key, to_text(value)))
    return format_properties(items, header)
