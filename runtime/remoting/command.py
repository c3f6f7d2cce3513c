"""RemotingCommand: one request or response of the RocketMQ remoting protocol."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping

import msgspec

from runtime.remoting.codes import RemotingFlag

DEFAULT_VERSION = 401
"""``version`` we put on the commands we build (a RocketMQ 4.x client/broker version number)."""

DEFAULT_LANGUAGE = "JAVA"
"""``language`` we put on the commands we build; real brokers answer JAVA and clients accept it."""

_RESPONSE = int(RemotingFlag.RESPONSE)
_ONEWAY = int(RemotingFlag.ONEWAY)
_INT31 = 0x7FFFFFFF

_opaque_counter = itertools.count(1)


def next_opaque() -> int:
    """A fresh request id, in 1..2**31-1 (wraps; never negative, like the C++ client)."""
    return (next(_opaque_counter) & _INT31) or 1


class RemotingCommand(msgspec.Struct, frozen=True, gc=False):
    """One frame's content. ``ext_fields`` values are always strings (the decoder converts JSON
    numbers and booleans; the constructors below convert Python values); ``remark`` None means
    absent. Build with ``request`` / ``response_to`` rather than the raw constructor."""

    code: int
    language: str = DEFAULT_LANGUAGE
    version: int = DEFAULT_VERSION
    opaque: int = 0
    flag: int = 0
    remark: str | None = None
    ext_fields: dict[str, str] = {}
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        """True when flag bit 0 (RPC_TYPE) is set."""
        return bool(self.flag & _RESPONSE)

    @property
    def is_oneway(self) -> bool:
        """True when flag bit 1 (RPC_ONEWAY) is set: the sender expects no reply."""
        return bool(self.flag & _ONEWAY)

    @classmethod
    def request(
        cls,
        code: int,
        ext_fields: Mapping[str, object] | None = None,
        body: bytes = b"",
        oneway: bool = False,
        *,
        opaque: int | None = None,
        remark: str | None = None,
    ) -> RemotingCommand:
        """A request; ``opaque`` defaults to a fresh id. ext values are converted to strings."""
        return cls(
            code=int(code),
            opaque=next_opaque() if opaque is None else opaque,
            flag=_ONEWAY if oneway else 0,
            remark=remark,
            ext_fields=stringify_ext(ext_fields),
            body=body,
        )

    @classmethod
    def response_to(
        cls,
        request: RemotingCommand,
        code: int,
        remark: str | None = None,
        ext_fields: Mapping[str, object] | None = None,
        body: bytes = b"",
    ) -> RemotingCommand:
        """The response to ``request``: same opaque, flag = RESPONSE, ext values as strings."""
        return cls(
            code=int(code),
            opaque=request.opaque,
            flag=_RESPONSE,
            remark=remark,
            ext_fields=stringify_ext(ext_fields),
            body=body,
        )


def ext_value(value: object) -> str | None:
    """One extFields value as the string RocketMQ peers expect (None: leave the key out).

    bool -> "true"/"false"; enum -> its value; int -> decimal; float -> decimal (integral floats
    without ".0"); str unchanged. Anything else is a programming error (TypeError)."""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[return-value]
    if cls is int:  # the common case (offsets, ids); bool and IntEnum are not ``int`` itself
        return str(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return ext_value(value.value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"extFields value of type {type(value).__name__} cannot be sent: {value!r}")


def stringify_ext(ext_fields: Mapping[str, object] | None) -> dict[str, str]:
    """A fresh ``dict[str, str]`` from ``ext_fields`` (None values dropped)."""
    if not ext_fields:
        return {}
    out: dict[str, str] = {}
    for key, value in ext_fields.items():
        text = ext_value(value)
        if text is not None:
            out[str(key)] = text
    return out
