"""Regenerate the remoting seed corpus: ``python tests/unit/corpus/remoting/make_corpus.py``.

Each ``*.bin`` is raw wire bytes shaped like what a real client sends (JSON text written by hand
in each client's style, not by our encoder); ``manifest.json`` says what decoding must give.
The files are checked in; this script only documents how they were made.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

HERE = Path(__file__).parent


def frame(header: bytes, body: bytes = b"", stype: int = 0) -> bytes:
    return (
        struct.pack(">iI", 4 + len(header) + len(body), (stype << 24) | len(header)) + header + body
    )


def batch_entry(flag: int, body: bytes, props: str) -> bytes:
    p = props.encode()
    return (
        struct.pack(">iiiii", 22 + len(body) + len(p), 0, 0, flag, len(body))
        + body
        + struct.pack(">h", len(p))
        + p
    )


def binary_header(
    code: int, lang: int, version: int, opaque: int, flag: int, remark: bytes, ext: dict[str, str]
) -> bytes:
    e = b"".join(
        struct.pack(">h", len(k.encode()))
        + k.encode()
        + struct.pack(">i", len(v.encode()))
        + v.encode()
        for k, v in ext.items()
    )
    return (
        struct.pack(">hBhiii", code, lang, version, opaque, flag, len(remark))
        + remark
        + struct.pack(">i", len(e))
        + e
    )


PROPS = (
    "UNIQ_KEY\x01AC110002303818B4AAC26D6F8F0000\x02WAIT\x01true\x02TAGS\x01TagA\x02"
    "KEYS\x01order-1 order-2\x02"
)
ESC_PROPS = json.dumps(PROPS)[1:-1]  # JSON escapes \u0001 / \u0002 like the clients' writers

CORPUS: dict[str, tuple[bytes, dict]] = {}

# C++ 1.x heartbeat: jsoncpp FastWriter (sorted keys, trailing newline), int enums, no producers.
CORPUS["cpp1_heartbeat.bin"] = (
    frame(
        b'{"code":34,"extFields":{"AccessKey":"","OnsChannel":"","Signature":""},"flag":0,'
        b'"language":"CPP","opaque":3,"remark":"","version":283}\n',
        b'{"clientID":"172.17.0.2@4711","consumerDataSet":[{"consumeFromWhere":4,"consumeType":1,'
        b'"groupName":"GID_cpp","messageModel":1,"subscriptionDataSet":[{"classFilterMode":false,'
        b'"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000123,'
        b'"tagsSet":[],"topic":"%RETRY%GID_cpp"},{"subString":"TagA || TagB",'
        b'"subVersion":1700000000124,"topic":"TopicTest"}]}]}\n',
    ),
    {
        "code": 34,
        "opaque": 3,
        "language": "CPP",
        "flag": 0,
        "remark": "",
        "body": "HeartbeatData",
        "heartbeat": {
            "clientID": "172.17.0.2@4711",
            "consumeType": "CONSUME_PASSIVELY",
            "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
            "tags": [[], ["TagA", "TagB"]],
            "codes": [[], [2598919, 2598920]],
        },
    },
)

# ali-ons heartbeat: JSON.stringify order, no remark key, version 121, named enums.
CORPUS["alions_heartbeat.bin"] = (
    frame(
        b'{"code":34,"language":"JAVA","opaque":12,"flag":0,"version":121,"extFields":{}}',
        b'{"clientID":"10.0.0.5@31337","producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}],'
        b'"consumerDataSet":[{"groupName":"GID_ons","consumeType":"CONSUME_PASSIVELY",'
        b'"messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",'
        b'"subscriptionDataSet":[{"topic":"TopicTest","subString":"TagA || TagB",'
        b'"classFilterMode":false,"tagsSet":["TagA","TagB"],"codeSet":[2598919,2598920],'
        b'"subVersion":1700000000999},{"topic":"%RETRY%GID_ons","subString":"*",'
        b'"classFilterMode":false,"tagsSet":[],"codeSet":[],"subVersion":1700000001000}],'
        b'"unitMode":false}]}',
    ),
    {
        "code": 34,
        "opaque": 12,
        "language": "JAVA",
        "flag": 0,
        "remark": None,
        "body": "HeartbeatData",
        "heartbeat": {
            "clientID": "10.0.0.5@31337",
            "consumeType": "CONSUME_PASSIVELY",
            "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
            "tags": [["TagA", "TagB"], []],
            "codes": [[2598919, 2598920], []],
        },
    },
)

# C++ 2.1 SEND_MESSAGE_V2: short names, every value a string, trailing newline.
CORPUS["cpp21_send_v2.bin"] = (
    frame(
        (
            '{"code":310,"extFields":{"AccessKey":"","OnsChannel":"","Signature":"","a":"GID_producer",'
            '"b":"TopicTest","c":"TBW102","d":"4","e":"2","f":"0","g":"1700000000555","h":"0",'
            f'"i":"{ESC_PROPS}","j":"0","k":"false","l":"16","m":"false","n":"broker-a"}},"flag":0,'
            '"language":"CPP","opaque":41,"remark":"","version":401}\n'
        ).encode(),
        b"Hello RocketMQ 41",
    ),
    {
        "code": 310,
        "opaque": 41,
        "language": "CPP",
        "flag": 0,
        "remark": "",
        "body_bytes": "Hello RocketMQ 41",
        "send": {
            "producer_group": "GID_producer",
            "topic": "TopicTest",
            "queue_id": 2,
            "born_timestamp": 1700000000555,
            "batch": False,
            "max_reconsume_times": 16,
            "broker_name": "broker-a",
            "properties": PROPS,
        },
    },
)

# ali-ons SEND_MESSAGE_V2: JSON numbers and booleans, no m / n.
CORPUS["alions_send_v2.bin"] = (
    frame(
        (
            '{"code":310,"language":"JAVA","opaque":57,"flag":0,"version":121,"extFields":{'
            '"a":"GID_ons_producer","b":"TopicTest","c":"TBW102","d":4,"e":1,"f":0,"g":1700000000777,'
            f'"h":0,"i":"{ESC_PROPS}","j":0,"k":false,"l":16}}}}'
        ).encode(),
        b'{"hello":"world"}',
    ),
    {
        "code": 310,
        "opaque": 57,
        "language": "JAVA",
        "flag": 0,
        "remark": None,
        "ext": {"d": "4", "k": "false", "g": "1700000000777"},
        "send": {
            "producer_group": "GID_ons_producer",
            "topic": "TopicTest",
            "queue_id": 1,
            "born_timestamp": 1700000000777,
            "batch": False,
            "max_reconsume_times": 16,
            "broker_name": None,
            "properties": PROPS,
        },
    },
)

# C++ 1.x pull: long poll with SUSPEND | SUBSCRIPTION | COMMIT_OFFSET, values as strings.
CORPUS["cpp1_pull.bin"] = (
    frame(
        b'{"code":11,"extFields":{"AccessKey":"","OnsChannel":"","Signature":"",'
        b'"commitOffset":"7","consumerGroup":"GID_cpp","maxMsgNums":"32","queueId":"3",'
        b'"queueOffset":"128","subVersion":"1700000000124","subscription":"TagA || TagB",'
        b'"suspendTimeoutMillis":"15000","sysFlag":"7","topic":"TopicTest"},"flag":0,'
        b'"language":"CPP","opaque":99,"remark":"",'
        b'"version":283}\n'
    ),
    {
        "code": 11,
        "opaque": 99,
        "language": "CPP",
        "flag": 0,
        "remark": "",
        "pull": {
            "consumer_group": "GID_cpp",
            "topic": "TopicTest",
            "queue_id": 3,
            "queue_offset": 128,
            "max_msg_nums": 32,
            "sys_flag": 7,
            "commit_offset": 7,
            "suspend_timeout_millis": 15000,
            "subscription": "TagA || TagB",
            "sub_version": 1700000000124,
        },
    },
)

# Java-style SEND_BATCH_MESSAGE (320): m "true", three entries.
_batch3 = b"".join(
    batch_entry(
        0,
        f"batch body {i}".encode(),
        f"UNIQ_KEY\x01AC11000200000000000000000000{i:02d}\x02WAIT\x01true\x02",
    )
    for i in range(3)
)
CORPUS["java_send_batch_320.bin"] = (
    frame(
        b'{"code":320,"extFields":{"a":"GID_batch","b":"TopicTest","c":"TBW102","d":"4","e":"0",'
        b'"f":"0","g":"1700000000888","h":"0","i":"","j":"0","k":"false","l":"16","m":"true"},'
        b'"flag":0,"language":"JAVA","opaque":130,"serializeTypeCurrentRPC":"JSON","version":401}',
        _batch3,
    ),
    {
        "code": 320,
        "opaque": 130,
        "language": "JAVA",
        "flag": 0,
        "remark": None,
        "send": {"producer_group": "GID_batch", "topic": "TopicTest", "queue_id": 0, "batch": True},
        "batch": [[0, "batch body 0"], [0, "batch body 1"], [0, "batch body 2"]],
    },
)

# C++ 2.1 batch: code 310 with m "1".
_batch2 = batch_entry(0, b"first", "TAGS\x01TagA\x02") + batch_entry(5, b"second", "TAGS\x01TagB")
CORPUS["cpp21_send_batch_310_m1.bin"] = (
    frame(
        b'{"code":310,"extFields":{"AccessKey":"","OnsChannel":"","Signature":"","a":"GID_producer",'
        b'"b":"TopicTest","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000999","h":"0","i":"",'
        b'"j":"0","k":"false","l":"16","m":"1","n":"broker-a"},"flag":0,"language":"CPP",'
        b'"opaque":142,"remark":"","version":401}\n',
        _batch2,
    ),
    {
        "code": 310,
        "opaque": 142,
        "language": "CPP",
        "flag": 0,
        "remark": "",
        "send": {
            "producer_group": "GID_producer",
            "topic": "TopicTest",
            "queue_id": 1,
            "batch": True,
        },
        "batch": [[0, "first"], [5, "second"]],
    },
)

# A Java broker's send response (what our client reads): string values, serializeTypeCurrentRPC.
CORPUS["java_send_response.bin"] = (
    frame(
        b'{"code":0,"extFields":{"queueId":"2","TRACE_ON":"true","MSG_REGION":"DefaultRegion",'
        b'"msgId":"AC11000200002A9F0000000000000F3C","queueOffset":"17"},"flag":1,"language":"JAVA",'
        b'"opaque":41,"serializeTypeCurrentRPC":"JSON","version":401}'
    ),
    {
        "code": 0,
        "opaque": 41,
        "language": "JAVA",
        "flag": 1,
        "remark": None,
        "ext": {"queueId": "2", "queueOffset": "17", "msgId": "AC11000200002A9F0000000000000F3C"},
    },
)

# Oneway UPDATE_CONSUMER_OFFSET (ali-ons sends it oneway): flag 2, numbers.
CORPUS["alions_update_offset_oneway.bin"] = (
    frame(
        b'{"code":15,"language":"JAVA","opaque":77,"flag":2,"version":121,"extFields":'
        b'{"consumerGroup":"GID_ons","topic":"TopicTest","queueId":0,"commitOffset":42}}'
    ),
    {
        "code": 15,
        "opaque": 77,
        "language": "JAVA",
        "flag": 2,
        "remark": None,
        "ext": {"queueId": "0", "commitOffset": "42"},
    },
)

# A Java client configured with the ROCKETMQ binary header: QUERY_CONSUMER_OFFSET.
CORPUS["java_rocketmq_header_query_offset.bin"] = (
    frame(
        binary_header(
            14,
            0,
            401,
            555,
            0,
            b"",
            {"consumerGroup": "GID_java", "topic": "TopicTest", "queueId": "3"},
        ),
        stype=1,
    ),
    {
        "code": 14,
        "opaque": 555,
        "language": "JAVA",
        "flag": 0,
        "remark": None,
        "ext": {"consumerGroup": "GID_java", "topic": "TopicTest", "queueId": "3"},
    },
)

# ---------------------------------------------------------------------------- bad frames
CORPUS["bad_length_2gib.bin"] = (b"\x7f\xff\xff\xff", {"error": "fatal"})
CORPUS["bad_length_negative.bin"] = (b"\xff\xff\xff\xf0\x00\x00\x00\x00", {"error": "fatal"})
CORPUS["bad_http_get.bin"] = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", {"error": "fatal"})
CORPUS["bad_header_len_over_frame.bin"] = (
    struct.pack(">iI", 10, 100) + b"{}" + b"xxxx",
    {"error": "fatal"},
)
CORPUS["bad_serialize_type.bin"] = (frame(b'{"code":1}', stype=2), {"error": "fatal"})
CORPUS["bad_deep_nesting.bin"] = (
    frame(b'{"opaque":9,"extFields":{"a":' + b"[" * 5000 + b"]" * 5000 + b'},"code":10}'),
    # too deep for the opaque probe on CPython 3.11 (None); 3.12+ reads it (9): either answer
    # is right, the frame stays skippable
    {"error": "nonfatal", "opaque_in": [None, 9]},
)
CORPUS["bad_not_object.bin"] = (frame(b"[10, 1, 2]"), {"error": "nonfatal", "opaque": None})
CORPUS["bad_nested_ext.bin"] = (
    frame(b'{"code":10,"opaque":21,"extFields":{"topic":{"x":1}}}'),
    {"error": "nonfatal", "opaque": 21},
)
CORPUS["bad_no_code.bin"] = (frame(b'{"opaque":22,"flag":0}'), {"error": "nonfatal", "opaque": 22})
CORPUS["bad_json_utf8.bin"] = (
    frame(b'{"code":10,"opaque":23,"remark":"\xff\xfe"}'),
    {"error": "nonfatal"},
)


def main() -> None:
    manifest = {}
    for name, (data, expect) in CORPUS.items():
        (HERE / name).write_bytes(data)
        manifest[name] = expect
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
