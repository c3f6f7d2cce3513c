"""What the peer baselines (``bench/peer_redis.py``, ``bench/peer_nats.py``) share: their command
line. The four measurements mirror ``bench/client_bench.py``'s; each peer adds its own
connection options and the arguments of its latency consumer."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def peer_parser(
    prog: str,
    doc: str | None,
    add_common: Callable[[argparse.ArgumentParser], None],
    helps: dict[str, str],
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The parser with ``produce``, ``batch``, ``consume`` and ``latency`` (``helps`` per name,
    ``add_common`` adds the peer's shared options); the sub-parsers are returned for more."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    add_common(common)
    common.add_argument("--size", type=int, default=1024, help="message body bytes (1024)")
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("produce", parents=[common], help=helps["produce"])
    p.add_argument("--seconds", type=float, default=10.0)
    p = sub.add_parser("batch", parents=[common], help=helps["batch"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=100)
    p = sub.add_parser("consume", parents=[common], help=helps["consume"])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--pull-batch", type=int, default=32, help="messages per read (32)")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("latency", parents=[common], help="d) end-to-end latency at a fixed rate")
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=1)
    return parser, sub
