"""Producing with RocketMQ 5's compressType (ZLIB, LZ4, ZSTD) and compressLevel: the sysFlag
bits of each type, the frames Java's codecs read, the errors a producer gets at construction,
and batches left uncompressed as RocketMQ leaves them."""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator

import pytest
import zstandard
from lz4 import frame as lz4_frame

from actors.client import Message, Producer
from actors.client.compression import DEFAULT_COMPRESSOR, compressor, inflate
from actors.client.errors import ClientError
from actors.client.outgoing import prepare, prepare_batch
from actors.client.pull import decode_messages
from actors.client.testing import FakeCluster
from runtime.remoting.codes import COMPRESSION_TYPE_MASK, MessageSysFlag

BODY = b"order-42 paid in full; " * 400  # 9 KiB, compressible
FLAGS = {"ZLIB": 0x301, "LZ4": 0x101, "ZSTD": 0x201}
"""COMPRESSED plus RocketMQ 5's type bits (MessageSysFlag.COMPRESSION_*_TYPE)."""


@pytest.mark.parametrize("kind", ["ZLIB", "LZ4", "ZSTD", "lz4", "zstd"])
def test_each_type_flags_its_bits_and_inflates_back(kind: str) -> None:
    # Given a message over 4 KiB prepared with the type
    out = prepare(Message("T", BODY), compressor=compressor(kind, 5))
    # Then it is smaller, flagged COMPRESSED with the type bits, and inflates to the body
    assert out.sys_flag == FLAGS[kind.upper()]
    assert len(out.body) < len(BODY)
    assert inflate(out.body, out.sys_flag) == BODY
    # And a body under 4 KiB is sent as it is, one of exactly 4 KiB compressed (RocketMQ:
    # body.length >= compressMsgBodyOverHowmuch)
    small = prepare(Message("T", b"a" * 4095), compressor=compressor(kind))
    assert (small.sys_flag, small.body) == (0, b"a" * 4095)
    edge = prepare(Message("T", b"a" * 4096), compressor=compressor(kind))
    assert edge.sys_flag == FLAGS[kind.upper()]
    assert inflate(edge.body, edge.sys_flag) == b"a" * 4096


def test_the_default_is_zlib_level_5_with_rocketmq_5_s_zlib_bits() -> None:
    out = prepare(Message("T", BODY))
    assert out.sys_flag == MessageSysFlag.COMPRESSED | MessageSysFlag.COMPRESSION_ZLIB
    assert out.body == zlib.compress(BODY, 5)
    assert (DEFAULT_COMPRESSOR.name, DEFAULT_COMPRESSOR.level) == ("ZLIB", 5)


def test_frames_are_the_ones_java_s_codecs_read() -> None:
    # LZ4: a standard frame (magic 0x184D2204) of independent blocks of up to 4 MiB, as
    # lz4-java's LZ4FrameOutputStream writes them (liblz4 picks the smallest block size that
    # holds the body; RocketMQ's Lz4Compressor ignores the level)
    lz4 = compressor("LZ4", 9).compress(BODY)
    assert lz4[:4] == b"\x04\x22\x4d\x18"
    assert lz4[4] & 0x20, "block independence"
    assert 4 <= (lz4[5] >> 4) & 0x7 <= 7, "blocks of 64 KiB to 4 MiB"
    assert lz4_frame.decompress(lz4) == BODY
    # ZSTD: one standard frame at the level asked for (zstd-jni's ZstdInputStream reads it)
    zstd = compressor("ZSTD", 19).compress(BODY)
    assert zstd[:4] == b"\x28\xb5\x2f\xfd"
    assert zstandard.ZstdDecompressor().decompress(zstd) == BODY


def test_batches_are_not_compressed_whatever_the_type() -> None:
    # RocketMQ's producers compress no MessageBatch (4.x and 5.x alike)
    out = prepare_batch([Message("T", BODY), Message("T", BODY)])
    assert out.sys_flag & (MessageSysFlag.COMPRESSED | COMPRESSION_TYPE_MASK) == 0
    assert BODY in out.body


@pytest.mark.parametrize(
    ("kind", "level", "problem"),
    [
        ("SNAPPY", 5, "unsupported compress_type"),
        ("ZLIB", 10, "compress_level 10 refused by ZLIB"),
        ("ZSTD", 23, "compress_level 23 refused by ZSTD"),
        ("ZLIB", "5", "must be an int"),
    ],
)
def test_a_bad_type_or_level_is_a_client_error_at_construction(
    kind: str, level: object, problem: str
) -> None:
    with pytest.raises(ClientError, match=problem):
        Producer("pg", "127.0.0.1:1", compress_type=kind, compress_level=level)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "package"), [("LZ4", "lz4"), ("ZSTD", "zstandard")])
def test_a_missing_package_is_a_client_error_at_construction(
    kind: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the optional package not installed (an import of it fails)
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)
    # Then making the producer says which package to install, before anything starts
    with pytest.raises(ClientError, match=rf"needs the {package} package.*compression"):
        Producer("pg", "127.0.0.1:1", compress_type=kind)
    # (ZLIB needs nothing)
    assert Producer("pg", "127.0.0.1:1").compressor.name == "ZLIB"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(("broker-a",), topics=("Orders",)) as fc:
        yield fc


@pytest.mark.parametrize("kind", ["LZ4", "ZSTD"])
def test_a_producer_sends_the_type_and_the_broker_stores_the_sys_flag_unchanged(
    cluster: FakeCluster, kind: str
) -> None:
    # Given a producer compressing with the type
    with Producer("pg", cluster.namesrv, compress_type=kind, compress_level=3) as producer:
        producer.send(Message("Orders", BODY))
    # Then the stored record carries the type's flag and a consumer inflates it
    [stored] = cluster.stored("Orders")
    [msg] = decode_messages(stored.record, "broker-a")
    assert msg.sys_flag == FLAGS[kind]
    assert msg.body == BODY


@pytest.mark.parametrize("kind", ["ZLIB", "LZ4", "ZSTD"])
def test_a_body_inflating_past_the_limit_is_delivered_as_stored(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.client import compression

    # Given a limit of 1 MiB and bodies of each type that inflate to 8 MiB
    monkeypatch.setattr(compression, "MAX_INFLATED", 1024 * 1024)
    compression._codecs.clear()
    big = b"\0" * (8 * 1024 * 1024)
    packed = {
        "ZLIB": lambda: zlib.compress(big, 9),
        "LZ4": lambda: lz4_frame.compress(big),
        "ZSTD": lambda: zstandard.ZstdCompressor().compress(big),
    }[kind]()
    # When a consumer inflates one, Then it gets None (delivered as stored), having made no
    # more than the limit of it
    try:
        assert inflate(packed, FLAGS[kind]) is None
        # And a body within the limit still inflates
        small = {"ZLIB": zlib.compress, "LZ4": lz4_frame.compress}.get(
            kind, zstandard.ZstdCompressor().compress
        )(BODY)
        assert inflate(small, FLAGS[kind]) == BODY
    finally:
        compression._codecs.clear()


def test_bounded_zlib_refuses_damaged_and_oversized_streams() -> None:
    from actors.client.compression import InflateLimitError, bounded_zlib

    packed = zlib.compress(b"x" * 5000)
    assert bounded_zlib(packed, 5000) == b"x" * 5000
    with pytest.raises(InflateLimitError):
        bounded_zlib(packed, 4999)
    with pytest.raises(zlib.error):
        bounded_zlib(packed[:-6], 10_000)  # truncated
