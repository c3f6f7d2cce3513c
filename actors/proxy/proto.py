"""RocketMQ 5's gRPC messages as protobuf classes, built at import from ``messaging.proto``.

The file is a subset of proto3 (enums, messages, ``optional``, ``repeated``, ``oneof``,
``map<string, string>``); this module parses it into a ``FileDescriptorProto`` in a private
descriptor pool and asks protobuf for the message classes, so there is no protoc step and no
generated code. ``M.SendMessageRequest`` etc. are the classes; ``Code`` and the other enums
are ``enum.IntEnum``s of the same values.

A malformed ``messaging.proto`` is a bug in this repository: ``ProtoSchemaError`` names the
line.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "apache.rocketmq.v2"
SCHEMA = Path(__file__).with_name("messaging.proto")

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "float": _F.TYPE_FLOAT,
}
_TOKEN = re.compile(r"\s*(map<\s*string\s*,\s*string\s*>|[A-Za-z_][\w.]*|-?\d+|\"[^\"]*\"|[{};=])")


class ProtoSchemaError(Exception):
    """``messaging.proto`` does not parse (a bug here, not bad input from a peer)."""


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("//", 1)[0]
        pos = 0
        while pos < len(line):
            if line[pos:].strip() == "":
                break
            match = _TOKEN.match(line, pos)
            if match is None:
                raise ProtoSchemaError(f"{SCHEMA.name}:{lineno}: cannot read {line[pos:]!r}")
            out.append((match.group(1), lineno))
            pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.file = descriptor_pb2.FileDescriptorProto(
            name="actormq/rocketmq_v2.proto", package=PACKAGE, syntax="proto3"
        )
        self.enums = self._declared("enum")
        self.messages = self._declared("message")

    def _declared(self, keyword: str) -> set[str]:
        tokens = self.tokens
        return {tokens[i + 1][0] for i in range(len(tokens) - 1) if tokens[i][0] == keyword}

    def fail(self, problem: str) -> ProtoSchemaError:
        """An error naming the line of the token just taken."""
        lineno = self.tokens[max(self.pos - 1, 0)][1] if self.tokens else 0
        return ProtoSchemaError(f"{SCHEMA.name}:{lineno}: {problem}")

    def number(self) -> int:
        token = self.take()
        try:
            return int(token)
        except ValueError:
            raise self.fail(f"expected a number, got {token!r}") from None

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.tokens):
            raise ProtoSchemaError(f"{SCHEMA.name}: ends early (expected {expected or 'more'})")
        token, lineno = self.tokens[self.pos]
        if expected is not None and token != expected:
            raise ProtoSchemaError(f"{SCHEMA.name}:{lineno}: expected {expected!r}, got {token!r}")
        self.pos += 1
        return token

    def peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""

    def parse(self) -> descriptor_pb2.FileDescriptorProto:
        while self.pos < len(self.tokens):
            keyword = self.take()
            if keyword in ("syntax", "package"):  # the package is PACKAGE
                while self.take() != ";":
                    pass
            elif keyword == "enum":
                self.file.enum_type.append(self.enum())
            elif keyword == "message":
                self.file.message_type.append(self.message())
            else:
                raise self.fail(f"unexpected {keyword!r}")
        return self.file

    def enum(self) -> descriptor_pb2.EnumDescriptorProto:
        out = descriptor_pb2.EnumDescriptorProto(name=self.take())
        self.take("{")
        while self.peek() != "}":
            value = self.take()
            self.take("=")
            out.value.add(name=value, number=self.number())
            self.take(";")
        self.take("}")
        return out

    def message(self) -> descriptor_pb2.DescriptorProto:
        out = descriptor_pb2.DescriptorProto(name=self.take())
        self.take("{")
        synthetic: list[descriptor_pb2.FieldDescriptorProto] = []
        while self.peek() != "}":
            if self.peek() == "oneof":
                self.take()
                index = len(out.oneof_decl)
                out.oneof_decl.add(name=self.take())
                self.take("{")
                while self.peek() != "}":
                    self.field(out).oneof_index = index
                self.take("}")
            else:
                field = self.field(out)
                if field.proto3_optional:
                    synthetic.append(field)
        for field in synthetic:  # proto3 optional: one synthetic oneof each, after the real ones
            field.oneof_index = len(out.oneof_decl)
            out.oneof_decl.add(name=f"_{field.name}")
        self.take("}")
        return out

    def field(self, owner: descriptor_pb2.DescriptorProto) -> descriptor_pb2.FieldDescriptorProto:
        label = _F.LABEL_OPTIONAL
        optional = False
        type_name = self.take()
        if type_name in ("repeated", "optional"):
            label = _F.LABEL_REPEATED if type_name == "repeated" else label
            optional = type_name == "optional"
            type_name = self.take()
        name = self.take()
        self.take("=")
        number = self.number()
        self.take(";")
        field = owner.field.add(name=name, number=number, label=label)
        if optional:
            field.proto3_optional = True
        if type_name.startswith("map<"):
            entry = "".join(part.capitalize() for part in name.split("_")) + "Entry"
            nested = owner.nested_type.add(name=entry)
            nested.options.map_entry = True
            nested.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
            nested.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
            field.label = _F.LABEL_REPEATED
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{PACKAGE}.{owner.name}.{entry}"
        elif type_name in _SCALARS:
            field.type = _SCALARS[type_name]
        elif type_name in self.enums or type_name in self.messages:
            field.type = _F.TYPE_ENUM if type_name in self.enums else _F.TYPE_MESSAGE
            field.type_name = f".{PACKAGE}.{type_name}"
        else:
            raise self.fail(f"field {name!r}: unknown type {type_name!r}")
        return field


def _build() -> tuple[SimpleNamespace, dict[str, type[enum.IntEnum]]]:
    file_proto = _Parser(SCHEMA.read_text(encoding="utf-8")).parse()
    pool = descriptor_pool.DescriptorPool()
    descriptor = pool.Add(file_proto)
    del descriptor  # the pool keeps it; classes are looked up by name below
    classes: dict[str, Any] = {}
    for message in file_proto.message_type:
        found = pool.FindMessageTypeByName(f"{PACKAGE}.{message.name}")
        classes[message.name] = message_factory.GetMessageClass(found)
    enums: dict[str, type[enum.IntEnum]] = {}
    for enum_proto in file_proto.enum_type:
        members = {value.name: value.number for value in enum_proto.value}
        enums[enum_proto.name] = enum.IntEnum(enum_proto.name, members)  # type: ignore[misc]
    return SimpleNamespace(**classes), enums


M, _ENUMS = _build()
Code: Any = _ENUMS["Code"]
ClientType: Any = _ENUMS["ClientType"]
MessageType: Any = _ENUMS["MessageType"]
Permission: Any = _ENUMS["Permission"]
FilterType: Any = _ENUMS["FilterType"]
AddressScheme: Any = _ENUMS["AddressScheme"]
DigestType: Any = _ENUMS["DigestType"]
Encoding: Any = _ENUMS["Encoding"]
TransactionResolution: Any = _ENUMS["TransactionResolution"]
Language: Any = _ENUMS["Language"]
LiteSubscriptionAction: Any = _ENUMS["LiteSubscriptionAction"]
OffsetPolicy: Any = _ENUMS["OffsetPolicy"]
