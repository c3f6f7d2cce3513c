"""Bodies a producer compressed (sysFlag COMPRESSED): zlib (RocketMQ 4, and RocketMQ 5's type
bits ZLIB), and RocketMQ 5's LZ4 and ZSTD (Java's frame formats) when the optional packages are
installed (``pip install 'actormq[compression]'``: ``lz4``, ``zstandard``).

``inflate`` answers None for a body it cannot inflate (a type without its package, or damaged
bytes): the consumer then delivers the message as stored and logs a WARNING once per cause,
rather than failing every pull of the queue (RocketMQ's Java client drops such a record and
the rest of its batch).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from loguru import logger

from runtime.remoting.codes import COMPRESSION_TYPE_MASK, MessageSysFlag

ZLIB = int(MessageSysFlag.COMPRESSION_ZLIB)
LZ4 = int(MessageSysFlag.COMPRESSION_LZ4)
ZSTD = int(MessageSysFlag.COMPRESSION_ZSTD)
NAMES = {0: "zlib", ZLIB: "zlib", LZ4: "LZ4", ZSTD: "ZSTD"}
PACKAGES = {LZ4: "lz4", ZSTD: "zstandard"}
_warned: set[str] = set()
_codecs: dict[int, Callable[[bytes], bytes] | None] = {}


def _load(kind: int) -> Callable[[bytes], bytes] | None:
    """LZ4's or ZSTD's decompressor, or None without its package."""
    try:
        if kind == LZ4:
            from lz4 import frame

            return frame.decompress  # type: ignore[no-any-return]
        import zstandard

        # Java's ZstdOutputStream writes frames without the content size: stream them
        return lambda body: zstandard.ZstdDecompressor().decompressobj().decompress(body)
    except ImportError:
        return None


def _codec(kind: int) -> Callable[[bytes], bytes] | None:
    if kind in (0, ZLIB):
        return zlib.decompress
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
