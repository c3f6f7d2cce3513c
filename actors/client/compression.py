"""Compressed bodies (sysFlag COMPRESSED): zlib (RocketMQ 4, and RocketMQ 5's type bits ZLIB),
and RocketMQ 5's LZ4 and ZSTD (Java's frame formats) when the optional packages are installed
(``pip install 'actormq[compression]'``: ``lz4``, ``zstandard``).

``compressor(type, level)`` is what a producer compresses with (RocketMQ 5's ``compressType``
and ``compressLevel``): its ``flag`` is COMPRESSED plus the type bits (0x100 LZ4, 0x200 ZSTD,
0x300 ZLIB), as RocketMQ 5's producer sets them. It raises ``ClientError`` at once for an
unknown type, a level the codec refuses, or a missing package, so a producer fails at
construction rather than at its first large send. LZ4 ignores the level, as RocketMQ's
Lz4Compressor does (a standard frame of independent blocks of up to 4 MiB, which lz4-java reads).

``inflate`` answers None for a body it cannot inflate (a type without its package, or damaged
bytes, or one that would inflate past ``MAX_INFLATED``: a "bomb" of a few KiB can stand for
gigabytes): the consumer then delivers the message as stored and logs a WARNING once per
cause, rather than failing every pull of the queue (RocketMQ's Java client drops such a record
and the rest of its batch). ``bounded_zlib`` (``runtime.inflate``, shared with the proxy and
the name server) inflates zlib or gzip bytes up to a limit.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

from loguru import logger

from actors.client.errors import ClientError
from runtime.inflate import InflateLimitError, bounded_zlib
from runtime.remoting.codes import COMPRESSION_TYPE_MASK, MessageSysFlag

ZLIB = int(MessageSysFlag.COMPRESSION_ZLIB)
LZ4 = int(MessageSysFlag.COMPRESSION_LZ4)
ZSTD = int(MessageSysFlag.COMPRESSION_ZSTD)
NAMES = {0: "zlib", ZLIB: "zlib", LZ4: "LZ4", ZSTD: "ZSTD"}
PACKAGES = {LZ4: "lz4", ZSTD: "zstandard"}
TYPES = {"ZLIB": ZLIB, "LZ4": LZ4, "ZSTD": ZSTD}
"""RocketMQ 5's CompressionType names -> their sysFlag type bits."""
DEFAULT_TYPE = "ZLIB"
DEFAULT_LEVEL = 5
"""RocketMQ 5's defaults (``rocketmq.message.compressType`` / ``compressLevel``)."""
MAX_INFLATED = 64 * 1024 * 1024
"""The most bytes a compressed body is inflated to (16 x RocketMQ's 4 MiB message limit)."""
_warned: set[str] = set()


_codecs: dict[int, Callable[[bytes], bytes] | None] = {}


def _load(kind: int) -> Callable[[bytes], bytes] | None:
    """LZ4's or ZSTD's decompressor, or None without its package."""
    try:
        if kind == LZ4:
            from lz4 import frame

            def lz4_bounded(body: bytes) -> bytes:
                out = frame.LZ4FrameDecompressor().decompress(body, max_length=MAX_INFLATED + 1)
                if len(out) > MAX_INFLATED:
                    raise InflateLimitError(f"inflates past {MAX_INFLATED} bytes")
                return bytes(out)

            return lz4_bounded
        import zstandard

        # Java's ZstdOutputStream writes frames without the content size: stream them
        def zstd_bounded(body: bytes) -> bytes:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body))
            out = reader.read(MAX_INFLATED + 1)
            if len(out) > MAX_INFLATED:
                raise InflateLimitError(f"inflates past {MAX_INFLATED} bytes")
            return bytes(out)

        return zstd_bounded
    except ImportError:
        return None


def _codec(kind: int) -> Callable[[bytes], bytes] | None:
    if kind in (0, ZLIB):
        return lambda body: bounded_zlib(body, MAX_INFLATED)
    if kind not in _codecs:
        _codecs[kind] = _load(kind)
    return _codecs[kind]


def inflate(body: bytes, sys_flag: int) -> bytes | None:
    """The inflated body, or None when it cannot be inflated here (warned once per cause)."""
    kind = sys_flag & COMPRESSION_TYPE_MASK
    codec = _codec(kind) if kind in NAMES else None
    if codec is None:
        package = PACKAGES.get(kind)
        _warn_once(
            f"type 0x{kind:x}",
            f"{NAMES.get(kind, f'compression type 0x{kind:x}')} bodies are delivered still "
            + (
                f"compressed: install {package} (pip install 'actormq[compression]')"
                if package
                else "compressed: unknown compression type"
            ),
        )
        return None
    try:
        return codec(body)
    except Exception as exc:  # each library raises its own error type for damaged input
        _warn_once(
            f"damaged {kind}", f"a {NAMES[kind]} body does not inflate ({exc}): delivered as stored"
        )
        return None


def _warn_once(key: str, text: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning("client: {}", text)


class Compressor:
    """How a producer compresses a large body: ``name`` (ZLIB, LZ4, ZSTD), ``level``, and
    ``flag``, the sysFlag bits a body compressed with it carries (COMPRESSED | type)."""

    __slots__ = ("compress", "flag", "level", "name")

    def __init__(self, name: str, level: int, compress: Callable[[bytes], bytes]) -> None:
        self.name = name
        self.level = level
        self.flag = int(MessageSysFlag.COMPRESSED) | TYPES[name]
        self.compress = compress

    def __repr__(self) -> str:
        return f"Compressor({self.name}, level={self.level})"


def compressor(compress_type: str = DEFAULT_TYPE, level: int = DEFAULT_LEVEL) -> Compressor:
    """The compressor of RocketMQ 5's ``compressType`` (case-insensitive) at ``level``; raises
    ``ClientError`` for an unknown type, a refused level, or a type whose package is missing."""
    name = str(compress_type).strip().upper()
    if name not in TYPES:
        raise ClientError(f"unsupported compress_type {compress_type!r}: give ZLIB, LZ4 or ZSTD")
    if isinstance(level, bool) or not isinstance(level, int):
        raise ClientError(f"compress_level must be an int, not {level!r}")
    fn = _compress_fn(TYPES[name], level)  # ClientError without the package
    try:
        fn(b"actormq")  # the codec checks the level now rather than at the first large send
    except (ValueError, zlib.error) as exc:
        raise ClientError(f"compress_level {level} refused by {name}: {exc}") from None
    return Compressor(name, level, fn)


def _compress_fn(kind: int, level: int) -> Callable[[bytes], bytes]:
    if kind == ZLIB:
        return lambda body: zlib.compress(body, level)
    package = PACKAGES[kind]
    try:
        if kind == LZ4:
            from lz4 import frame

            size = frame.BLOCKSIZE_MAX4MB
            return lambda body: frame.compress(body, block_size=size, block_linked=False)  # type: ignore[no-any-return]
        import zstandard

        # a compressor object per body: they are not safe to share between threads
        return lambda body: zstandard.ZstdCompressor(level=level).compress(body)
    except ImportError:
        raise ClientError(
            f"compress_type {NAMES[kind]} needs the {package} package: "
            "pip install 'actormq[compression]'"
        ) from None


DEFAULT_COMPRESSOR = Compressor(DEFAULT_TYPE, DEFAULT_LEVEL, _compress_fn(ZLIB, DEFAULT_LEVEL))
"""The default: zlib at level 5 (RocketMQ's producer default)."""
