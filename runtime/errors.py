"""The error root of actormq.

Expected outcomes (a full disk, a missing topic, a slow fsync) are status enums, not exceptions.
Exceptions mean a bug, corruption, bad input that cannot be answered, or a misconfiguration; each
class carries the data needed to say exactly what went wrong.
"""

from __future__ import annotations


class ActorMQError(Exception):
    """Root of every error actormq raises on purpose."""


class ConfigError(ActorMQError):
    """A configuration mistake: names the file, the key and the problem."""

    def __init__(self, file: str | None, key: str | None, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = file or "<config>"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {problem}")


class AddressError(ActorMQError):
    """A ``host:port`` or IP address that cannot be parsed (``runtime.hostport``); callers turn
    it into their own error type (ConfigError, ClientError, ProtocolError)."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem
        super().__init__(f"{text!r} {problem}")


class ProtocolError(ActorMQError):
    """Bytes on the wire that cannot be decoded. The only exception a decoder raises.

    ``fatal`` is True when the stream can no longer be framed (the connection must close);
    ``opaque`` is set when the frame was readable enough to address an error reply.
    """

    def __init__(self, reason: str, *, fatal: bool = True, opaque: int | None = None) -> None:
        self.reason = reason
        self.fatal = fatal
        self.opaque = opaque
        super().__init__(reason)


class StoreError(ActorMQError):
    """The store cannot go on: corruption that recovery cannot repair, a failed fsync, a lock held
    by another process. ``path`` names the file involved."""

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class ActorFailure(ActorMQError):
    """An actor stopped abnormally; carries its name and the reason (used by supervisors)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")
