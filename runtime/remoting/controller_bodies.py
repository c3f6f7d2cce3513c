"""The failover controller seen from outside, in RocketMQ 5's bodies and headers (mqadmin's
``getSyncStateSet``, ``getControllerMetaData``, ``electMaster``, ``getBrokerEpoch``).

- CONTROLLER_GET_SYNC_STATE_DATA (1006, to the controller): body a JSON list of broker names;
  answer ``BrokerReplicasInfo``: per broker group its master (id, address, epoch), the epoch of
  its in-sync set and its members in and out of that set.
- CONTROLLER_GET_METADATA_INFO (1005, to the controller): answer header
  ``GetMetaDataResponseHeader`` (who leads the controllers: actormq runs one).
- CONTROLLER_ELECT_MASTER (1002, to the controller): header ``ElectMasterRequestHeader`` (the
  group and the broker id to make master); answer header ``ElectMasterResponseHeader`` and body
  ``ElectMasterResponseBody`` (the group's members and in-sync set).
- CLEAN_BROKER_DATA (1011, to the controller): header ``CleanControllerBrokerDataRequestHeader``
  (the group, the broker ids to forget, ``;``-separated, none: all; whether living ones too).
- GET_BROKER_EPOCH_CACHE (1007, to a broker): answer ``EpochEntryCache``, the broker's epoch
  file (each master term and the commit-log range it wrote) and its commit log's end.
"""

from __future__ import annotations

from runtime.remoting.bodies import Body, Int32, Int64
from runtime.remoting.headers import Header


class ReplicaIdentity(Body, kw_only=True):
    broker_name: str = ""
    broker_id: Int64 = 0
    broker_address: str = ""
    alive: bool = False

    def text(self) -> str:
        """As RocketMQ's ``toString`` (what mqadmin prints)."""
        return (
            f"ReplicaIdentity{{brokerName='{self.broker_name}', brokerId={self.broker_id}, "
            f"brokerAddress='{self.broker_address}', alive={str(self.alive).lower()}}}"
        )


class ReplicasInfo(Body, kw_only=True):
    master_broker_id: Int64 | None = None
    master_address: str | None = None
    master_epoch: Int32 = 0
    sync_state_set_epoch: Int32 = 0
    in_sync_replicas: list[ReplicaIdentity] = []
    not_in_sync_replicas: list[ReplicaIdentity] = []


class BrokerReplicasInfo(Body, kw_only=True):
    replicas_info_table: dict[str, ReplicasInfo] = {}


class GetMetaDataResponseHeader(Header, kw_only=True):
    group: str = ""
    controller_leader_id: str = ""
    controller_leader_address: str = ""
    is_leader: bool = False
    peers: str = ""


class ElectMasterRequestHeader(Header, kw_only=True):
    cluster_name: str = ""
    broker_name: str
    broker_id: Int64 | None = None
    """The broker to make master (None or -1: whichever the controller chooses)."""
    designate_elect: bool = False


class CleanControllerBrokerDataRequestHeader(Header, kw_only=True):
    cluster_name: str | None = None
    broker_name: str
    broker_controller_ids_to_clean: str | None = None
    is_clean_living_broker: bool = False


class ElectMasterResponseHeader(Header, kw_only=True):
    master_broker_id: Int64 | None = None
    master_address: str = ""
    master_epoch: Int32 = 0
    sync_state_set_epoch: Int32 = 0


class BrokerMemberGroup(Body, kw_only=True):
    cluster: str = ""
    broker_name: str = ""
    broker_addrs: dict[Int64, str] = {}


class ElectMasterResponseBody(Body, kw_only=True):
    broker_member_group: BrokerMemberGroup | None = None
    sync_state_set: list[Int64] = []


class EpochEntry(Body, kw_only=True):
    epoch: Int32 = 0
    start_offset: Int64 = 0
    end_offset: Int64 = 0

    def text(self) -> str:
        """As RocketMQ's ``toString`` (what mqadmin prints)."""
        return (
            f"EpochEntry{{epoch={self.epoch}, startOffset={self.start_offset}, "
            f"endOffset={self.end_offset}}}"
        )


class EpochEntryCache(Body, kw_only=True):
    cluster_name: str = ""
    broker_name: str = ""
    broker_id: Int64 = 0
    epoch_list: list[EpochEntry] = []
    max_offset: Int64 = 0
