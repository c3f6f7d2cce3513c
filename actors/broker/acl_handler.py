"""ACL administration (RocketMQ 4's ACL 1.0 admin codes): UPDATE_AND_CREATE_ACL_CONFIG (50),
DELETE_ACL_CONFIG (51), GET_BROKER_CLUSTER_ACL_INFO (52), UPDATE_GLOBAL_WHITE_ADDRS_CONFIG (53).

- 50, header ``accessKey`` (required), ``secretKey``, ``whiteRemoteAddress``, ``admin``,
  ``defaultTopicPerm``, ``defaultGroupPerm``, ``topicPerms`` and ``groupPerms`` (comma-separated
  ``name=PERM``): creates the account or updates the fields given (``admin`` always: absent
  means false, as in RocketMQ); UPDATE_AND_CREATE_ACL_CONFIG_FAILED (209) with the reason.
- 51, header ``accessKey``: deletes the account; DELETE_ACL_CONFIG_FAILED (210).
- 53, header ``globalWhiteAddrs`` (comma-separated): replaces globalWhiteRemoteAddresses;
  UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED (211).
- 52: header ``version`` (the file's dataVersion as JSON: counter, timestamp), ``brokerName``,
  ``brokerAddr``, ``clusterName``, ``allAclFileVersion`` ({file: version}).

Each change is written to the accounts file (``runtime.acl.edit``: atomically, only if the
result loads; one change at a time, in the hub's thread pool) and in force for the next
request. Without ``aclEnable`` every code answers its
failure code (52: SYSTEM_ERROR). 50, 51 and 53 need an admin account (``resources.ADMIN_CODES``;
RocketMQ 4 lets any valid signature change the ACL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import msgspec

from actors.broker.context import BrokerContext, reply
from runtime.acl.edit import (
    AccountUpdate,
    AclEditError,
    delete_account,
    set_global_white,
    update_account,
    version,
)
from runtime.actor import offload
from runtime.errors import ConfigError
from runtime.remoting.codes import RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.session import SessionHandle

NOT_ENABLED = "ACL is not enabled on this broker (aclEnable=false)"
_FAILED = {
    RequestCode.UPDATE_AND_CREATE_ACL_CONFIG: ResponseCode.UPDATE_AND_CREATE_ACL_CONFIG_FAILED,
    RequestCode.DELETE_ACL_CONFIG: ResponseCode.DELETE_ACL_CONFIG_FAILED,
    RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG: (
        ResponseCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED
    ),
}


def change_acl(
    ctx: BrokerContext, _session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """50, 51 and 53 (see the module docstring)."""
    failed = _FAILED[RequestCode(request.code)]
    acl = ctx.acl
    if acl is None:
        return reply(request, failed, remark=NOT_ENABLED)
    ext = request.ext_fields
    access_key = (ext.get("accessKey") or "").strip()
    if request.code == RequestCode.UPDATE_AND_CREATE_ACL_CONFIG:
        edit: Callable[[], None] = partial(
            update_account, acl.path, _account_update(access_key, ext)
        )
    elif request.code == RequestCode.DELETE_ACL_CONFIG:
        edit = partial(delete_account, acl.path, access_key)
    else:
        edit = partial(set_global_white, acl.path, _split(ext.get("globalWhiteAddrs")) or [])
    try:
        # one change at a time (read, edit, write), its fsync off the hub
        with acl.edit_lock:
            offload(edit)
            acl.reload()
    except (AclEditError, ConfigError, OSError) as exc:
        return reply(request, failed, remark=getattr(exc, "reason", None) or str(exc))
    return reply(request)


def acl_info(
    ctx: BrokerContext, _session: SessionHandle, request: RemotingCommand
) -> RemotingCommand:
    """52: the accounts file's version."""
    acl = ctx.acl
    if acl is None:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=NOT_ENABLED)
    try:
        current = json.dumps(msgspec.to_builtins(version(acl.path)))
    except (AclEditError, OSError) as exc:
        return reply(request, ResponseCode.SYSTEM_ERROR, remark=str(exc))
    ext = {
        "version": current,
        "brokerName": ctx.cfg.broker_name,
        "brokerAddr": ctx.cfg.broker_addr(),
        "clusterName": ctx.cfg.broker_cluster_name,
        "allAclFileVersion": json.dumps({str(acl.path): json.loads(current)}),
    }
    return reply(request, ext_fields=ext)


def _account_update(access_key: str, ext: dict[str, str]) -> AccountUpdate:
    return AccountUpdate(
        access_key=access_key,
        secret_key=ext.get("secretKey") or None,
        white_remote_address=ext.get("whiteRemoteAddress") or None,
        admin=(ext.get("admin") or "false").strip().lower() == "true",
        default_topic_perm=ext.get("defaultTopicPerm") or None,
        default_group_perm=ext.get("defaultGroupPerm") or None,
        topic_perms=_split(ext.get("topicPerms")),
        group_perms=_split(ext.get("groupPerms")),
    )


def _split(text: str | None) -> list[str] | None:
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    return items or None
