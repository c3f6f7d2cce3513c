"""The broker's region and trace switch (RocketMQ's BrokerConfig ``regionId`` and ``traceOn``).

As RocketMQ's send processors do, the broker names both twice for every send (SEND_MESSAGE,
SEND_MESSAGE_V2, SEND_BATCH_MESSAGE, SEND_REPLY_MESSAGE[_V2]):

- in the response's extFields, ``MSG_REGION`` and ``TRACE_ON`` (``"true"`` / ``"false"``), on
  every answer to a send whose header could be read, errors included (RocketMQ adds them to
  the response before its first check). A client's send trace hook records the region in its
  Pub and records no Pub when TRACE_ON is ``false``;
- in each stored message's properties (AbstractSendMessageProcessor.buildMsgContext puts them
  into the request's properties, overwriting what the producer sent), so a consumer's trace
  hook records the region of each message's broker and leaves out messages with
  ``TRACE_ON=false``. A batch's messages get them too (RocketMQ 5 appends the batch's
  properties, which hold them, to each message).
"""

from __future__ import annotations

import functools

import msgspec

from config.schema import BrokerConfig
from runtime.remoting.command import RemotingCommand
from runtime.remoting.properties import (
    CLUSTER,
    MSG_REGION,
    PROPERTY_SEPARATOR,
    TRACE_ON,
    decode_properties,
    encode_properties,
)

_REGION_MARK = f"{MSG_REGION}\x01"
_TRACE_MARK = f"{TRACE_ON}\x01"
_CLUSTER_MARK = f"{CLUSTER}\x01"


def _switch(cfg: BrokerConfig) -> str:
    return "true" if cfg.trace_on else "false"


def response_fields(cfg: BrokerConfig) -> dict[str, str]:
    """The extFields a send response carries (RocketMQ's PROPERTY_MSG_REGION and
    PROPERTY_TRACE_SWITCH)."""
    return {MSG_REGION: cfg.region_id, TRACE_ON: _switch(cfg)}


def with_response_fields(response: RemotingCommand, cfg: BrokerConfig) -> RemotingCommand:
    """``response`` (a send's answer) with MSG_REGION and TRACE_ON added to its extFields."""
    return msgspec.structs.replace(
        response, ext_fields={**response.ext_fields, **response_fields(cfg)}
    )


def stamp(properties: str, cfg: BrokerConfig, cluster: str | None = None) -> str:
    """``properties`` (a message's, encoded) with the broker's MSG_REGION and TRACE_ON, and
    CLUSTER when ``cluster`` is given (a producer's send: RocketMQ's SendMessageProcessor puts
    the broker's cluster name into every message it stores), which replace any the producer
    sent."""
    if (
        _REGION_MARK in properties
        or _TRACE_MARK in properties
        or (cluster is not None and _CLUSTER_MARK in properties)
    ):
        props = decode_properties(properties)
        props[MSG_REGION] = cfg.region_id
        props[TRACE_ON] = _switch(cfg)
        if cluster is not None:
            props[CLUSTER] = cluster
        return encode_properties(props)
    if properties and not properties.endswith(PROPERTY_SEPARATOR):
        properties += PROPERTY_SEPARATOR
    return properties + _suffix(cfg.region_id, cfg.trace_on, cluster)


@functools.lru_cache(maxsize=16)
def _suffix(region: str, trace_on: bool, cluster: str | None) -> str:
    """The encoded properties ``stamp`` appends (one string per broker setting)."""
    switch = "true" if trace_on else "false"
    tail = f"{_REGION_MARK}{region}\x02{_TRACE_MARK}{switch}\x02"
    return tail if cluster is None else f"{tail}{_CLUSTER_MARK}{cluster}\x02"
