"""Bodies whose map keys are MessageQueues, written the way RocketMQ's fastjson writes them.

RocketMQ serializes ``HashMap<MessageQueue, V>`` with each key as a JSON object, which is not
JSON: ``{"offsetTable":{{"brokerName":"a","queueId":0,"topic":"T"}:{"maxOffset":5,...}}}``.
Its admin tools (mqadmin, the dashboard) read these bodies that way, so the broker writes them
that way; ``decode_queue_map`` reads them back (and plain JSON too).

- GET_TOPIC_STATS_INFO (202) answers a ``TopicStatsTable``: ``offsetTable`` of ``TopicOffset``.
- GET_CONSUME_STATS (208) answers a ``ConsumeStats``: ``offsetTable`` of ``OffsetWrapper`` and
  ``consumeTps``.
- INVOKE_BROKER_TO_RESET_OFFSET (222) answers, and RESET_CONSUMER_CLIENT_OFFSET (220) carries, a
  ``ResetOffsetBody``: ``offsetTable`` of plain offsets.
- GET_BROKER_CONSUME_STATS (317) answers a ``ConsumeStatsList``: ``brokerAddr``,
  ``totalDiff`` and ``consumeStatsList``, a list of ``{group: [ConsumeStats, ...]}``
  (``decode_consume_stats_list``).

The decoders raise only ``ProtocolError(fatal=False)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from runtime.errors import ProtocolError
from runtime.remoting.bodies import Body, MessageQueue

MAX_DEPTH = 32


class TopicOffset(Body, kw_only=True):
    """One queue of GET_TOPIC_STATS_INFO: its offsets and the store time of its last message."""

    min_offset: int = 0
    max_offset: int = 0
    last_update_timestamp: int = 0


class OffsetWrapper(Body, kw_only=True):
    """One queue of GET_CONSUME_STATS: the broker's end, the group's committed offset, and the
    store time of the last message the group consumed (0 when none)."""

    broker_offset: int = 0
    consumer_offset: int = 0
    last_timestamp: int = 0

    @property
    def diff(self) -> int:
        """Messages the group has not consumed yet (mqadmin's "Diff")."""
        return max(self.broker_offset - self.consumer_offset, 0)


V = TypeVar("V")
_ENCODER = msgspec.json.Encoder()


def encode_queue_map(
    field: str, entries: Iterable[tuple[MessageQueue, object]], **extra: object
) -> bytes:
    """``{"<field>":{<queue>:<value>,...},<extra>...}`` with each queue key as an object."""
    enc = _ENCODER.encode
    table = b",".join(enc(mq) + b":" + enc(value) for mq, value in entries)
    parts = [enc(field) + b":{" + table + b"}"]
    parts.extend(enc(name) + b":" + enc(value) for name, value in extra.items())
    return b"{" + b",".join(parts) + b"}"


def decode_queue_map(
    data: bytes, field: str, value_type: type[V], *, opaque: int | None = None
) -> tuple[list[tuple[MessageQueue, V]], dict[str, Any]]:
    """The ``field`` map's (queue, value) pairs sorted by queue, and the body's other fields."""
    try:
        doc = parse_fastjson(data)
        if not isinstance(doc, dict):
            raise ValueError("the body is not an object")
        return _queue_pairs(doc.pop(field, {}), value_type), doc
    except Exception as exc:  # UnicodeError, ValueError, msgspec errors, RecursionError
        raise ProtocolError(f"bad {field} body: {exc}", fatal=False, opaque=opaque) from None


def decode_consume_stats_list(
    data: bytes,
) -> tuple[str, int, list[tuple[str, list[tuple[MessageQueue, OffsetWrapper]]]]]:
    """A ConsumeStatsList: the broker's address, its total diff, and per group (in the body's
    order) its queues' offsets, every ConsumeStats of the group together, sorted by queue."""
    try:
        doc = parse_fastjson(data)
        if not isinstance(doc, dict):
            raise ValueError("the body is not an object")
        entries = doc.get("consumeStatsList")
        entries = [] if entries is None else entries
        if not isinstance(entries, list):
            raise ValueError("consumeStatsList is not a list")
        groups: list[tuple[str, list[tuple[MessageQueue, OffsetWrapper]]]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError("a consumeStatsList entry is not a group's map")
            for group, stats_list in entry.items():
                if not isinstance(stats_list, list):
                    raise ValueError(f"group {group!r}: its ConsumeStats are not a list")
                pairs: list[tuple[MessageQueue, OffsetWrapper]] = []
                for stats in stats_list:
                    if not isinstance(stats, dict):
                        raise ValueError(f"group {group!r}: a ConsumeStats is not an object")
                    pairs += _queue_pairs(stats.get("offsetTable", {}), OffsetWrapper)
                pairs.sort(key=lambda pair: pair[0])
                groups.append((group, pairs))
        return str(doc.get("brokerAddr") or ""), int(doc.get("totalDiff") or 0), groups
    except Exception as exc:  # UnicodeError, ValueError, TypeError, msgspec errors
        raise ProtocolError(f"bad ConsumeStatsList body: {exc}", fatal=False) from None


def _queue_pairs(table: Any, value_type: type[V]) -> list[tuple[MessageQueue, V]]:
    """A parsed queue map's (queue, value) pairs sorted by queue."""
    pairs = table if isinstance(table, list) else list(table.items())
    out = []
    for key, value in pairs:
        if isinstance(key, str):  # a plain-JSON writer: the key is the queue's JSON text
            key = json.loads(key)
        mq = msgspec.convert(key, MessageQueue, strict=False)
        out.append((mq, msgspec.convert(value, value_type, strict=False)))
    out.sort(key=lambda pair: pair[0])
    return out


def parse_fastjson(data: bytes) -> Any:
    """A whole fastjson body as Python values: objects with object keys become lists of
    (key, value) pairs. Raises ValueError (or UnicodeError, RecursionError) on bad input."""
    return _Parser(data.decode("utf-8")).document()


class _Parser:
    """JSON plus objects as object keys. An object whose keys are all strings becomes a dict;
    one with an object key becomes a list of (key, value) pairs."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def document(self) -> Any:
        value = self.value()
        self.skip()
        if self.pos != len(self.text):
            raise ValueError(f"trailing data at {self.pos}")
        return value

    def skip(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        self.pos = pos

    def value(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise ValueError("unexpected end")
        ch = self.text[self.pos]
        if ch == "{":
            return self.nested(self.obj)
        if ch == "[":
            return self.nested(self.array)
        if ch == '"':
            value, self.pos = json.decoder.scanstring(self.text, self.pos + 1)
            return value
        value, self.pos = _SCALARS.raw_decode(self.text, self.pos)
        if isinstance(value, dict | list | str):
            raise ValueError(f"unexpected {ch!r} at {self.pos}")
        return value

    def nested(self, parse: Any) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        self.pos += 1
        result = parse()
        self.depth -= 1
        return result

    def expect(self, ch: str) -> bool:
        """Skip blanks; consume ``ch`` if it is next."""
        self.skip()
        if self.text.startswith(ch, self.pos):
            self.pos += 1
            return True
        return False

    def obj(self) -> Any:
        pairs: list[tuple[Any, Any]] = []
        if not self.expect("}"):
            while True:
                key = self.value()
                if not isinstance(key, str | dict):
                    raise ValueError(f"bad key at {self.pos}")
                if not self.expect(":"):
                    raise ValueError(f"':' expected at {self.pos}")
                pairs.append((key, self.value()))
                if self.expect("}"):
                    break
                if not self.expect(","):
                    raise ValueError(f"',' or '}}' expected at {self.pos}")
        if all(isinstance(k, str) for k, _ in pairs):
            return dict(pairs)
        return pairs

    def array(self) -> list[Any]:
        items: list[Any] = []
        if self.expect("]"):
            return items
        while True:
            items.append(self.value())
            if self.expect("]"):
                return items
            if not self.expect(","):
                raise ValueError(f"',' or ']' expected at {self.pos}")


_SCALARS = json.JSONDecoder()
