"""What a broker asks of a running consumer, and how the consumer answers.

- NOTIFY_CONSUMER_IDS_CHANGED (a client joined or left the group): rebalance at once (only
  the topics its ``topics`` ext names, when an actormq broker names them).
- RESET_CONSUMER_CLIENT_OFFSET (``mqadmin resetOffsetByTime`` on a running group): each listed
  queue the consumer holds continues at the given offset (cached messages dropped, the offset
  committed with the next persist; the rebalancer ignores queues it does not hold).
- GET_CONSUMER_RUNNING_INFO (``mqadmin consumerStatus``, relayed by a broker): answered with
  ``running_info`` (see ``actors.client.running_info``): settings, subscriptions, one
  ``ProcessQueueInfo`` per held queue.
- GET_CONSUMER_STATUS_FROM_CLIENT (``mqadmin getConsumerStatus``, relayed by a broker): the
  offsets of the queues the consumer holds (``actors.client.consumer_status``).

``BrokerRequests`` is a part of ``ConsumerBase`` (``actors.client.consumer_base``), which
provides the attributes and methods declared here; the handlers run on the client's hub.
Also here: the names of the two ClientInstance children a consumer adds.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from typing import Any

import pykka
from loguru import logger

from actors.client import consumer_status
from actors.client.config import ClientConfig
from actors.client.errors import ClientError, ClientStateError
from actors.client.hub import ClientHub
from actors.client.instance import ClientInstance
from actors.client.message import MessageQueue
from actors.client.puller_messages import next_generation
from actors.client.rebalance import DoRebalance, SeekQueue
from actors.client.running_info import collect, not_this_group
from runtime.errors import ProtocolError
from runtime.remoting.bodies import ConsumerData
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.queue_maps import decode_queue_map
from runtime.remoting.running_info import (
    PROP_CLIENT_VERSION,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    PROP_NAMESERVER_ADDR,
    ConsumerRunningInfo,
    encode_running_info,
)
from runtime.session import SessionHandle

OFFSETS = "offsets"
"""The consumer's OffsetStore, a child of its ClientInstance."""
REBALANCER = "rebalancer"
"""The consumer's Rebalancer, a child of its ClientInstance."""


