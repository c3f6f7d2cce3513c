"""A record's property string as the store reads it, and the delay levels of its DELAY property.

The properties are RocketMQ's ``name\\x01value\\x02`` text (``runtime.remoting.properties``); the
store reads only the names below (RocketMQ MessageConst). A DELAY property names a delay level:
level n waits the n-th delay of ``DEFAULT_DELAY_LEVELS`` (or the broker's configured spec, parsed
by ``parse_delay_levels``).
"""

from __future__ import annotations

from runtime.remoting import properties as P

# property names the store reads (RocketMQ MessageConst)
PROPERTY_KEYS = P.KEYS
PROPERTY_TAGS = P.TAGS
PROPERTY_UNIQ_KEY = P.UNIQ_KEY
PROPERTY_DELAY = P.DELAY
PROPERTY_WAIT = P.WAIT
NAME_VALUE_SEPARATOR = P.NAME_VALUE_SEPARATOR
PROPERTY_SEPARATOR = P.PROPERTY_SEPARATOR
KEY_SEPARATOR = P.KEY_SEPARATOR


def parse_properties(text: str) -> dict[str, str]:
    """``name\\x01value\\x02`` repeated -> dict (``runtime.remoting.properties``)."""
    return P.decode_properties(text)


def encode_properties(props: dict[str, str]) -> str:
    return P.encode_properties(props)


def parse_delay_levels(spec: str) -> tuple[int, ...]:
    """``"1s 5s 10s 30s 1m ... 2h"`` -> delays in milliseconds."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    out = []
    for item in spec.split():
        out.append(int(item[:-1]) * units[item[-1]])
    return tuple(out)


DEFAULT_DELAY_LEVELS_SPEC = P.DELAY_LEVELS
DEFAULT_DELAY_LEVELS = parse_delay_levels(DEFAULT_DELAY_LEVELS_SPEC)
