"""PULL_MESSAGE (11): building the request and decoding the response into ``MessageExt``.

A pull body is stored commit-log records, concatenated (STORE.md). ``runtime.store.record``
offers ``decode_record``, which trusts its input and builds a ``StoredRecord``; the client needs
a checked decoder (a broker's bytes are input) that builds ``MessageExt`` straight away, so the
loop here bounds-checks every length and raises ``ProtocolError`` on anything inconsistent.
Compressed bodies (sysFlag COMPRESSED) are inflated by ``actors.client.compression``.
"""

from __future__ import annotations

import struct

import msgspec

from actors.client.compression import inflate
from actors.client.errors import ClientError
from actors.client.message import MessageExt, MessageQueue, PullStatus
from runtime.errors import ProtocolError
from runtime.filter import FilterError, compile_expression
from runtime.remoting.codes import MessageSysFlag, PullSysFlag, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.store.record import HEADER_SIZE, MAGIC, MIN_RECORD_SIZE, header

TAG = "TAG"
SQL92 = "SQL92"
_H = struct.Struct(">h")
_COMPRESSED = int(MessageSysFlag.COMPRESSED)
_topics: dict[bytes, str] = {}


def _topic(raw: bytes) -> str:
    text = _topics.get(raw)
    if text is None:
        if len(_topics) > 4096:
            _topics.clear()
        text = _topics[raw] = raw.decode()
    return text


def decode_messages(body: bytes, broker_name: str) -> list[MessageExt]:
    """Every record in a pull body, as MessageExt. ProtocolError on malformed bytes. Records
    with sysFlag BORNHOST_V6 / STOREHOST_V6 carry 16-byte hosts (``born_ip`` / ``store_ip``)."""
    out: list[MessageExt] = []
    append = out.append
    n = len(body)
    pos = 0
    while pos < n:
        if n - pos < HEADER_SIZE:
            raise ProtocolError(f"pull body: {n - pos} stray bytes at {pos}")
        head = header(body[pos + 39])  # the low byte of sysFlag holds the host bits
        if n - pos < head.size:
            raise ProtocolError(f"pull body: {n - pos} stray bytes at {pos}")
        (
            size,
            magic,
            _crc,
            queue_id,
            flag,
            queue_offset,
            physical,
            sys_flag,
            born_ts,
            born_ip,
            born_port,
            store_ts,
            store_ip,
            store_port,
            reconsume,
            prepared,
            blen,
        ) = head.unpack_from(body, pos)
        end = pos + size
        if magic != MAGIC or size < MIN_RECORD_SIZE or end > n:
            raise ProtocolError(f"pull body: bad record at {pos} (size {size}, magic {magic:#x})")
        p = pos + head.size
        if blen < 0 or p + blen + 3 > end:
            raise ProtocolError(f"pull body: bodyLen {blen} overruns the record at {pos}")
        payload = body[p : p + blen]
        p += blen
        tlen = body[p]
        if p + 1 + tlen + 2 > end:
            raise ProtocolError(f"pull body: topic overruns the record at {pos}")
        try:
            topic = _topic(body[p + 1 : p + 1 + tlen])
        except UnicodeDecodeError:
            raise ProtocolError(f"pull body: topic at {pos} is not UTF-8") from None
        p += 1 + tlen
        (plen,) = _H.unpack_from(body, p)
        if plen < 0 or p + 2 + plen != end:
            raise ProtocolError(f"pull body: length fields of the record at {pos} disagree")
        try:
            props = body[p + 2 : end].decode()
        except UnicodeDecodeError:
            raise ProtocolError(f"pull body: properties at {pos} are not UTF-8") from None
        if sys_flag & _COMPRESSED:
            inflated = inflate(payload, sys_flag)  # None: delivered as stored (warned)
            if inflated is not None:
                payload = inflated
        append(
            MessageExt(
                topic,
                payload,
                props,
                broker_name,
                queue_id,
                queue_offset,
                physical,
                sys_flag,
                flag,
                born_ts,
                born_ip,
                born_port,
                store_ts,
                store_ip,
                store_port,
                reconsume,
                prepared,
            )
        )
        pos = end
    return out


class TagFilter:
    """A subscription expression. TAG (default): ``*`` (everything) or ``a || b``, re-checked on
    the client (brokers filter by tag hash). SQL92 (``expression_type="SQL92"``): a property
    filter the broker evaluates (``enablePropertyFilter``); compiled here first so a bad
    expression fails at ``subscribe`` (ValueError with the compiler's reason and column)."""

    __slots__ = ("expression", "expression_type", "tags")

    def __init__(self, expression: str | None, expression_type: str = TAG) -> None:
        kind = (expression_type or TAG).upper()
        self.expression_type = kind
        self.tags: frozenset[str] | None = None
        if kind == SQL92:
            text = (expression or "").strip()
            if not text:
                raise ValueError("a SQL92 subscription needs an expression")
            try:
                compile_expression(text)
            except FilterError as exc:
                raise ValueError(f"SQL92 expression {text!r}: {exc}") from None
            self.expression = text
            return
        if kind != TAG:
            raise ValueError(f"expression type {expression_type!r} is neither TAG nor SQL92")
        expression = (expression or "*").strip() or "*"
        self.expression = expression
        if expression != "*":
            tags = frozenset(t.strip() for t in expression.split("||") if t.strip())
            if not tags:
                raise ValueError(f"subscription expression {expression!r} names no tag")
            self.tags = tags

    @property
    def matches_all(self) -> bool:
        return self.tags is None

    def __eq__(self, other: object) -> bool:
        """Alike when they filter alike: the same type and expression."""
        if not isinstance(other, TagFilter):
            return NotImplemented
        return (self.expression_type, self.expression) == (other.expression_type, other.expression)

    def __hash__(self) -> int:
        return hash((self.expression_type, self.expression))

    def keep(self, msgs: list[MessageExt]) -> list[MessageExt]:
        """The messages whose tag the expression names (brokers filter by tag hash only)."""
        tags = self.tags
        if tags is None:
            return msgs
        return [m for m in msgs if m.tags in tags]