class BrokerRequests:
    """The consumer's handlers of broker requests; see the module docstring."""

    group: str
    config: ClientConfig
    consume_type: str
    _instance: ClientInstance | None
    _state: str
    _start_ms: int

    # -- provided by ConsumerBase ----------------------------------------------------------

    def consumer_data(self) -> ConsumerData:
        raise NotImplementedError

    def _settings(self) -> dict[str, str]:
        raise NotImplementedError

    def _running_hub(self, what: str) -> ClientHub:
        raise NotImplementedError

    # -- hooks -------------------------------------------------------------------------------

    def _before_reset(self, mq: MessageQueue, generation: int) -> None:
        """A queue is about to be reset (the lite consumer drops what it buffered)."""

    # -- handlers ----------------------------------------------------------------------------

    def _register_handlers(self, instance: ClientInstance) -> None:
        instance.inbound_handlers[RequestCode.NOTIFY_CONSUMER_IDS_CHANGED] = self._ids_changed
        instance.inbound_handlers[RequestCode.RESET_CONSUMER_CLIENT_OFFSET] = self._reset_offsets
        instance.inbound_handlers[RequestCode.GET_CONSUMER_RUNNING_INFO] = self._running_info
        instance.inbound_handlers[RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT] = (
            lambda _session, request: consumer_status.serve(
                self._instance,
                self.group,
                request,
                rebalancer=instance.name(REBALANCER),
                offsets=instance.name(OFFSETS),
                timeout=self.config.request_timeout,
            )
        )

    def _ids_changed(self, _session: SessionHandle, request: RemotingCommand) -> Any:
        instance = self._instance
        if instance is not None:
            ref = instance.directory.get(instance.name(REBALANCER))
            if ref is not None:
                # an actormq broker names the topics whose consumer lists changed (the others
                # keep their queues); RocketMQ's (no ``topics``): every topic
                named = str(request.ext_fields.get("topics") or "")
                topics = frozenset(named.split(",")) if named else None
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(DoRebalance("consumer ids changed", topics=topics))
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def _reset_offsets(self, _session: SessionHandle, request: RemotingCommand) -> Any:
        """RESET_CONSUMER_CLIENT_OFFSET from a broker: seek every listed queue this consumer
        holds (the rebalancer ignores the others)."""
        if str(request.ext_fields.get("group") or "") == self.group:
            try:
                table, _ = decode_queue_map(request.body, "offsetTable", int)
            except ProtocolError as exc:
                logger.warning("client: {}: offset reset not applied: {}", self.group, exc)
                table = []
            instance = self._instance
            ref = instance.directory.get(instance.name(REBALANCER)) if instance else None
            for mq, offset in table:
                generation = next_generation()
                self._before_reset(mq, generation)
                if ref is not None:
                    with contextlib.suppress(pykka.ActorDeadError):
                        ref.tell(SeekQueue(mq, offset, generation, None))
            if table:
                logger.info("client: {}: offsets reset by the broker: {}", self.group, table)
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def _running_info(self, _session: SessionHandle, request: RemotingCommand) -> Any:
        """GET_CONSUMER_RUNNING_INFO from a broker (on behalf of an admin tool)."""
        group = str(request.ext_fields.get("consumerGroup") or "")
        if group != self.group:
            code, remark, body = ResponseCode.SYSTEM_ERROR, not_this_group(group), b""
        else:
            jstack = str(request.ext_fields.get("jstackEnable", "")).lower() == "true"
            try:
                info = self._collect_running_info(jstack)
            except (ClientError, pykka.Timeout, pykka.ActorDeadError) as exc:
                code, remark, body = ResponseCode.SYSTEM_ERROR, f"running info: {exc}", b""
            else:
                code, remark, body = ResponseCode.SUCCESS, None, encode_running_info(info)
        if request.is_oneway:
            return None
        return RemotingCommand.response_to(request, code, remark, body=body)

    def _collect_running_info(self, jstack: bool) -> ConsumerRunningInfo:
        """On the hub (blocks this greenlet, each ask bounded by the request timeout)."""
        instance = self._instance
        if instance is None:
            raise ClientStateError(f"consumer {self.group}", self._state)
        properties = self._settings()
        rebalancer = instance.directory.get(instance.name(REBALANCER))
        if rebalancer is not None:  # the per-queue limits now (the topic thresholds' share)
            opts = rebalancer.proxy().options.get(timeout=self.config.request_timeout)
            properties["pullThresholdForQueue"] = str(opts.max_cached_messages)
            properties["pullThresholdSizeForQueue"] = str(opts.max_cached_bytes // (1 << 20))
        properties[PROP_NAMESERVER_ADDR] = ";".join(self.config.namesrv)
        properties[PROP_CONSUME_TYPE] = self.consume_type
        properties[PROP_CLIENT_VERSION] = client_version()
        properties[PROP_CONSUMER_START_TIMESTAMP] = str(self._start_ms)
        return collect(
            instance,
            rebalancer=instance.name(REBALANCER),
            offsets=instance.name(OFFSETS),
            properties=properties,
            subscriptions=list(self.consumer_data().subscription_data_set),
            jstack=jstack,
            timeout=self.config.request_timeout,
        )

    def running_info(self, jstack: bool = False, timeout: float = 10.0) -> ConsumerRunningInfo:
        """What this consumer answers GET_CONSUMER_RUNNING_INFO with (``mqadmin
        consumerStatus``): settings, subscriptions, one ``ProcessQueueInfo`` per held queue."""
        hub = self._running_hub("running_info")
        return hub.call(
            lambda: self._collect_running_info(jstack), timeout=timeout, what="running info"
        )


def client_version() -> str:
    """``actormq-<version>`` (PROP_CLIENT_VERSION), as the broker describes itself."""
    try:
        return f"actormq-{importlib.metadata.version('actormq')}"
    except importlib.metadata.PackageNotFoundError:
        return "actormq-unknown"
