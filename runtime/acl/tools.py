"""The admin tool's ACL keys, where RocketMQ's mqadmin reads them: ``$ROCKETMQ_HOME/conf/tools.yml``
(``accessKey: ...`` and ``secretKey: ...``). No ROCKETMQ_HOME or no file: no keys (unsigned)."""

from __future__ import annotations

import os
import pathlib

import msgspec

from runtime.acl.signature import SessionCredentials
from runtime.errors import ConfigError


class _ToolsFile(msgspec.Struct, rename="camel"):
    access_key: str | int | None = None
    secret_key: str | int | None = None


def tools_credentials(home: str | None = None) -> SessionCredentials | None:
    """The keys in ``<home>/conf/tools.yml`` (home: $ROCKETMQ_HOME); ConfigError when the file
    is there but wrong."""
    home = home if home is not None else os.environ.get("ROCKETMQ_HOME")
    if not home:
        return None
    path = pathlib.Path(home) / "conf" / "tools.yml"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read it: {exc.strerror}") from None
    try:
        keys = msgspec.yaml.decode(data, type=_ToolsFile) if data.strip() else _ToolsFile()
    except Exception as exc:  # msgspec's and the YAML parser's errors alike
        raise ConfigError(str(path), None, f"not a tools.yml: {exc}") from None
    for key, value in (("accessKey", keys.access_key), ("secretKey", keys.secret_key)):
        if value is None or not str(value):
            raise ConfigError(str(path), key, "missing")
    return SessionCredentials(str(keys.access_key), str(keys.secret_key))
