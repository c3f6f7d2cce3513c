"""``python -m runtime``: run actormq. gevent monkey-patching happens first, before any import
that could touch threading, sockets or time; except for ``python -m runtime proxy``, which runs
grpcio with plain threads (half its CPU per call under gevent: actors/proxy/server.py) and
actormq's client on its own hub thread."""

import sys

from runtime.commands import command_of

if command_of(sys.argv[1:]) != "proxy":
    from gevent import monkey

    monkey.patch_all()


def main(argv: list[str] | None = None) -> int:
    from runtime.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
