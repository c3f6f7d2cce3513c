"""The process commands of ``python -m runtime``, found in an argument list before anything is
imported (``runtime/__main__.py`` decides on gevent's monkey-patching from it): this module
imports nothing."""

COMMANDS = ("cluster", "namesrv", "broker", "proxy", "bench", "admin")
VALUED_OPTIONS = ("--tls-config", "--log-level", "--data-dir")
"""The options taking a value that may come before the command (runtime/cli.py)."""


def command_of(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word that is one and no option's value), else
    None."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUED_OPTIONS:
            skip = True
        elif word in COMMANDS:
            return word
    return None
