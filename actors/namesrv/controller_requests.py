"""The failover controller's admin requests, as RocketMQ 5's controller answers them (mqadmin's
getSyncStateSet, getControllerMetaData, electMaster; bodies in
``runtime.remoting.controller_bodies``):

- CONTROLLER_GET_SYNC_STATE_DATA (1006), body a JSON list of broker names: a
  ``BrokerReplicasInfo`` of those the controller knows (master id, address and epoch, the
  in-sync set's epoch, members in and out of that set with whether each is alive).
- CONTROLLER_GET_METADATA_INFO (1005): who leads the controllers (actormq runs one, in this name
  server: it is the leader, at the address the request reached).
- CLEAN_BROKER_DATA (1011), header ``brokerName``, ``brokerControllerIdsToClean`` (``1;2``;
  none: every member), ``isCleanLivingBroker``: the controller forgets those members
  (``actors.namesrv.handover``); CONTROLLER_INVALID_REQUEST for ids that are not numbers.
- CONTROLLER_ELECT_MASTER (1002), header ``brokerName`` and ``brokerId`` (-1 or none: the
  controller's choice, only when the group has no master): waits for the handover
  (``actors.namesrv.handover``, up to the lease plus the catch-up time) and answers the new
  master (``ElectMasterResponseHeader``) and the group's members and in-sync set
  (``ElectMasterResponseBody``), or the CONTROLLER_* code saying why not.

A name server without the controller answers REQUEST_CODE_NOT_SUPPORTED. Runs in the request's
own greenlet; asks the Controller with a timeout.
"""

from __future__ import annotations

import msgspec
from gevent.event import AsyncResult

from actors.namesrv.controller import Replicas
from actors.namesrv.group_commit import settled
from actors.namesrv.handover import (
    HANDOVER_CATCHUP_S,
    CleanBrokerData,
    ElectMaster,
    ElectOutcome,
    GroupView,
)
from runtime.directory import Directory
from runtime.errors import ProtocolError
from runtime.ha.control import LEASE_S, MARGIN_S
from runtime.remoting.bodies import encode_body
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.controller_bodies import (
    BrokerMemberGroup,
    BrokerReplicasInfo,
    CleanControllerBrokerDataRequestHeader,
    ElectMasterRequestHeader,
    ElectMasterResponseBody,
    ElectMasterResponseHeader,
    GetMetaDataResponseHeader,
    ReplicaIdentity,
    ReplicasInfo,
)
from runtime.remoting.header_codec import decode_header, encode_header
from runtime.session_handle import SessionHandle

CODES = frozenset(
    {
        RequestCode.CONTROLLER_GET_SYNC_STATE_DATA,
        RequestCode.CONTROLLER_GET_METADATA_INFO,
        RequestCode.CONTROLLER_ELECT_MASTER,
        RequestCode.CLEAN_BROKER_DATA,
    }
)
ASK_TIMEOUT = 5.0
ELECT_WAIT_S = LEASE_S + MARGIN_S + HANDOVER_CATCHUP_S + 2.0
"""How long CONTROLLER_ELECT_MASTER waits for a handover's outcome (it always has one by then:
the lease runs out, then the catch-up time ends it)."""
_NAMES = msgspec.json.Decoder(list[str])


