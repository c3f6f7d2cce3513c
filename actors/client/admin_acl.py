"""The ACL half of ``Admin`` (a mixin; ``Admin`` supplies the transport): accounts and the
global white list of brokers with ``aclEnable`` (``mqadmin updateAclConfig``,
``deleteAclConfig``, ``updateGlobalWhiteAddr``, ``clusterAclConfigVersion``). Each change goes
to one broker (``broker_addr``) or to every broker, masters and slaves, of ``cluster`` (of all
clusters when neither is given), as mqadmin's ``-c`` does: every broker keeps its own file.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from actors.client.admin_port import AdminPort
from runtime.remoting.codes import RequestCode


class AclVersion(NamedTuple):
    """One broker's accounts file version (GET_BROKER_CLUSTER_ACL_INFO)."""

    cluster: str
    broker_name: str
    broker_addr: str
    counter: int
    timestamp: int


class AclAdmin(AdminPort):
    """Mixin of ``Admin`` (what it needs of ``Admin``: ``AdminPort``)."""

    def update_acl_config(
        self,
        access_key: str,
        *,
        secret_key: str | None = None,
        white_remote_address: str | None = None,
        admin: bool = False,
        default_topic_perm: str | None = None,
        default_group_perm: str | None = None,
        topic_perms: list[str] | tuple[str, ...] = (),
        group_perms: list[str] | tuple[str, ...] = (),
        cluster: str | None = None,
        broker_addr: str | None = None,
    ) -> list[str]:
        """UPDATE_AND_CREATE_ACL_CONFIG (50): create the account or update the fields given
        (``admin`` is always written, as RocketMQ does); perms as ``name=PUB|SUB|DENY``.
        Returns the addresses that applied it."""
        ext = {"accessKey": access_key, "admin": "true" if admin else "false"}
        optional = {
            "secretKey": secret_key,
            "whiteRemoteAddress": white_remote_address,
            "defaultTopicPerm": default_topic_perm,
            "defaultGroupPerm": default_group_perm,
            "topicPerms": ",".join(topic_perms),
            "groupPerms": ",".join(group_perms),
        }
        ext.update({k: v for k, v in optional.items() if v})
        return self._each_broker(
            RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, ext, cluster, broker_addr
        )

    def delete_acl_config(
        self, access_key: str, *, cluster: str | None = None, broker_addr: str | None = None
    ) -> list[str]:
        """DELETE_ACL_CONFIG (51): remove the account."""
        ext = {"accessKey": access_key}
        return self._each_broker(RequestCode.DELETE_ACL_CONFIG, ext, cluster, broker_addr)

    def update_global_white_addrs(
        self,
        addresses: list[str] | tuple[str, ...],
        *,
        cluster: str | None = None,
        broker_addr: str | None = None,
    ) -> list[str]:
        """UPDATE_GLOBAL_WHITE_ADDRS_CONFIG (53): replace globalWhiteRemoteAddresses."""
        ext = {"globalWhiteAddrs": ",".join(addresses)}
        code = RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG
        return self._each_broker(code, ext, cluster, broker_addr)

    def acl_config_versions(
        self, *, cluster: str | None = None, broker_addr: str | None = None
    ) -> list[AclVersion]:
        """GET_BROKER_CLUSTER_ACL_INFO (52) of each broker."""
        out = []
        for address in self._acl_targets(cluster, broker_addr):
            response = self._broker(
                address, RequestCode.GET_BROKER_CLUSTER_ACL_INFO, {}, "acl config version"
            )
            ext = response.ext_fields
            current = json.loads(ext.get("version") or "{}")
            out.append(
                AclVersion(
                    ext.get("clusterName", ""),
                    ext.get("brokerName", ""),
                    ext.get("brokerAddr", address),
                    int(current.get("counter", 0)),
                    int(current.get("timestamp", 0)),
                )
            )
        return out

    def _each_broker(
        self, code: int, ext: dict[str, str], cluster: str | None, broker_addr: str | None
    ) -> list[str]:
        addresses = self._acl_targets(cluster, broker_addr)
        for address in addresses:
            self._broker(address, code, ext, "acl config")
        return addresses

    def _acl_targets(self, cluster: str | None, broker_addr: str | None) -> list[str]:
        if broker_addr is not None:
            return [broker_addr]
        return [b.address for b in self.brokers(cluster)]
