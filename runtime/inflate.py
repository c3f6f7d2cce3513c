"""Bounded zlib inflation: never make more bytes than a limit, however small the input.

A "bomb" of a few KiB of deflate stream stands for gigabytes; ``zlib.decompress`` would make
them all. ``bounded_zlib`` stops one byte past the limit. Shared by the client (compressed
message bodies), the proxy (gzip'd gRPC bodies) and the name server (compressed REGISTER_BROKER
bodies), so it lives in the runtime rather than in any one of them.
"""

from __future__ import annotations

import zlib


class InflateLimitError(ValueError):
    """A body that inflates past the limit (the bytes past it were never made)."""


def bounded_zlib(body: bytes, limit: int, wbits: int = zlib.MAX_WBITS) -> bytes:
    """``body`` inflated (zlib; ``wbits=31``: gzip), at most ``limit`` bytes of it made:
    ``InflateLimitError`` past that, ``zlib.error`` for damaged or truncated bytes. Bytes after
    the end of the stream are ignored (as Java's ``InflaterInputStream`` does)."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise InflateLimitError(f"inflates past {limit} bytes")
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return out
