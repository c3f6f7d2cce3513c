"""``python -m runtime``: run actormq. gevent monkey-patching happens first, before any import
that could touch threading, sockets or time."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from runtime.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