def subscription(expression: str = "*", sql: str | None = None) -> TagFilter:
    """The filter of ``subscribe(topic, expression, sql=...)``; ClientError when invalid."""
    if sql is not None and (expression or "*").strip() != "*":
        raise ClientError("give a TAG expression or sql, not both")
    try:
        return TagFilter(sql, SQL92) if sql is not None else TagFilter(expression)
    except ValueError as exc:
        raise ClientError(str(exc)) from None


class PullResult(msgspec.Struct, frozen=True, kw_only=True):
    status: PullStatus
    next_begin_offset: int
    min_offset: int = 0
    max_offset: int = 0
    messages: list[MessageExt] = []
    raw_count: int = 0
    """Records the broker returned before the client-side tag filter."""
    suggest_which_broker_id: int = 0
    """Where the broker suggests the next pull of this queue goes (0: the master)."""


_SUBSCRIPTION = int(PullSysFlag.SUBSCRIPTION)
_SUSPEND = int(PullSysFlag.SUSPEND)
_COMMIT_OFFSET = int(PullSysFlag.COMMIT_OFFSET)
_LITE_PULL = int(PullSysFlag.LITE_PULL)


def pull_header(
    group: str,
    mq: MessageQueue,
    offset: int,
    *,
    max_nums: int,
    expression: str,
    commit_offset: int = -1,
    suspend_ms: int = 15_000,
    lite: bool = False,
    expression_type: str = TAG,
) -> dict[str, str]:
    """The PULL_MESSAGE extFields. Always carries the subscription (SUBSCRIPTION flag), so a
    broker need not rely on the heartbeat's copy; COMMIT_OFFSET when ``commit_offset`` >= 0."""
    flag = _SUBSCRIPTION  # plain ints: an enum.Flag ``|`` costs ~2.5 us, twice per pull
    if suspend_ms > 0:
        flag |= _SUSPEND
    if commit_offset >= 0:
        flag |= _COMMIT_OFFSET
    if lite:
        flag |= _LITE_PULL
    return {
        "consumerGroup": group,
        "topic": mq.topic,
        "queueId": str(mq.queue_id),
        "queueOffset": str(offset),
        "maxMsgNums": str(max_nums),
        "sysFlag": str(flag),
        "commitOffset": str(max(commit_offset, 0)),
        "suspendTimeoutMillis": str(suspend_ms),
        "subscription": expression,
        "subVersion": "0",
        "expressionType": expression_type,
    }


_STATUS = {
    ResponseCode.SUCCESS: PullStatus.FOUND,
    ResponseCode.PULL_NOT_FOUND: PullStatus.NO_NEW_MSG,
    ResponseCode.PULL_RETRY_IMMEDIATELY: PullStatus.NO_MATCHED_MSG,
    ResponseCode.PULL_OFFSET_MOVED: PullStatus.OFFSET_ILLEGAL,
}


def pull_status(code: int) -> PullStatus | None:
    """The PullStatus of a response code, or None for an error."""
    return _STATUS.get(code)  # type: ignore[call-overload]


def _int(ext: dict[str, str], key: str, default: int) -> int:
    try:
        return int(ext.get(key, default))
    except (TypeError, ValueError):
        return default


def decode_pull_response(
    response: RemotingCommand, mq: MessageQueue, requested: int, tag_filter: TagFilter
) -> PullResult | None:
    """The PullResult of a response, or None when the code is an error."""
    status = pull_status(response.code)
    if status is None:
        return None
    ext = response.ext_fields
    next_offset = _int(ext, "nextBeginOffset", requested)
    messages: list[MessageExt] = []
    raw = 0
    if status is PullStatus.FOUND:
        messages = decode_messages(response.body, mq.broker_name)
        raw = len(messages)
        if messages and messages[0].queue_offset < requested:
            messages = [m for m in messages if m.queue_offset >= requested]
        if not tag_filter.matches_all:
            messages = tag_filter.keep(messages)
        if not messages:
            status = PullStatus.NO_MATCHED_MSG
    return PullResult(
        status=status,
        next_begin_offset=next_offset,
        min_offset=_int(ext, "minOffset", 0),
        max_offset=_int(ext, "maxOffset", 0),
        messages=messages,
        raw_count=raw,
        suggest_which_broker_id=_int(ext, "suggestWhichBrokerId", 0),
    )
