"""Cluster profiles for integration tests: one name server and one master (``broker-a``, id 0)
for ``python -m runtime cluster --profile FILE --ephemeral-ports``, with the keys a test sets
away from their defaults."""

from __future__ import annotations


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_broker(
    broker: dict[str, object] | None = None,
    *,
    namesrv: dict[str, object] | None = None,
    description: str = "",
) -> str:
    """The profile text: ``namesrv`` keys on the name server, ``broker`` keys on the master."""
    lines = [f"description = {_toml(description)}"] if description else []
    lines += ["[[namesrv]]", "listenPort = 9876"]
    lines += [f"{k} = {_toml(v)}" for k, v in (namesrv or {}).items()]
    lines += [
        "[[broker]]",
        'brokerName = "broker-a"',
        "brokerId = 0",
        "listenPort = 10911",
        "haListenPort = 10912",
    ]
    lines += [f"{k} = {_toml(v)}" for k, v in (broker or {}).items()]
    return "\n".join(lines) + "\n"
