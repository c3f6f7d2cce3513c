"""The process commands of ``python -m runtime``, found in an argument list before anything is
imported (``runtime/__main__.py`` decides on gevent's monkey-patching from it): this module
imports nothing."""

COMMANDS = ("cluster", "namesrv", "broker", "proxy", "bench", "admin")


def command_of(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word that is one), else None."""
    return next((word for word in argv if word in COMMANDS), None)
