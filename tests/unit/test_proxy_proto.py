"""actors/proxy/proto.py: messaging.proto parsed into protobuf classes and IntEnums."""

from __future__ import annotations

import enum

import pytest

from actors.proxy.proto import (
    ClientType,
    Code,
    DigestType,
    Encoding,
    M,
    MessageType,
    ProtoSchemaError,
    _Parser,
)


def test_enums_are_int_enums_with_the_schemas_values() -> None:
    assert issubclass(Code, enum.IntEnum)
    assert Code.OK == 20000
    assert Code.BAD_REQUEST == 40000
    assert Code.INVALID_RECEIPT_HANDLE == 40013
    assert ClientType.PRODUCER == 1
    assert ClientType.SIMPLE_CONSUMER == 3
    assert MessageType.FIFO == 2
    assert MessageType.DELAY == 3
    assert Encoding.GZIP == 2
    assert DigestType.CRC32 == 1


def test_send_message_request_round_trips_with_its_user_properties_map() -> None:
    request = M.SendMessageRequest()
    msg = request.messages.add()
    msg.topic.resource_namespace = "ns"
    msg.topic.name = "T"
    msg.user_properties["color"] = "red"
    msg.user_properties["size"] = "XL"
    msg.system_properties.tag = "TagA"
    msg.system_properties.keys.extend(["k1", "k2"])
    msg.system_properties.message_id = "01ABCDEF"
    msg.system_properties.body_encoding = Encoding.GZIP
    msg.body = b"\x00\x01payload\xff"

    decoded = M.SendMessageRequest.FromString(request.SerializeToString())

    assert decoded == request
    got = decoded.messages[0]
    assert dict(got.user_properties) == {"color": "red", "size": "XL"}
    assert got.topic.resource_namespace == "ns"
    assert got.topic.name == "T"
    assert got.system_properties.tag == "TagA"
    assert list(got.system_properties.keys) == ["k1", "k2"]
    assert got.system_properties.body_encoding == Encoding.GZIP
    assert got.body == b"\x00\x01payload\xff"


def test_proto3_optional_fields_keep_presence_across_the_wire() -> None:
    props = M.SystemProperties()
    assert not props.HasField("tag")
    assert not props.HasField("delivery_attempt")
    assert not props.HasField("delivery_timestamp")
    props.tag = ""  # an explicitly empty optional string is still present
    props.delivery_attempt = 0
    props.queue_id = 0  # a plain proto3 scalar: no presence

    decoded = M.SystemProperties.FromString(props.SerializeToString())

    assert decoded.HasField("tag")
    assert decoded.tag == ""
    assert decoded.HasField("delivery_attempt")
    assert not decoded.HasField("delivery_timestamp")
    with pytest.raises(ValueError):
        decoded.HasField("queue_id")
    decoded.ClearField("tag")
    assert not decoded.HasField("tag")


def test_optional_message_fields_in_settings_have_presence() -> None:
    settings = M.Settings()
    assert not settings.HasField("client_type")
    assert not settings.HasField("request_timeout")
    settings.client_type = ClientType.CLIENT_TYPE_UNSPECIFIED
    settings.request_timeout.seconds = 0  # touching a sub-message sets it

    decoded = M.Settings.FromString(settings.SerializeToString())

    assert decoded.HasField("client_type")
    assert decoded.HasField("request_timeout")


def test_receive_message_response_content_oneof_holds_one_member() -> None:
    response = M.ReceiveMessageResponse()
    assert response.WhichOneof("content") is None
    response.status.code = Code.MESSAGE_NOT_FOUND
    assert response.WhichOneof("content") == "status"
    response.message.topic.name = "T"
    assert response.WhichOneof("content") == "message"
    assert not response.HasField("status")

    decoded = M.ReceiveMessageResponse.FromString(response.SerializeToString())

    assert decoded.WhichOneof("content") == "message"
    assert decoded.message.topic.name == "T"
    decoded.delivery_timestamp.seconds = 1700000000
    assert decoded.WhichOneof("content") == "delivery_timestamp"
    assert not decoded.HasField("message")


def test_telemetry_command_command_oneof_and_optional_status() -> None:
    command = M.TelemetryCommand()
    command.settings.client_type = ClientType.PRODUCER
    command.settings.publishing.topics.add(name="T")

    decoded = M.TelemetryCommand.FromString(command.SerializeToString())

    assert decoded.WhichOneof("command") == "settings"
    assert not decoded.HasField("status")
    assert decoded.settings.client_type == ClientType.PRODUCER
    assert [t.name for t in decoded.settings.publishing.topics] == ["T"]
    assert decoded.settings.WhichOneof("pub_sub") == "publishing"
    decoded.verify_message_result.nonce = "n1"
    assert decoded.WhichOneof("command") == "verify_message_result"
    assert not decoded.HasField("settings")


