"""Topic attributes (RocketMQ 5's ``TopicAttributes``): a topic's ``message.type`` and a LITE
topic's ``lite.topic.expiration``, kept in its TopicConfig's ``attributes`` map.

They arrive as UPDATE_AND_CREATE_TOPIC's ``attributes`` header in RocketMQ's form,
``+message.type=LITE,+lite.topic.expiration=60`` (``+key=value`` sets, ``-key`` removes; what
is not named stays as it was), and are applied by ``apply_attributes``. Keys and values are
checked as RocketMQ checks them; anything else is refused with the reason.

A topic's message type tells RocketMQ 5's clients (through actormq's gRPC proxy) what it
accepts: unset or MIXED, the four classic types; LITE, lite-topic messages only (docs/proxy.md
"Lite topics"); PRIORITY, priority messages.
"""

from __future__ import annotations

MESSAGE_TYPE = "message.type"
LITE_EXPIRATION = "lite.topic.expiration"
MESSAGE_TYPES = (
    "UNSPECIFIED",
    "NORMAL",
    "FIFO",
    "DELAY",
    "TRANSACTION",
    "MIXED",
    "LITE",
    "PRIORITY",
)
MAX_LITE_EXPIRATION_MIN = 43200
"""30 days in minutes: RocketMQ's bound for ``lite.topic.expiration``."""


def _value_problem(key: str, value: str) -> str | None:
    if key == MESSAGE_TYPE:
        if value not in MESSAGE_TYPES:
            return f"{key} must be one of {', '.join(MESSAGE_TYPES)}, not {value!r}"
        return None
    if key == LITE_EXPIRATION:
        try:
            minutes = int(value)
        except ValueError:
            return f"{key} must be a whole number of minutes, not {value!r}"
        if not -1 <= minutes <= MAX_LITE_EXPIRATION_MIN:
            return f"{key} must be -1 (never) .. {MAX_LITE_EXPIRATION_MIN} minutes, not {minutes}"
        return None
    return f"unsupported topic attribute {key!r} (known: {MESSAGE_TYPE}, {LITE_EXPIRATION})"


def apply_attributes(
    current: dict[str, str], text: str | None
) -> tuple[dict[str, str], str | None]:
    """``current`` changed by ``text`` (RocketMQ's ``+k=v,-k`` form; None or empty: unchanged),
    and None; or ``current`` and the reason ``text`` is refused."""
    result = dict(current)
    if not text:
        return result, None
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        sign, rest = item[0], item[1:]
        if sign == "+":
            key, eq, value = rest.partition("=")
            if not eq or not key:
                return current, f"attribute {item!r} must be +key=value"
            problem = _value_problem(key, value)
            if problem is not None:
                return current, problem
            result[key] = value
        elif sign == "-":
            if rest not in (MESSAGE_TYPE, LITE_EXPIRATION):
                return current, f"unsupported topic attribute {rest!r}"
            result.pop(rest, None)
        else:
            return current, f"attribute {item!r} must start with + (set) or - (remove)"
    return result, None


def message_type(attributes: dict[str, str] | None) -> str:
    """The topic's message type as RocketMQ names it (MIXED when none is set)."""
    value = (attributes or {}).get(MESSAGE_TYPE, "")
    return value if value and value != "UNSPECIFIED" else "MIXED"