class ControllerRequests:
    """Serves the codes in ``CODES`` through the Controller named ``controller`` (None: this
    name server runs none)."""

    def __init__(self, directory: Directory, controller: str | None) -> None:
        self.directory = directory
        self.controller = controller

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand:
        if self.controller is None:
            return RemotingCommand.response_to(
                request,
                ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                remark="this name server runs no controller (enableControllerInNamesrv=false)",
            )
        if request.code == RequestCode.CONTROLLER_GET_SYNC_STATE_DATA:
            return self._sync_state_data(request)
        if request.code == RequestCode.CONTROLLER_GET_METADATA_INFO:
            address = session.local_address
            header = GetMetaDataResponseHeader(
                group="actormq",
                controller_leader_id="n0",
                controller_leader_address=address,
                is_leader=True,
                peers=f"n0-{address}",
            )
            return RemotingCommand.response_to(
                request, ResponseCode.SUCCESS, ext_fields=encode_header(header)
            )
        if request.code == RequestCode.CLEAN_BROKER_DATA:
            return self._clean(request)
        return self._elect_master(request)

    def _clean(self, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(
            CleanControllerBrokerDataRequestHeader, request.ext_fields, opaque=request.opaque
        )
        text = h.broker_controller_ids_to_clean or ""
        try:
            nodes = tuple(int(part) for part in text.split(";") if part.strip())
        except ValueError:
            return RemotingCommand.response_to(
                request,
                ResponseCode.CONTROLLER_INVALID_REQUEST,
                remark=f"brokerControllerIdsToClean {text!r}: broker ids separated by ';'",
            )
        outcome: ElectOutcome = settled(
            self.directory.ask(
                self.controller,
                CleanBrokerData(h.broker_name, nodes, h.is_clean_living_broker),
                timeout=ASK_TIMEOUT,
            ),
            ASK_TIMEOUT,
        )
        return RemotingCommand.response_to(request, outcome.code, remark=outcome.remark or None)

    def _sync_state_data(self, request: RemotingCommand) -> RemotingCommand:
        try:
            names = _NAMES.decode(request.body or b"[]")
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            raise ProtocolError(
                f"a JSON list of broker names expected: {exc}", fatal=False, opaque=request.opaque
            ) from None
        views: dict[str, GroupView] = self.directory.ask(
            self.controller, Replicas(tuple(names)), timeout=ASK_TIMEOUT
        )
        body = BrokerReplicasInfo(
            replicas_info_table={name: replicas_info(name, v) for name, v in views.items()}
        )
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=encode_body(body))

    def _elect_master(self, request: RemotingCommand) -> RemotingCommand:
        h = decode_header(ElectMasterRequestHeader, request.ext_fields, opaque=request.opaque)
        node = None if h.broker_id is None or h.broker_id < 0 else h.broker_id
        answer = self.directory.ask(
            self.controller, ElectMaster(h.broker_name, node), timeout=ASK_TIMEOUT
        )
        answer = settled(answer, ASK_TIMEOUT)  # (the store's flush; then maybe a handover)
        if isinstance(answer, AsyncResult):
            answer.wait(ELECT_WAIT_S)  # never raises: ready() tells
            if not answer.ready():
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                    remark=f"the handover of {h.broker_name} is still under way",
                )
            answer = answer.get()
        outcome: ElectOutcome = answer
        view = outcome.view
        if outcome.code != ResponseCode.SUCCESS or view is None:
            return RemotingCommand.response_to(request, outcome.code, remark=outcome.remark)
        header = ElectMasterResponseHeader(
            master_broker_id=view.master,
            master_address=view.master_addr,
            master_epoch=view.epoch,
            sync_state_set_epoch=view.isr_epoch,
        )
        body = ElectMasterResponseBody(
            broker_member_group=BrokerMemberGroup(
                cluster=view.cluster,
                broker_name=h.broker_name,
                broker_addrs={node: addr for node, (addr, _alive) in view.members.items()},
            ),
            sync_state_set=view.isr,
        )
        return RemotingCommand.response_to(
            request, ResponseCode.SUCCESS, ext_fields=encode_header(header), body=encode_body(body)
        )


def replicas_info(name: str, view: GroupView) -> ReplicasInfo:
    """A group's ``ReplicasInfo``: its master, epochs, members in and out of the in-sync set."""
    members = {
        node: ReplicaIdentity(broker_name=name, broker_id=node, broker_address=addr, alive=alive)
        for node, (addr, alive) in view.members.items()
    }
    return ReplicasInfo(
        master_broker_id=view.master,
        master_address=view.master_addr or None,
        master_epoch=view.epoch,
        sync_state_set_epoch=view.isr_epoch,
        in_sync_replicas=[members[n] for n in view.isr if n in members],
        not_in_sync_replicas=[m for n, m in members.items() if n not in view.isr],
    )