def test_resource_wire_bytes() -> None:
    # field 1 (LEN: 1<<3|2 = 0x0a) "ns", field 2 (LEN: 2<<3|2 = 0x12) "T"
    resource = M.Resource(resource_namespace="ns", name="T")
    expected = b"\x0a\x02ns" + b"\x12\x01T"
    assert resource.SerializeToString() == expected
    assert M.Resource.FromString(expected) == resource


def test_send_result_entry_wire_bytes() -> None:
    entry = M.SendResultEntry(message_id="id", offset=300)
    entry.status.code = Code.OK
    entry.status.message = "OK"
    # Status: field 1 varint (0x08) 20000 = 0b1_0011100_0100000 -> a0 9c 01;
    #         field 2 LEN (0x12) "OK"
    status = b"\x08\xa0\x9c\x01" + b"\x12\x02OK"
    # SendResultEntry: field 1 LEN (0x0a) status, field 2 LEN (0x12) "id",
    #                  field 4 varint (4<<3|0 = 0x20) 300 = 0b10_0101100 -> ac 02
    expected = b"\x0a" + bytes([len(status)]) + status + b"\x12\x02id" + b"\x20\xac\x02"
    assert entry.SerializeToString() == expected
    assert M.SendResultEntry.FromString(expected) == entry


def test_optional_zero_map_and_float_wire_bytes() -> None:
    # delivery_attempt is field 16, optional: tag 16<<3|0 = 128 -> varint 80 01; value 0
    assert M.SystemProperties(delivery_attempt=0).SerializeToString() == b"\x80\x01\x00"
    # queue_id (field 13) is not optional: a zero is not written
    assert M.SystemProperties(queue_id=0).SerializeToString() == b""
    # a map<string, string> entry is a nested message {1: key, 2: value} in field 2 (LEN)
    msg = M.Message(user_properties={"a": "b"})
    assert msg.SerializeToString() == b"\x12\x06" + b"\x0a\x01a" + b"\x12\x01b"
    # float is fixed32 (wire type 5): field 3 -> 3<<3|5 = 0x1d, 2.0f little-endian
    backoff = M.ExponentialBackoff(multiplier=2.0)
    assert backoff.SerializeToString() == b"\x1d\x00\x00\x00\x40"


def test_parser_builds_a_small_schema() -> None:
    text = (
        'syntax = "proto3";\npackage x.y;\n'
        "enum Color { RED = 0; BLUE = 1; }\n"
        "message Box {\n"
        "  optional string label = 1;\n"
        "  repeated Color colors = 2; // a comment\n"
        "  map<string, string> extra_info = 3;\n"
        "  oneof what { int64 n = 4; Box inner = 5; }\n"
        "}\n"
    )
    file_proto = _Parser(text).parse()
    assert [e.name for e in file_proto.enum_type] == ["Color"]
    box = file_proto.message_type[0]
    fields = {f.name: f for f in box.field}
    assert fields["label"].proto3_optional
    assert fields["colors"].type_name == ".apache.rocketmq.v2.Color"
    assert fields["extra_info"].type_name == ".apache.rocketmq.v2.Box.ExtraInfoEntry"
    assert box.nested_type[0].options.map_entry
    # the real oneof first, then one synthetic oneof per proto3 optional field
    assert [o.name for o in box.oneof_decl] == ["what", "_label"]
    assert fields["n"].oneof_index == 0
    assert fields["inner"].oneof_index == 0
    assert fields["label"].oneof_index == 1


def test_schema_error_names_the_line_of_a_missing_equals() -> None:
    text = 'syntax = "proto3";\nmessage A {\n  string name = 1;\n  int32 id 2;\n}\n'
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:4: expected '=', got '2'"):
        _Parser(text).parse()


def test_schema_error_names_the_line_of_an_unreadable_character() -> None:
    text = "message A {\n  string name = 1;\n}\nenum B { X = 0; @ }\n"
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:4: cannot read ' ?@ }'"):
        _Parser(text).parse()


def test_schema_error_names_the_line_of_a_missing_semicolon_in_an_enum() -> None:
    text = "enum E {\n  A = 0\n  B = 1;\n}\n"
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:3: expected ';', got 'B'"):
        _Parser(text).parse()


def test_schema_error_names_the_line_of_an_unexpected_top_level_keyword() -> None:
    text = 'syntax = "proto3";\n\nservice S {\n}\n'
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:3:"):
        _Parser(text).parse()


def test_schema_error_names_a_field_of_an_unknown_type_and_its_line() -> None:
    text = "message A {\n  string ok = 1;\n  strng bad = 2;\n}\n"
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:3: field 'bad': unknown type"):
        _Parser(text).parse()


def test_schema_error_names_a_field_number_that_is_no_number() -> None:
    with pytest.raises(ProtoSchemaError, match=r"messaging\.proto:2: expected a number"):
        _Parser("message A {\n  string s = x;\n}\n").parse()
