"""Validating and sizing a record before it is appended: ``prepare``, ``Prepared``, ``Invalid``.

``prepare`` applies RocketMQ's checks (topic name, body size, properties size and encoding, queue
id) plus "fits in a segment" to one ``PutRecord``; ``Invalid`` says why a record was refused
before anything was written (``properties``: PROPERTIES_SIZE_EXCEEDED rather than
MESSAGE_ILLEGAL). ``_topic_cache`` keeps each topic's encoded name, or why it is illegal. The
commit log's encoders (its Python loop and the C ``_fastlog.encode_batch``) check the common
case inline and call ``prepare`` for the rest.
"""

from __future__ import annotations

from typing import NamedTuple

from runtime.store import record as R
from runtime.store.topic_names import topic_problem


class Prepared(NamedTuple):
    """A validated record with its encoded topic, properties and total size."""

    rec: R.PutRecord
    topic_b: bytes
    props_b: bytes
    size: int


class Invalid(NamedTuple):
    """Why a record was refused before anything was written."""

    properties: bool  # True: the properties are too long (PROPERTIES_SIZE_EXCEEDED)
    reason: str


_topic_cache: dict[str, bytes | Invalid] = {}


def prepare(
    rec: R.PutRecord, max_message_size: int, segment_size: int, store_v6: int = 0
) -> Prepared | Invalid:
    """Validate one record (RocketMQ's checks plus "fits in a segment") and size it.
    ``store_v6``: STOREHOST_V6_FLAG when the log's store host is IPv6 (its size counts)."""
    topic_b = _topic_cache.get(rec.topic)
    if topic_b is None:
        problem = topic_problem(rec.topic)
        topic_b = Invalid(False, problem) if problem else rec.topic.encode("ascii")
        if len(_topic_cache) < 100_000:
            _topic_cache[rec.topic] = topic_b
    if isinstance(topic_b, Invalid):
        return topic_b
    body_len = len(rec.body)
    if body_len > max_message_size:
        return Invalid(False, f"body of {body_len} bytes exceeds the maximum {max_message_size}")
    try:
        props_b = rec.properties.encode() if rec.properties else b""
    except UnicodeEncodeError:
        return Invalid(False, "properties are not valid UTF-8 text")
    if len(props_b) > R.MAX_PROPERTIES_SIZE:
        return Invalid(True, f"properties of {len(props_b)} bytes exceed {R.MAX_PROPERTIES_SIZE}")
    if rec.queue_id < 0 or rec.queue_id > 0x7FFFFFFF:
        return Invalid(False, f"queue id {rec.queue_id} out of range")
    hosts = store_v6 | (R.BORNHOST_V6_FLAG if len(rec.born_host) == 16 else 0)
    size = R.header_size(hosts) + body_len + 3 + len(topic_b) + len(props_b)
    if size + R.BLANK_SIZE > segment_size:
        return Invalid(False, f"record of {size} bytes does not fit a {segment_size}-byte segment")
    return Prepared(rec, topic_b, props_b, size)
