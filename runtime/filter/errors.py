"""The one error the SQL92 filter compiler raises."""

from __future__ import annotations

from runtime.errors import ActorMQError


class FilterError(ActorMQError):
    """An invalid filter expression. ``reason`` says what is wrong, ``column`` (1-based character
    position in the expression, or None) says where, ``hint`` (or None) what was expected. The
    broker answers SUBSCRIPTION_PARSE_FAILED with ``str(error)``."""

    def __init__(self, reason: str, column: int | None = None, hint: str | None = None) -> None:
        self.reason = reason
        self.column = column
        self.hint = hint
        message = f"{reason} at column {column}" if column is not None else reason
        super().__init__(f"{message}; {hint}" if hint else message)
