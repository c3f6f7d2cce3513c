"""The failover half of ``Admin`` (a mixin; ``Admin`` supplies the transport): the controller's
view of broker groups (mqadmin getSyncStateSet), who leads the controllers
(getControllerMetaData), handing a group's mastership to a chosen member (electMaster),
forgetting members taken out of service (cleanBrokerMetadata), and a broker's epoch file
(getBrokerEpoch). The controller is the name server that runs it
(``enableControllerInNamesrv``, the brokers' ``controllerAddr``); bodies and headers in
``runtime.remoting.controller_bodies``.
"""

from __future__ import annotations

import msgspec

from actors.client.admin_port import AdminPort
from runtime.remoting.bodies import decode_body
from runtime.remoting.codes import RequestCode
from runtime.remoting.controller_bodies import (
    BrokerReplicasInfo,
    ElectMasterResponseBody,
    ElectMasterResponseHeader,
    EpochEntryCache,
    GetMetaDataResponseHeader,
)
from runtime.remoting.header_codec import decode_header

ELECT_TIMEOUT_S = 15.0
"""How long ``elect_master`` waits by default: a handover whose old master does not answer
waits for its lease (3 s), then up to 5 s for the new one to catch up."""


class ElectMasterResult(msgspec.Struct, frozen=True):
    """``elect_master``'s answer: the new master (``header``: id, address, epoch, in-sync set
    epoch) and the group (``body``: its members' addresses by id, its in-sync set)."""

    header: ElectMasterResponseHeader
    body: ElectMasterResponseBody


class ControllerAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    def sync_state_set(self, controller_addr: str, broker_names: list[str]) -> BrokerReplicasInfo:
        """CONTROLLER_GET_SYNC_STATE_DATA (1006): each named broker group the controller knows:
        its master (id, address, epoch), the in-sync set's epoch, the members in and out of
        that set and whether each is alive."""
        body = msgspec.json.encode(broker_names)
        response = self._broker(
            controller_addr,
            RequestCode.CONTROLLER_GET_SYNC_STATE_DATA,
            {},
            "sync state set",
            body=body,
        )
        return decode_body(BrokerReplicasInfo, response.body)

    def controller_metadata(self, controller_addr: str) -> GetMetaDataResponseHeader:
        """CONTROLLER_GET_METADATA_INFO (1005): the controllers' group, leader and peers."""
        response = self._broker(
            controller_addr, RequestCode.CONTROLLER_GET_METADATA_INFO, {}, "controller metadata"
        )
        return decode_header(GetMetaDataResponseHeader, response.ext_fields)

    def elect_master(
        self,
        controller_addr: str,
        broker_name: str,
        broker_id: int | None,
        *,
        cluster: str = "",
        timeout: float = ELECT_TIMEOUT_S,
    ) -> ElectMasterResult:
        """CONTROLLER_ELECT_MASTER (1002): make ``broker_id`` (a live member in the group's
        in-sync set) master of ``broker_name``: the old master resigns (or its lease runs out)
        and the target is elected once it holds everything the old master wrote; returns when
        it is master (writes pause meanwhile: a few tenths of a second; up to ~8 s when the
        old master does not answer and the target must catch up). The master itself: nothing
        changes. ``broker_id`` None: the controller's choice, only when the group has no master.
        A refusal raises ``BrokerError`` with the CONTROLLER_* code and the reason."""
        ext = {
            "clusterName": cluster,
            "brokerName": broker_name,
            "brokerId": str(-1 if broker_id is None else broker_id),
            "designateElect": "true" if broker_id is not None else "false",
        }
        response = self._broker(
            controller_addr,
            RequestCode.CONTROLLER_ELECT_MASTER,
            ext,
            "elect master",
            timeout=timeout,
        )
        return ElectMasterResult(
            header=decode_header(ElectMasterResponseHeader, response.ext_fields),
            body=decode_body(ElectMasterResponseBody, response.body),
        )

    def clean_broker_metadata(
        self,
        controller_addr: str,
        broker_name: str,
        broker_ids: list[int] | None = None,
        *,
        cluster: str = "",
        clean_living: bool = False,
    ) -> None:
        """CLEAN_BROKER_DATA (1011), as ``mqadmin cleanBrokerMetadata``: the controller forgets
        those members of the group (None: all, and the group with them), e.g. a slave taken
        out of service. ``BrokerError`` CONTROLLER_INVALID_CLEAN_BROKER_METADATA (2009) for a
        member heard from within a lease (unless ``clean_living``: it comes back at its next
        heartbeat), the master while its lease may hold, or one a handover involves."""
        ext = {
            "clusterName": cluster,
            "brokerName": broker_name,
            "brokerControllerIdsToClean": ";".join(str(i) for i in broker_ids or ()),
            "isCleanLivingBroker": "true" if clean_living else "false",
        }
        self._broker(controller_addr, RequestCode.CLEAN_BROKER_DATA, ext, "clean broker data")

    def broker_epoch_cache(self, broker_addr: str) -> EpochEntryCache:
        """GET_BROKER_EPOCH_CACHE (1007): the broker's master terms (epoch, the commit-log range
        each wrote) and its log's end; empty outside controller mode."""
        response = self._broker(broker_addr, RequestCode.GET_BROKER_EPOCH_CACHE, {}, "epoch cache")
        return decode_body(EpochEntryCache, response.body)
